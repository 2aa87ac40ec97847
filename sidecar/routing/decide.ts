/**
 * The routing decision, pure: request view + compiled table + this pod's version (+ a random
 * roll supplied by the caller) -> serve here, or forward to a peer of another version.
 */
import type { CompiledRelease, CompiledRule, CompiledTable, Peer } from "./compile.ts";
import { BUCKETS, bucketOf, bucketOfRoll } from "./hash.ts";
import { HOP_HEADER } from "./hop.ts";

export interface RequestView {
  /** The request's path, without the query. */
  readonly path: string;
  /**
   * A header's value by lowercased name; repeated fields joined with ", " (the Fetch API's
   * `Headers.get`, what the proxy passes). Undefined when absent.
   */
  header(name: string): string | undefined;
  /** A hop token signed for this app and this pod's version, not expired (see hop.ts). */
  readonly hopValid: boolean;
}

/** Header values as Fetch's `Headers` (HTTP/1.1) or node:http2's plain object (gRPC) hold them. */
export type HeaderSource = Headers | Readonly<Record<string, string | string[] | undefined>>;

/**
 * The view of a request: `path` without the query, a header by lowercased name with repeated
 * values joined by ", " (as `Headers.get` does). The hop header is hidden: it authenticates a
 * hop, it is not the client's to match on.
 */
export function viewOf(path: string, headers: HeaderSource, hopValid: boolean): RequestView {
  const get =
    headers instanceof Headers
      ? (name: string) => headers.get(name) ?? undefined
      : (name: string) => {
          const v = headers[name];
          return Array.isArray(v) ? v.join(", ") : v;
        };
  return { path, header: (name) => (name === HOP_HEADER ? undefined : get(name)), hopValid };
}

/**
 * Without a hop key nothing can be forwarded (a peer would not trust the call): serve here, and
 * name the wanted version so the caller counts a fallback. Every listener routes through this.
 */
export function withoutHopKey(d: Decision): Decision {
  return "forward" in d ? { serve: "local", reason: d.reason, fallback: d.forward } : d;
}

/** Why a version was chosen: the log field, the metric label and the docs' wording in one. */
export type RouteReason =
  | "hop-token"
  | "no-release"
  | "match"
  | "blue-green-promoted"
  | "blue-green-preview"
  | "sticky"
  | "random"
  | "health"
  | "cut-off"
  | "app-gone";

export type Decision =
  /** `fallback` names the wanted version when it had no peer (counted as a fallback). */
  | { serve: "local"; reason: RouteReason; fallback?: string }
  /** `forward`: the release version, or the stable side's label (CompiledTable.stableLabel). */
  | { forward: string; peers: readonly Peer[]; reason: RouteReason };

export const REASON_TEXT: Record<RouteReason, string> = {
  "hop-token": "forwarded by a peer with a valid hop token: served here",
  "no-release": "no release in progress: served where it landed",
  match: "the first matching rule decided, with its own weight (100 unless it says otherwise)",
  "blue-green-promoted": "blue-green promoted: all traffic to the release version",
  "blue-green-preview": "blue-green preview: traffic stays on stable unless a match rule applies",
  sticky: "weight split on the sticky key's bucket",
  random: "weight split on a random bucket",
  health: "a gRPC health check (grpc.health.v1): the kubelet asking about this pod, answered here",
  "cut-off":
    "the release failed verso.dev/cutoff-failures times in a row: stable serves until the controller acts",
  "app-gone":
    "this pod's app refused the connection (exiting or restarting): another pod of its version serves",
};

/** Cookie value by name from a Cookie header (`a=1; b=2`), without building a map. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(";", start);
    if (end === -1) end = header.length;
    const eq = header.indexOf("=", start);
    if (eq !== -1 && eq < end && header.slice(start, eq).trim() === name) {
      let v = header.slice(eq + 1, end).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v;
    }
    start = end + 1;
  }
  return undefined;
}

function ruleMatches(rule: CompiledRule, view: RequestView, cookie: string | undefined): boolean {
  switch (rule.kind) {
    case "header-value":
      return view.header(rule.name) === rule.value;
    case "header-regex": {
      const v = view.header(rule.name);
      return v !== undefined && rule.re.test(v);
    }
    case "cookie-value":
      return cookieValue(cookie, rule.name) === rule.value;
    case "cookie-regex": {
      const v = cookieValue(cookie, rule.name);
      return v !== undefined && rule.re.test(v);
    }
    case "path-prefix":
      return view.path.startsWith(rule.prefix);
  }
}

/**
 * The request's bucket: the sticky key's hash when the release has one and the request
 * carries it (the same bucket space for the release weight and every rule's weight, so a key
 * on the release stays there as either grows), else a random roll.
 */
