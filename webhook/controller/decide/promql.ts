/**
 * The PromQL the Prometheus source issues and how its answers are read. Pure: the HTTP calls
 * are in io/metrics/prometheus.ts.
 */
import { METRIC } from "../../../shared/metric-names.ts";
import { VersoError } from "../../../shared/errors.ts";
import type { Target } from "../io/metrics/source.ts";

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
