/**
 * Header handling for a hop: hop-by-hop headers (RFC 9110 7.6.1) and the ones named in
 * `Connection` are removed, `Host` is preserved, `X-Forwarded-*` are set once, by the proxy where
 * the request landed (a peer receiving a forwarded request keeps them as they are).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { HOP_HEADER, type HopKeys } from "../routing/hop.ts";

/** Added to responses served by this pod's app (unless `--version-header false`). */
export const VERSION_HEADER = "x-verso-version";

/** Hop-by-hop names, lowercased: never copied across a hop, in either direction. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  HOP_HEADER,
]);

/** Header names a `Connection` value lists (lowercased), or undefined when it lists none. */
export function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(",") : value;
  let tokens: Set<string> | undefined;
  for (const t of text.split(",")) {
    const name = t.trim().toLowerCase();
    // `close` and `keep-alive` are options, not header names worth a set.
    if (name !== "" && name !== "close" && name !== "keep-alive") (tokens ??= new Set()).add(name);
  }
  return tokens;
}

/** Copy every header except the hop-by-hop ones and those `Connection` names. */
function endToEnd(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const named = connectionTokens(incoming.connection);
  for (const name in incoming) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    out[name] = incoming[name];
  }
  return out;
}

/**
 * Verify the request's hop token and strip it from the incoming headers (so no match rule
 * sees it). True only for a token signed for this app and version and not expired.
 */
export function takeHopToken(headers: IncomingHttpHeaders, keys: HopKeys, nowMs: number): boolean {
  const hop = headers[HOP_HEADER];
  if (hop === undefined) return false;
  delete headers[HOP_HEADER];
  return typeof hop === "string" && keys.verify(hop, nowMs);
}

export interface ForwardedFrom {
  /** Client address as the landing proxy saw it; undefined: keep X-Forwarded-* unchanged. */
  remoteAddress: string | undefined;
  upgrade: boolean;
}

/** Headers for the upstream request (the local app or a peer). */
export function requestHeaders(
  incoming: IncomingHttpHeaders,
  from: ForwardedFrom,
): OutgoingHttpHeaders {
  const out = endToEnd(incoming);
  // node:http has already de-chunked the body; ask the client side to chunk it again.
  if (incoming["transfer-encoding"] !== undefined && incoming["content-length"] === undefined) {
    out["transfer-encoding"] = "chunked";
  }
  if (from.upgrade && incoming.upgrade !== undefined) {
    out.connection = "upgrade";
    out.upgrade = incoming.upgrade;
  }
  if (from.remoteAddress !== undefined) {
    const prior = incoming["x-forwarded-for"];
    out["x-forwarded-for"] = prior ? `${prior}, ${from.remoteAddress}` : from.remoteAddress;
    if (incoming["x-forwarded-proto"] === undefined) out["x-forwarded-proto"] = "http";
    if (incoming["x-forwarded-host"] === undefined && incoming.host !== undefined) {
      out["x-forwarded-host"] = incoming.host;
    }
  }
  return out;
}

/** Headers for the response to the client. */
export function responseHeaders(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  return endToEnd(incoming);
}