function bucketFor(
  release: CompiledRelease,
  view: RequestView,
  cookie: string | undefined,
  roll: () => number,
): { bucket: number; sticky: boolean } {
  if (release.sticky) {
    const key =
      release.sticky.kind === "header"
        ? view.header(release.sticky.name)
        : cookieValue(cookie, release.sticky.name);
    if (key !== undefined && key !== "") return { bucket: bucketOf(key), sticky: true };
  }
  return { bucket: bucketOfRoll(roll()), sticky: false };
}

/**
 * Which side of the release a request belongs to, and why. The first matching rule decides
 * with its own weight (all of it at 100, none at 0: no roll then); requests no rule matches
 * get the strategy's answer.
 */
function chooseSide(
  release: CompiledRelease,
  view: RequestView,
  roll: () => number,
): { release: boolean; reason: RouteReason } {
  const cookie = release.needsCookies ? view.header("cookie") : undefined;
  for (const rule of release.rules) {
    if (!ruleMatches(rule, view, cookie)) continue;
    if (rule.threshold >= BUCKETS) return { release: true, reason: "match" };
    if (rule.threshold <= 0) return { release: false, reason: "match" };
    return {
      release: bucketFor(release, view, cookie, roll).bucket < rule.threshold,
      reason: "match",
    };
  }
  if (release.strategy === "blue-green") {
    return release.weight >= 100
      ? { release: true, reason: "blue-green-promoted" }
      : { release: false, reason: "blue-green-preview" };
  }
  if (release.threshold <= 0) return { release: false, reason: "random" };
  const { bucket, sticky } = bucketFor(release, view, cookie, roll);
  return { release: bucket < release.threshold, reason: sticky ? "sticky" : "random" };
}

// The steady-state answers (no release, forwarded in) allocate nothing per request.
const HOP_TOKEN: Decision = Object.freeze({ serve: "local", reason: "hop-token" });
const NO_RELEASE: Decision = Object.freeze({ serve: "local", reason: "no-release" });
const CUT_SIDE = Object.freeze({ release: false, reason: "cut-off" as RouteReason });

/*
 * Truth table (R = release version, S = any other version; "peers" = ready peers of the target).
 * Mirrored row by row in decide.test.ts.
 *
 * | hop token | release | match | strategy / split            | self | result                  |
 * |-----------|---------|-------|-----------------------------|------|-------------------------|
 * | valid     | any     | any   | any                         | any  | local  (hop-token)      |
 * | none/bad  | absent  | -     | -                           | any  | local  (no-release)     |
 * | none/bad  | R       | yes   | rule weight 100 (default)   | R    | local  (match)          |
 * | none/bad  | R       | yes   | rule weight 100 (default)   | S    | forward R (match)       |
 * | none/bad  | R       | yes   | rule weight 0               | S/R  | local / forward stable  |
 * | none/bad  | R       | yes   | rule, bucket < w*100        | R/S  | local / forward R       |
 * | none/bad  | R       | yes   | rule, bucket >= w*100       | S/R  | local / forward stable  |
 * | none/bad  | R       | no    | blue-green, weight 100      | R    | local                   |
 * | none/bad  | R       | no    | blue-green, weight 100      | S    | forward R               |
 * | none/bad  | R       | no    | blue-green, weight < 100    | S    | local  (preview)        |
 * | none/bad  | R       | no    | blue-green, weight < 100    | R    | forward stable          |
 * | none/bad  | R       | no    | canary, bucket < weight*100 | R/S  | local / forward R       |
 * | none/bad  | R       | no    | canary, bucket >= ...       | S/R  | local / forward stable  |
 * | none/bad  | R, cut  | any   | any (cutoff.ts tripped)     | S/R  | local / forward stable  |
 * | forward wanted but the target has no peers                 | any  | local, fallback=target  |
 * The bucket is the sticky key's hash when the key is present, else a random roll; the first
 * matching rule decides (w = its weight) whatever the strategy.
 */
export function decide(
  view: RequestView,
  table: CompiledTable | undefined,
  selfVersion: string,
  roll: () => number,
  releaseCut = false,
): Decision {
  if (view.hopValid) return HOP_TOKEN;
  const release = table?.release;
  if (!table || !release) return NO_RELEASE;
  const side = releaseCut ? CUT_SIDE : chooseSide(release, view, roll);
  if (side.release) {
    if (selfVersion === release.version) return { serve: "local", reason: side.reason };
    const peers = table.peers.get(release.version);
    if (!peers || peers.length === 0) {
      return { serve: "local", reason: side.reason, fallback: release.version };
    }
    return { forward: release.version, peers, reason: side.reason };
  }
  if (selfVersion !== release.version) return { serve: "local", reason: side.reason };
  if (table.stablePeers.length === 0) {
    return { serve: "local", reason: side.reason, fallback: "stable" };
  }
  return { forward: table.stableLabel, peers: table.stablePeers, reason: side.reason };
}
