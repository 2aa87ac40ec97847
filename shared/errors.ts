/**
 * One base error for the whole product. `code` is stable (tests and logs key on it); the
 * message is for humans and may change. The original failure, if any, stays in `cause`.
 */
export class VersoError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "VersoError";
    this.code = code;
  }
}

/** Expected outcomes are values, not exceptions. */
export type Result<T, E = string> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error });
