/**
 * Prometheus as the metrics source: PromQL over the proxies' own series, so the numbers are
 * the ones users already graph. The window is the step's interval.
 */
import { request } from "undici";
import type { Measurements, VersionStats } from "../../decide/analyse.ts";
import { queriesFor, scalarOf } from "../../decide/promql.ts";
import type { MetricsSource, Target } from "./source.ts";

export function createPrometheusSource(baseUrl: string, timeoutMs = 5_000): MetricsSource {
  async function query(promql: string): Promise<number | undefined> {
    const url = new URL("/api/v1/query", baseUrl);
    url.searchParams.set("query", promql);
    const res = await request(url, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const body = (await res.body.json()) as unknown;
    return scalarOf(body);
  }
  async function side(t: Target, which: "release" | "stable"): Promise<VersionStats> {
    const qs = queriesFor(t, which);
    const [requests, errors, p99] = await Promise.all([
      query(qs.requests),
      query(qs.errors),
      query(qs.p99),
    ]);
    const stats: VersionStats = {
      requests: Math.round(requests ?? 0),
      errors: Math.round(errors ?? 0),
    };
    if (p99 !== undefined) stats.p99Ms = p99 * 1000;
    return stats;
  }
  return {
    name: "prometheus",
    async begin() {},
    async measure(t): Promise<Measurements> {
      const [release, stable] = await Promise.all([side(t, "release"), side(t, "stable")]);
      return { release, stable };
    },
  };
}
