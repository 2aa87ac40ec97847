/**
 * Live numbers per version from two scrapes of the proxies' /metrics: requests per second,
 * 5xx rate and p99 over the time between them. Pure; the Prometheus text is read by the same
 * code the controller's built-in metrics source uses (webhook/controller/decide/counts.ts),
 * so the CLI and the analysis cannot disagree on what a series means.
 */
import {
  addCounts,
  deltaCounts,
  parseCounts,
  quantileMs,
  type CountsByVersion,
} from "../webhook/controller/decide/counts.ts";

/** One scrape of an app's ready pods: pod name -> its counters, and when it was taken. */
export interface Scrape {
  at: number;
  pods: Map<string, CountsByVersion>;
}

export interface VersionTraffic {
  version: string;
  requests: number;
  errors: number;
  /** Requests per second over the window. */
  rps: number;
  /** 5xx share of the version's responses, percent; absent without requests. */
  errorRate?: number;
  /** p99 latency over the window, ms; absent without requests. */
  p99Ms?: number;
}

export interface Traffic {
  /** Milliseconds between the two scrapes. */
  windowMs: number;
  versions: VersionTraffic[];
  /** Share of the app's requests the release served, percent; absent without requests. */
  releaseShare?: number;
  /** Pods scraped both times. */
  pods: number;
}

export function toScrape(at: number, texts: ReadonlyMap<string, string>, app: string): Scrape {
  const pods = new Map<string, CountsByVersion>();
  for (const [pod, text] of texts) pods.set(pod, parseCounts(text, app));
  return { at, pods };
}

const round = (n: number, digits = 3): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

/**
 * Traffic between two scrapes. A pod present only in the later one counts from zero (it
 * started meanwhile); one present only in the earlier one is gone and counts nothing; a
 * counter that went down (the proxy restarted) counts from zero, as the controller does.
 */
export function trafficBetween(before: Scrape, after: Scrape, releaseVersion: string): Traffic {
  const windowMs = Math.max(1, after.at - before.at);
  const total: CountsByVersion = new Map();
  let pods = 0;
  for (const [pod, counts] of after.pods) {
    const base = before.pods.get(pod);
    if (base) pods++;
    addCounts(total, deltaCounts(counts, base));
  }
  const versions: VersionTraffic[] = [...total.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([version, c]) => {
      const v: VersionTraffic = {
        version,
        requests: c.requests,
        errors: c.errors,
        rps: round((c.requests * 1000) / windowMs, 2),
      };
      if (c.requests > 0) {
        v.errorRate = round((100 * c.errors) / c.requests);
        const p99 = quantileMs(0.99, c.buckets);
        if (p99 !== undefined) v.p99Ms = round(p99, 2);
      }
      return v;
    });
  const all = versions.reduce((n, v) => n + v.requests, 0);
  const release = versions.find((v) => v.version === releaseVersion)?.requests ?? 0;
  const out: Traffic = { windowMs, versions, pods };
  if (all > 0) out.releaseShare = round((100 * release) / all, 1);
  return out;
}
