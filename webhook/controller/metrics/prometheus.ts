/**
 * Prometheus as the metrics source: PromQL over the proxies' own series, so the numbers are
 * the ones users already graph. The window is the step's interval.
 */
import { request } from "undici";
import { METRIC } from "../../../shared/metric-names.ts";
import { VersoError } from "../../../shared/errors.ts";
import type { Measurements, VersionStats } from "../analyse.ts";
import type { MetricsSource, Target } from "./source.ts";

const q = (s: string): string => JSON.stringify(s);

/** The queries for one side: release (`version="v2"`) or stable (`version!="v2"`). */
export function queriesFor(
  t: Target,
  side: "release" | "stable",
): { requests: string; errors: string; p99: string } {
  const op = side === "release" ? "=" : "!=";
  const sel = `namespace=${q(t.namespace)},app=${q(t.app)},version${op}${q(t.releaseVersion)}`;
  const w = `${Math.max(1, Math.round(t.intervalMs / 1000))}s`;
  return {
    requests: `sum(increase(${METRIC.requests}{${sel}}[${w}]))`,
    errors: `sum(increase(${METRIC.requests}{${sel},code_class="5xx"}[${w}]))`,
    p99: `histogram_quantile(0.99, sum by (le) (rate(${METRIC.duration}_bucket{${sel}}[${w}])))`,
  };
}

/** First sample of an instant-vector answer; undefined for an empty vector or NaN. */
export function scalarOf(body: unknown): number | undefined {
  const data = (body as { status?: string; data?: { result?: { value?: [number, string] }[] } })
    ?.data;
  if ((body as { status?: string })?.status !== "success") {
    throw new VersoError(
      "PROMETHEUS_QUERY",
      `prometheus answered ${JSON.stringify(body).slice(0, 200)}`,
    );
  }
  const v = data?.result?.[0]?.value?.[1];
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

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
