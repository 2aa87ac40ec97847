/**
 * One access log line, pure: what the proxy knows about a finished request -> one JSON line.
 * The fields are documented in docs/observability.md ("Access logs"); a field is renamed
 * never, added freely (users' log pipelines parse these names).
 */
import type { RouteReason } from "../routing/decide.ts";

/** What stays the same for every line of this proxy: the pod's identity and the options. */
export interface LineContext {
  readonly app: string;
  /** This pod's version (a Loki label: one stream per pod version). */
  readonly version: string;
  /** The pod's blue-green colour, when it has one. */
  readonly color: string | undefined;
  /** Keep the query string in `path` (off by default: it may carry tokens or personal data). */
  readonly includeQuery: boolean;
}

/** One finished request, as the proxy saw it. */
export interface RequestFacts {
  /** Arrival, milliseconds since the epoch. */
  readonly startMs: number;
  readonly durationMs: number;
  readonly route: RouteReason;
  /** The peer that answered; undefined when this pod's app did (or nobody did). */
  readonly peer: { readonly addr: string; readonly version: string } | undefined;
  /** The version that was wanted but had no peer that answered, so this pod served instead. */
  readonly fallback: string | undefined;
  readonly method: string;
  /** Path and query as the client sent them. */
  readonly target: string;
  readonly status: number;
  /** Response body bytes sent to the client. */
  readonly bytes: number;
  /** The request's `traceparent` header, if any. */
  readonly traceparent: string | null;
}

/** The line's fields, in the order they are written. */
export interface AccessLine {
  time: string;
  app: string;
  version: string;
  color?: string;
  route: RouteReason;
  forwarded: boolean;
  servedBy: string;
  fallback?: string;
  method: string;
  path: string;
  status: number;
  bytes: number;
  durationMs: number;
  upstream: string;
  traceId?: string;
}

/**
 * W3C Trace Context: `version-traceid-parentid-flags`, lowercase hex. Version 00 is exactly
 * that long; a later version may append fields after a "-"; version ff, and all-zero trace or
 * parent ids, are invalid (https://www.w3.org/TR/trace-context/#traceparent-header).
 */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(?:$|-)/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_PARENT = "0".repeat(16);

/** The trace id of a valid `traceparent`, else undefined (a bad header is not the log's to fix). */
export function traceIdOf(traceparent: string | null): string | undefined {
  if (traceparent === null) return undefined;
  const header = traceparent.trim();
  const m = TRACEPARENT.exec(header);
  if (m === null) return undefined;
  const [whole, version, traceId, parentId] = m;
  if (version === "ff" || traceId === ZERO_TRACE || parentId === ZERO_PARENT) return undefined;
  if (version === "00" && whole.length !== header.length) return undefined;
  return traceId;
}

/** The request target as logged: without the query unless asked for. */
export function loggedPath(target: string, includeQuery: boolean): string {
  if (includeQuery) return target;
  const q = target.indexOf("?");
  return q === -1 ? target : target.slice(0, q);
}

/** The line's fields (undefined optional ones are left out of the JSON). */
export function accessLine(ctx: LineContext, f: RequestFacts): AccessLine {
  return {
    time: new Date(f.startMs).toISOString(),
    app: ctx.app,
    version: ctx.version,
    color: ctx.color,
    route: f.route,
    forwarded: f.peer !== undefined,
    servedBy: f.peer?.version ?? ctx.version,
    fallback: f.fallback,
    method: f.method,
    path: loggedPath(f.target, ctx.includeQuery),
    status: f.status,
    bytes: f.bytes,
    // Microseconds are noise at this scale and cost bytes on every line.
    durationMs: Math.round(f.durationMs * 1000) / 1000,
    upstream: f.peer?.addr ?? "local",
    traceId: traceIdOf(f.traceparent),
  };
}

/** One line, newline-terminated, as written to stdout. */
export function formatAccessLine(ctx: LineContext, f: RequestFacts): string {
  return `${JSON.stringify(accessLine(ctx, f))}\n`;
}
