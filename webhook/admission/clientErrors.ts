/**
 * Requests that fail below express, in Node's HTTP parser or its timers: a head or body that
 * does not arrive in time, a head too large, bytes that are not HTTP. Node would answer
 * these with a bare status line; the webhook answers them in the shape of its other
 * refusals (`{code, message}`), so a client, a log or a test reads every refusal one way.
 * There is no request object here: the answer is written to the socket, which then closes.
 */
import { STATUS_CODES } from "node:http";
import type { RejectCode } from "./review.ts";

export interface ClientErrorAnswer {
  status: 400 | 408 | 431;
  code: RejectCode;
  message: string;
}

/** Pure: Node's error code for a failed request -> the answer, or undefined for nobody to answer. */
export function clientErrorAnswer(
  errorCode: string | undefined,
  limits: { headersTimeoutMs: number; requestTimeoutMs: number },
): ClientErrorAnswer | undefined {
  switch (errorCode) {
    case "ECONNRESET":
    case "EPIPE":
      return undefined; // the client is gone
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return {
        status: 408,
        code: "request_timeout",
        message: `the request's head must arrive within ${limits.headersTimeoutMs} ms and all of it within ${limits.requestTimeoutMs} ms`,
      };
    case "HPE_HEADER_OVERFLOW":
      return { status: 431, code: "headers_too_large", message: "request head too large" };
    default:
      return {
        status: 400,
        code: "bad_request",
        message: `not a valid HTTP/1.1 request (${errorCode ?? "parse error"})`,
      };
  }
}

/** The bytes of a complete answer that closes its connection. */
export function rawAnswer(a: ClientErrorAnswer): string {
  const body = JSON.stringify({ code: a.code, message: a.message });
  return (
    `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status]}\r\n` +
    "Content-Type: application/json; charset=utf-8\r\n" +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    "Connection: close\r\n\r\n" +
    body
  );
}
