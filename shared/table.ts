/**
 * The routing table: the one JSON document the controller streams and `--routes FILE` holds
 * (docs/design.md, "Contracts"; field reference in docs/routing.md). Fields may be added, never renamed. Both sides import this file.
 */
import { err, ok, type Result } from "./errors.ts";
import { splitHostPort } from "./net.ts";

/**
 * A match rule; `weight` (percent, 0-100, decimals allowed; absent = 100) is the share of the
 * requests it matches that go to the release. Rules are tried in order, the first that matches
 * decides; 0 pins matching requests to stable.
 */
export type MatchRule = (
  | { header: string; value: string }
  | { header: string; regex: string }
  | { cookie: string; value: string }
  | { cookie: string; regex: string }
  | { pathPrefix: string }
) & { weight?: number };

/** A percent from 0 to 100 (decimals allowed): a release's or a rule's weight. */
export const isPercent = (v: unknown): v is number =>
  typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= 100;

export type StickyKey = { header: string } | { cookie: string };

export type Strategy = "canary" | "blue-green";

export interface Release {
  /** The version under release; every other version of the app is "stable". */
  version: string;
  strategy: Strategy;
  /** Percent (0-100, decimals allowed) of the app's traffic for `version`. */
  weight: number;
  match?: MatchRule[];
  sticky?: StickyKey;
  /**
   * Consecutive failures (5xx or no answer) of `version` after which a proxy stops sending it
   * new requests (stable serves them). Absent or 0: no cut-off.
   */
  cutoffFailures?: number;
}

export interface RoutingTable {
  app: string;
  /** Monotonic per app; a proxy ignores a table older than the one it has. */
  revision: number;
  release?: Release;
  /** version -> `host:port` of peers of that version that accept forwarded requests. */
  endpoints: Record<string, string[]>;
  /** version -> `host:port` where peers of that version accept forwarded gRPC calls. */
  grpcEndpoints?: Record<string, string[]>;
  /** Base64 HMAC key for hop tokens (the controller makes one per app). */
  hopKey?: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === "string";

function parseMatchRule(raw: unknown, at: string): Result<MatchRule> {
  if (!isRecord(raw)) return err(`${at}: must be an object`);
  if (raw.weight !== undefined && !isPercent(raw.weight)) {
    return err(`${at}.weight: must be a number from 0 to 100`);
  }
  const rule = parseRuleMatcher(raw, at);
  if (!rule.ok || raw.weight === undefined) return rule;
  return ok({ ...rule.value, weight: raw.weight });
}

function parseRuleMatcher(raw: Record<string, unknown>, at: string): Result<MatchRule> {
  if (isString(raw.pathPrefix)) {
    if (!raw.pathPrefix.startsWith("/")) return err(`${at}.pathPrefix: must start with "/"`);
    return ok({ pathPrefix: raw.pathPrefix });
  }
  const field = isString(raw.header) ? "header" : isString(raw.cookie) ? "cookie" : undefined;
  if (!field) return err(`${at}: needs one of header, cookie, pathPrefix`);
  const name = raw[field] as string;
  if (name === "") return err(`${at}.${field}: must not be empty`);
  const key = field === "header" ? name.toLowerCase() : name;
  if (isString(raw.regex)) {
    try {
      new RegExp(raw.regex);
    } catch (cause) {
      return err(`${at}.regex: ${(cause as Error).message}`);
    }
    return ok(
      field === "header" ? { header: key, regex: raw.regex } : { cookie: key, regex: raw.regex },
    );
  }
  if (isString(raw.value)) {
    return ok(
      field === "header" ? { header: key, value: raw.value } : { cookie: key, value: raw.value },
    );
  }
  return err(`${at}: needs value or regex`);
}

function parseRelease(raw: unknown): Result<Release> {
  if (!isRecord(raw)) return err("release: must be an object");
  if (!isString(raw.version) || raw.version === "") return err("release.version: required string");
  if (raw.strategy !== "canary" && raw.strategy !== "blue-green") {
    return err(
      `release.strategy: unsupported ${JSON.stringify(raw.strategy)}, use "canary" or "blue-green"`,
    );
  }
  const weight = raw.weight ?? 0;
  if (!isPercent(weight)) return err("release.weight: must be a number from 0 to 100");
  const release: Release = { version: raw.version, strategy: raw.strategy, weight };
  if (raw.cutoffFailures !== undefined) {
    const n = raw.cutoffFailures;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0)
      return err("release.cutoffFailures: must be a whole number (0: no cut-off)");
    if (n > 0) release.cutoffFailures = n;
  }
  if (raw.match !== undefined) {
    if (!Array.isArray(raw.match)) return err("release.match: must be an array");
    const rules: MatchRule[] = [];
    for (const [i, r] of raw.match.entries()) {
      const rule = parseMatchRule(r, `release.match[${i}]`);
      if (!rule.ok) return rule;
      rules.push(rule.value);
    }
    release.match = rules;
  }
  if (raw.sticky !== undefined) {
    const s = raw.sticky;
    if (isRecord(s) && isString(s.header) && s.header !== "")
      release.sticky = { header: s.header.toLowerCase() };
    else if (isRecord(s) && isString(s.cookie) && s.cookie !== "")
      release.sticky = { cookie: s.cookie };
    else return err("release.sticky: needs header or cookie");
  }
  return ok(release);
}

