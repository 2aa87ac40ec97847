/**
 * Header handling for a hop: hop-by-hop headers (RFC 9110 7.6.1) and the ones named in
 * `Connection` are removed, `Host` is preserved, `X-Forwarded-*` are set once, by the proxy where
 * the request landed (a peer receiving a forwarded request keeps them as they are).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { HOP_HEADER } from "../routing/hop.ts";

const HOP_BY_HOP = new Set([
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

function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
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
  const out: OutgoingHttpHeaders = {};
  const named = connectionTokens(incoming.connection);
  for (const name in incoming) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    out[name] = incoming[name];
  }
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
  const out: OutgoingHttpHeaders = {};
  const named = connectionTokens(incoming.connection);
  for (const name in incoming) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    out[name] = incoming[name];
  }
  return out;
}
