/**
 * Header handling for a hop, on Fetch API `Headers` (Bun.serve's request, fetch's response),
 * edited in place so a request costs no copy: hop-by-hop headers (RFC 9110 7.6.1) and the ones
 * named in `Connection` are removed, `Host` is preserved, `X-Forwarded-*` are set once, by the
 * proxy where the request landed (a peer receiving a forwarded request keeps them as they are).
 */
import { HOP_HEADER } from "../routing/hop.ts";

/** Added to responses served by this pod's app (unless `--version-header false`). */
export const VERSION_HEADER = "x-verso-version";

/** Hop-by-hop names, lowercased: never copied across a hop, in either direction. */
export const HOP_BY_HOP: readonly string[] = [
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
];

/** Header names a `Connection` value lists (lowercased), or undefined when it lists none. */
export function connectionTokens(value: string | null | undefined): Set<string> | undefined {
  if (value === null || value === undefined) return undefined;
  let tokens: Set<string> | undefined;
  for (const t of value.split(",")) {
    const name = t.trim().toLowerCase();
    // `close` and `keep-alive` are options, not header names worth a set.
    if (name !== "" && name !== "close" && name !== "keep-alive") (tokens ??= new Set()).add(name);
  }
  return tokens;
}

/** Remove the hop-by-hop headers and those `Connection` names. */
export function stripHopByHop(h: Headers): void {
  const named = connectionTokens(h.get("connection"));
  if (named) for (const name of named) h.delete(name);
  for (const name of HOP_BY_HOP) if (h.has(name)) h.delete(name);
}

/**
 * What Bun's fetch adds to a request that lacks them. `User-Agent: Bun/x` would tell the app
 * a lie about its client: an empty value is sent instead (Bun cannot omit it). `Accept: *\/*`
 * is kept: RFC 9110 12.5.1 gives it the same meaning as no Accept at all.
 */
const EMPTY_UNLESS_SENT = "user-agent";

/**
 * The request headers for the upstream (the local app or a peer), edited in place.
 * `clientIp`: the client's address as this proxy saw it; undefined when the request arrived
 * forwarded by a peer (its X-Forwarded-* are already set).
 */
export function toUpstream(h: Headers, clientIp: string | undefined): Headers {
  stripHopByHop(h);
  if (!h.has(EMPTY_UNLESS_SENT)) h.set(EMPTY_UNLESS_SENT, "");
  if (clientIp !== undefined) {
    const prior = h.get("x-forwarded-for");
    h.set("x-forwarded-for", prior ? `${prior}, ${clientIp}` : clientIp);
    if (!h.has("x-forwarded-proto")) h.set("x-forwarded-proto", "http");
    const host = h.get("host");
    if (!h.has("x-forwarded-host") && host !== null) h.set("x-forwarded-host", host);
  }
  return h;
}

/**
 * Host (RFC 3986 3.2.2-3.2.3): reg-name / IPv4 / [IP-literal], then an optional port. No
 * space, so it also refuses several Host lines, which Bun.serve joins with ", ".
 */
const HOST = /^[A-Za-z0-9\-._~%!$&'()*+,;=:[\]]*$/;

/**
 * Why a request Bun.serve accepted must not be forwarded (the `x-verso-error` of a 400), or
 * undefined. Bun.serve refuses the rest itself: CL with TE, differing Content-Lengths,
 * obfuscated Transfer-Encoding, bad request lines (test/process/sidecar-hostile.test.ts).
 * - Repeated Content-Length lines with the same value are accepted by Bun and joined ("5, 5"),
 *   which Bun's fetch then refuses: without this the client got a 502 counted as an app
 *   error, so a hostile client could raise a canary's error rate at will.
 * - RFC 9112 3.2: a server MUST answer 400 to more than one Host line or an invalid Host;
 *   Bun.serve forwards both (the app saw `host: shop, other` and `host: a/b`).
 */
export function malformed(h: Headers): string | undefined {
  if (h.get("content-length")?.includes(",")) return "bad-content-length";
  const host = h.get("host");
  if (host !== null && !HOST.test(host)) return "bad-host";
  return undefined;
}