/** `endpoints` / `grpcEndpoints`: version -> ["host:port", ...]; absent is empty. */
function parseEndpoints(raw: unknown, field: string): Result<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  if (raw === undefined) return ok(out);
  if (!isRecord(raw)) return err(`${field}: must be an object of version -> [host:port]`);
  for (const [version, list] of Object.entries(raw)) {
    if (!Array.isArray(list) || !list.every(isString)) {
      return err(`${field}.${version}: must be an array of "host:port" strings`);
    }
    // A peer needs a host: ":15006" is a listen address, not an endpoint.
    const bad = list.find((a) => a.startsWith(":") || splitHostPort(a) === undefined);
    if (bad !== undefined)
      return err(`${field}.${version}: ${JSON.stringify(bad)} is not host:port`);
    out[version] = [...list];
  }
  return ok(out);
}

/** Shape-check untrusted JSON (a file, a stream event) into a table, or say what is wrong. */
export function parseRoutingTable(raw: unknown): Result<RoutingTable> {
  if (!isRecord(raw)) return err("table: must be a JSON object");
  if (!isString(raw.app) || raw.app === "") return err("app: required string");
  const revision = raw.revision ?? 0;
  if (typeof revision !== "number" || !Number.isInteger(revision) || revision < 0) {
    return err("revision: must be a non-negative integer");
  }
  const endpoints = parseEndpoints(raw.endpoints, "endpoints");
  if (!endpoints.ok) return endpoints;
  const table: RoutingTable = { app: raw.app, revision, endpoints: endpoints.value };
  if (raw.grpcEndpoints !== undefined) {
    const grpc = parseEndpoints(raw.grpcEndpoints, "grpcEndpoints");
    if (!grpc.ok) return grpc;
    table.grpcEndpoints = grpc.value;
  }
  if (raw.release !== undefined && raw.release !== null) {
    const release = parseRelease(raw.release);
    if (!release.ok) return release;
    table.release = release.value;
  }
  if (raw.hopKey !== undefined) {
    if (!isString(raw.hopKey)) return err("hopKey: must be a base64 string");
    table.hopKey = raw.hopKey;
  }
  return ok(table);
}

/** Parse JSON text (a file's content, an SSE `data:` payload) into a table. */
export function parseRoutingTableJson(text: string): Result<RoutingTable> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    return err(`not JSON: ${(cause as Error).message}`);
  }
  return parseRoutingTable(raw);
}
