/**
 * Per-version request counts and latency histograms read from the proxies' Prometheus text,
 * and the arithmetic on them (deltas over an interval, p99 from buckets). Pure.
 */
import { METRIC } from "../../../shared/metric-names.ts";
import type { VersionStats } from "./analyse.ts";

/** Cumulative counts of one version (one pod, or summed over pods). */
export interface VersionCounts {
  requests: number;
  errors: number;
  /** Histogram buckets: upper bound in seconds (Infinity for +Inf) -> cumulative count. */
  buckets: Map<number, number>;
}

export type CountsByVersion = Map<string, VersionCounts>;

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function labelsOf(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const m of text.matchAll(LABEL)) {
    out[m[1] as string] = (m[2] as string).replace(/\\(.)/g, (_s, c: string) =>
      c === "n" ? "\n" : c,
    );
  }
  return out;
}

const empty = (): VersionCounts => ({ requests: 0, errors: 0, buckets: new Map() });

/** The series of `app` in one scrape, by version. Other apps and series are ignored. */
export function parseCounts(text: string, app: string): CountsByVersion {
  const out: CountsByVersion = new Map();
  const bucketName = `${METRIC.duration}_bucket`;
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const name = m[1];
    if (name !== METRIC.requests && name !== bucketName) continue;
    const labels = labelsOf(m[2]);
    const version = labels.version;
    if (labels.app !== app || !version) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    let c = out.get(version);
    if (!c) out.set(version, (c = empty()));
    if (name === METRIC.requests) {
      c.requests += value;
      if (labels.code_class === "5xx") c.errors += value;
    } else {
      const le = labels.le === "+Inf" ? Infinity : Number(labels.le);
      if (Number.isFinite(le) || le === Infinity)
        c.buckets.set(le, (c.buckets.get(le) ?? 0) + value);
    }
  }
  return out;
}

export function addCounts(into: CountsByVersion, more: CountsByVersion): CountsByVersion {
  for (const [version, c] of more) {
    const t = into.get(version) ?? empty();
    t.requests += c.requests;
    t.errors += c.errors;
    for (const [le, n] of c.buckets) t.buckets.set(le, (t.buckets.get(le) ?? 0) + n);
    into.set(version, t);
  }
  return into;
}

/**
 * now - before for one pod's counters. A counter below its baseline means the proxy
 * restarted; its whole current value is then the interval's (as Prometheus' rate() does).
 */
export function deltaCounts(
  now: CountsByVersion,
  before: CountsByVersion | undefined,
): CountsByVersion {
  const out: CountsByVersion = new Map();
  for (const [version, c] of now) {
    const b = before?.get(version);
    const reset = b !== undefined && c.requests < b.requests;
    const base = reset || !b ? empty() : b;
    const d = empty();
    d.requests = c.requests - base.requests;
    d.errors = Math.max(0, c.errors - base.errors);
    for (const [le, n] of c.buckets)
      d.buckets.set(le, Math.max(0, n - (base.buckets.get(le) ?? 0)));
    out.set(version, d);
  }
  return out;
}

/** Like PromQL histogram_quantile: linear interpolation inside the bucket holding the rank. */
export function quantileMs(q: number, buckets: Map<number, number>): number | undefined {
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Infinity) return prevLe * 1000;
      const inBucket = count - prevCount;
      const frac = inBucket > 0 ? (rank - prevCount) / inBucket : 1;
      return (prevLe + (le - prevLe) * frac) * 1000;
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe * 1000;
}

/** Release version vs every other version together. */
export function toStats(
  delta: CountsByVersion,
  releaseVersion: string,
): { release: VersionStats; stable: VersionStats } {
  const stable: CountsByVersion = new Map();
  for (const [v, c] of delta) if (v !== releaseVersion) addCounts(stable, new Map([["stable", c]]));
  const stats = (c: VersionCounts | undefined): VersionStats => {
    if (!c) return { requests: 0, errors: 0 };
    const p99 = quantileMs(0.99, c.buckets);
    return { requests: c.requests, errors: c.errors, ...(p99 !== undefined ? { p99Ms: p99 } : {}) };
  };
  return { release: stats(delta.get(releaseVersion)), stable: stats(stable.get("stable")) };
}
