import type { PolicyErrorCode } from "./policy.ts";

/**
 * Every code a VersoError may carry, as a union so a typo is a compile error and a test that
 * asserts a code asserts one that exists. Prefix by component: CLI_, WEBHOOK_, CONTROLLER_,
 * PROMETHEUS_ (the controller's queries), VERSO_ (below our code: a socket's error code).
 */
export type VersoErrorCode =
  /** An annotation refused by the policy parser, carried on by the CLI as its own refusal. */
  | PolicyErrorCode
  | "CLI_API"
  | "CLI_CONFLICT"
  | "CLI_FORBIDDEN"
  | "CLI_INTERNAL"
  | "CLI_NOT_FAILED"
  | "CLI_NOT_FOUND"
  | "CLI_NOT_STARTED"
  | "CLI_NO_FILE"
  | "CLI_NO_KUBECONFIG"
  | "CLI_NO_PREVIOUS"
  | "CLI_NO_RELEASE"
  | "CLI_PORT"
  | "CLI_RELEASE_FAILED"
  | "CLI_UNAUTHORIZED"
  | "CLI_UNKNOWN_APP"
  | "CLI_UNREACHABLE"
  | "CLI_UNSUPPORTED"
  | "CONTROLLER_FORBIDDEN"
  /** The installed @kubernetes/client-node lacks a hook the controller patches. */
  | "CONTROLLER_CLIENT_UNSUPPORTED"
  /** The hop-key Secret exists but has no key, after making it. */
  | "CONTROLLER_HOP_KEY_MISSING"
  /** No answer from the apiserver at start: the controller stays off, admission serves. */
  | "CONTROLLER_NO_CLUSTER"
  /** `verso.dev/status` changed on the server since the leader read it: read again, decide again. */
  | "CONTROLLER_STATUS_CONFLICT"
  | "PROMETHEUS_QUERY"
  | "WEBHOOK_CA_INVALID"
  | "WEBHOOK_CA_READ"
  | "WEBHOOK_JSON_TOO_DEEP"
  | "WEBHOOK_TLS_INVALID"
  | "WEBHOOK_TLS_READ"
  /** A socket's error (socket.destroy(error)), read by Node and client libraries as `.code`. */
  | "VERSO_CONNECT_TIMEOUT";

/**
 * One base error for the whole product. `code` is stable (tests and logs key on it); the
 * message is for humans and may change. The original failure, if any, stays in `cause`.
 */
export class VersoError extends Error {
  readonly code: VersoErrorCode;

  constructor(code: VersoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "VersoError";
    this.code = code;
  }
}

/** Expected outcomes are values, not exceptions. */
export type Result<T, E = string> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error });
