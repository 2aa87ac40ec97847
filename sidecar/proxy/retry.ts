/**
 * What to do after an upstream attempt failed before a response arrived (pure). The one place
 * that decides retry safety, for plain requests and websocket handshakes alike.
 */
import type { UpstreamErrorKind } from "../metrics/metrics.ts";

/** Bun's fetch error codes (and ours) by what they mean for a retry. */
export function errorKind(error: unknown, side: "app" | "peer"): UpstreamErrorKind {
  const code = (error as { code?: unknown; name?: unknown } | null)?.code;
  const name = (error as { name?: unknown } | null)?.name;
  switch (code) {
    case "ECONNREFUSED":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
    case "ConnectionRefused":
    case "FailedToOpenSocket":
      return side === "app" ? "app-connect" : "peer-connect";
    case "ECONNRESET":
    case "EPIPE":
    case "ConnectionClosed":
      return side === "app" ? "app-reset" : "peer-reset";
    case "ETIMEDOUT":
    case "UND_ERR_HEADERS_TIMEOUT":
      return side === "app" ? "app-timeout" : "peer-timeout";
  }
  if (name === "TimeoutError") return side === "app" ? "app-timeout" : "peer-timeout";
  return "other";
}

export const IDEMPOTENT: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "PUT",
  "DELETE",
]);

export interface Attempted {
  readonly kind: UpstreamErrorKind;
  readonly method: string;
  /** No request body at all (a retry cannot resend what was streamed once). */
  readonly bodyless: boolean;
  /** This request already had its one grace retry after a reset. */
  readonly resetRetried: boolean;
}

/**
 * - `again`: the same target may be tried once more (a pooled keep-alive socket the upstream
 *   closed just as it was reused);
 * - `next`: try another peer, then the local app (`markDown`: skip this peer for a while);
 * - `fail`: answer 502/504 (`status`).
 *
 * Truth table (mirrored in retry.test.ts):
 * | side | kind     | body / method               | first reset | result                   |
 * |------|----------|-----------------------------|-------------|--------------------------|
 * | any  | connect  | any (nothing was sent)      | -           | peer: next+down; app: 502|
 * | app  | reset    | bodyless idempotent         | yes         | again                    |
 * | app  | reset    | otherwise                   | -           | 502                      |
 * | peer | reset    | bodyless idempotent         | yes         | again (peer kept)        |
 * | peer | reset    | bodyless idempotent         | no          | next+down                |
 * | peer | reset    | a body, or not idempotent   | -           | 502 (may have reached it)|
 * | any  | timeout  | any                         | -           | 504                      |
 * | any  | other    | any                         | -           | 502                      |
 */
export type RetryPlan =
  { do: "again" } | { do: "next"; markDown: boolean } | { do: "fail"; status: 502 | 504 };

export function planRetry(a: Attempted): RetryPlan {
  const replayable = a.bodyless && IDEMPOTENT.has(a.method);
  switch (a.kind) {
    case "peer-connect":
      return { do: "next", markDown: true };
    case "peer-reset":
      if (!replayable) return { do: "fail", status: 502 };
      return a.resetRetried ? { do: "next", markDown: true } : { do: "again" };
    case "app-reset":
      return replayable && !a.resetRetried ? { do: "again" } : { do: "fail", status: 502 };
    case "app-timeout":
    case "peer-timeout":
      return { do: "fail", status: 504 };
    default:
      return { do: "fail", status: 502 };
  }
}
