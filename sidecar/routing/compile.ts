/**
 * Compile a routing table once per change into what the hot path needs: regexes built,
 * header names lowercased, peer lists resolved per version, the weight as a bucket threshold.
 * Per request the proxy then only looks things up (build once at load, look up per request).
 */
import type { MatchRule, RoutingTable, Strategy } from "../../shared/table.ts";
import { splitHostPort } from "../../shared/net.ts";
import { thresholdFor } from "./hash.ts";

export type CompiledMatcher =
  | { kind: "header-value"; name: string; value: string }
  | { kind: "header-regex"; name: string; re: RegExp }
  | { kind: "cookie-value"; name: string; value: string }
  | { kind: "cookie-regex"; name: string; re: RegExp }
  | { kind: "path-prefix"; prefix: string };

/** A matcher and its weight as a bucket threshold (BUCKETS: all matching requests go). */
export type CompiledRule = CompiledMatcher & { readonly threshold: number };

export interface Peer {
  /** `host:port` as written in the table. */
  readonly addr: string;
  readonly host: string;
  readonly port: number;
  /** `http://host:port`, the dispatcher's pool key. */
  readonly origin: string;
  /** The version this peer serves (a hop token is signed for it). */
  readonly version: string;
}

export interface CompiledRelease {
  readonly version: string;
  readonly strategy: Strategy;
  readonly weight: number;
  /** Buckets (of BUCKETS) that go to the release. */
  readonly threshold: number;
  readonly rules: readonly CompiledRule[];
  readonly sticky?: { kind: "header" | "cookie"; name: string };
  /** True when any rule or the sticky key reads cookies (parse the Cookie header only then). */
  readonly needsCookies: boolean;
  /** Consecutive failures before the proxy cuts the release off (cutoff.ts); 0: never. */
  readonly cutoffFailures: number;
}

export interface CompiledTable {
  readonly app: string;
  readonly revision: number;
  readonly release?: CompiledRelease;
  /** Ready peers per version. */
  readonly peers: ReadonlyMap<string, readonly Peer[]>;
  /** Peers of every version except the release ("stable" is everything else). */
  readonly stablePeers: readonly Peer[];
  /** Metric/log label of the stable side: its one version, or "stable" when several share it. */
  readonly stableLabel: string;
}

function compileMatcher(r: MatchRule): CompiledMatcher {
  if ("pathPrefix" in r) return { kind: "path-prefix", prefix: r.pathPrefix };
  if ("header" in r) {
    const name = r.header.toLowerCase();
    return "regex" in r
      ? { kind: "header-regex", name, re: new RegExp(r.regex) }
      : { kind: "header-value", name, value: r.value };
  }
  return "regex" in r
    ? { kind: "cookie-regex", name: r.cookie, re: new RegExp(r.regex) }
    : { kind: "cookie-value", name: r.cookie, value: r.value };
}

function compileRules(table: RoutingTable): CompiledRule[] {
  return (table.release?.match ?? []).map((r) => ({
    ...compileMatcher(r),
    threshold: thresholdFor(r.weight ?? 100),
  }));
}

function toPeers(version: string, addrs: readonly string[]): Peer[] {
  const peers: Peer[] = [];
  for (const addr of addrs) {
    const hp = splitHostPort(addr);
    if (hp) peers.push({ addr, host: hp.host, port: hp.port, origin: `http://${addr}`, version });
  }
  return peers;
}

/** The table must already be shape-checked by parseRoutingTable. */
export function compileTable(table: RoutingTable): CompiledTable {
  const peers = new Map<string, readonly Peer[]>();
  for (const [version, addrs] of Object.entries(table.endpoints)) {
    peers.set(version, Object.freeze(toPeers(version, addrs)));
  }
  let release: CompiledRelease | undefined;
  if (table.release) {
    const r = table.release;
    const rules = compileRules(table);
    const sticky = r.sticky
      ? "header" in r.sticky
        ? { kind: "header" as const, name: r.sticky.header.toLowerCase() }
        : { kind: "cookie" as const, name: r.sticky.cookie }
      : undefined;
    release = Object.freeze({
      version: r.version,
      strategy: r.strategy,
      weight: r.weight,
      threshold: thresholdFor(r.weight),
      rules: Object.freeze(rules),
      ...(sticky ? { sticky } : {}),
      needsCookies:
        sticky?.kind === "cookie" ||
        rules.some((x) => x.kind === "cookie-value" || x.kind === "cookie-regex"),
      cutoffFailures: r.cutoffFailures ?? 0,
    });
  }
  const stablePeers: Peer[] = [];
  for (const [version, list] of peers) {
    if (version !== release?.version) stablePeers.push(...list);
  }
  const stableVersions = new Set(stablePeers.map((p) => p.version));
  const stableLabel = stableVersions.size === 1 ? [...stableVersions][0]! : "stable";
  return Object.freeze({
    app: table.app,
    revision: table.revision,
    ...(release ? { release } : {}),
    peers,
    stablePeers: Object.freeze(stablePeers),
    stableLabel,
  });
}
