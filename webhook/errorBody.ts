/**
 * The one shape of every error answer on the webhook's HTTPS server, whatever the route:
 * `{"code": "...", "message": "..."}`. `code` is stable and snake_case (clients, logs and
 * tests key on it); `message` is for people and may change. Admission (review.ts, and
 * clientErrors.ts below the router), /readyz, the 404 fallback, the edge's 500 and the
 * controller's /v1/routes stream all answer through here.
 */
import type { Response } from "express";
import type { RejectCode } from "./admission/review.ts";

/** The route stream's refusals (webhook/controller/io/stream.ts). */
export type StreamRefusalCode =
  | "bad_query"
  | "no_token"
  | "token_invalid"
  | "not_service_account"
  | "wrong_namespace"
  | "review_unavailable"
  | "review_busy"
  | "shutting_down";

export type ErrorAnswerCode = RejectCode | StreamRefusalCode | "not_ready" | "internal_error";

export interface ErrorBody {
  readonly code: ErrorAnswerCode;
  readonly message: string;
}

export function sendError(
  res: Response,
  status: number,
  code: ErrorAnswerCode,
  message: string,
  /** Older fields kept for clients that read them; never instead of code and message. */
  legacy: Readonly<Record<string, string>> = {},
): void {
  res.status(status).json({ ...legacy, code, message } satisfies ErrorBody);
}
