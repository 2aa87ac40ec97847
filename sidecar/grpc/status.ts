/**
 * gRPC status codes as the proxy needs them (pure): the code class a call is counted under, the
 * `grpc-timeout` deadline, and the trailers-only answer the proxy gives when it cannot reach
 * any upstream for a call (a gRPC client understands a status, not an HTTP error page).
 */
import type { CodeClass } from "../metrics/metrics.ts";

export const GRPC = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  UNAVAILABLE: 14,
  INTERNAL: 13,
} as const;

/**
 * The standard gRPC-to-HTTP mapping, by class (what `verso_requests_total` counts, so every gate
 * and dashboard treats gRPC errors as errors): OK -> 2xx; the caller's mistakes -> 4xx; the
 * server's failures -> 5xx. An unknown or missing code is the server's failure (UNKNOWN).
 *
 * | code                                                                              | class |
 * |-----------------------------------------------------------------------------------|-------|
 * | 0 OK                                                                              | 2xx   |
 * | 1 CANCELLED, 3 INVALID_ARGUMENT, 5 NOT_FOUND, 6 ALREADY_EXISTS,                   | 4xx   |
 * | 7 PERMISSION_DENIED, 9 FAILED_PRECONDITION, 11 OUT_OF_RANGE, 16 UNAUTHENTICATED   |       |
 * | 2 UNKNOWN, 4 DEADLINE_EXCEEDED, 8 RESOURCE_EXHAUSTED, 10 ABORTED,                 | 5xx   |
 * | 12 UNIMPLEMENTED, 13 INTERNAL, 14 UNAVAILABLE, 15 DATA_LOSS, anything else        |       |
 */
const CLIENT_ERRORS: ReadonlySet<number> = new Set([1, 3, 5, 6, 7, 9, 11, 16]);

export function grpcCodeClass(code: number): CodeClass {
  if (code === GRPC.OK) return "2xx";
  return CLIENT_ERRORS.has(code) ? "4xx" : "5xx";
}

/** `grpc-status` as sent (a header or trailer value), or UNKNOWN when absent or malformed. */
export function grpcCode(value: string | string[] | undefined): number {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || !/^\d{1,2}$/.test(text)) return GRPC.UNKNOWN;
  return Number(text);
}

const TIMEOUT_UNIT_MS: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 0.001,
  n: 0.000001,
};

/** `grpc-timeout` (`<1-8 digits><H|M|S|m|u|n>`) in milliseconds; undefined when absent or bad. */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  const m = text === undefined ? null : /^(\d{1,8})([HMSmun])$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * TIMEOUT_UNIT_MS[m[2]!]!;
}

/** The longest delay a timer takes (2^31-1 ms, 24.8 days); longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * How long the proxy itself waits before answering DEADLINE_EXCEEDED, or undefined for no
 * timer: no `grpc-timeout`, or one past what a timer can hold (grpc-go sends 30 days for "no
 * deadline"; armed, it would fire at once and fail the call). The caller keeps its own clock.
 */
export function deadlineTimerMs(value: string | string[] | undefined): number | undefined {
  const ms = parseGrpcTimeout(value);
  return ms === undefined || ms > MAX_TIMER_MS ? undefined : ms;
}

/** grpc-message is percent-encoded (gRPC over HTTP/2 spec): printable ASCII except `%` as is. */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** A trailers-only response: HTTP 200, the status in the one header block, END_STREAM. */
export function trailersOnly(code: number, message: string): Record<string, string | number> {
  return {
    ":status": 200,
    "content-type": "application/grpc",
    "grpc-status": String(code),
    "grpc-message": encodeGrpcMessage(message),
  };
}
