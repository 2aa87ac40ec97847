/**
 * Reading deploy/observability/grafana-dashboard.json for the tests: its panels, the PromQL of
 * every target and template variable, made concrete (Grafana's variables replaced by what
 * Grafana would send when "All" is selected), and the metric names each reads.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { OBSERVABILITY } from "./observability-fixture.ts";

export const DASHBOARD_FILE = join(OBSERVABILITY, "grafana-dashboard.json");

export interface Target {
  expr: string;
  refId: string;
  legendFormat?: string;
  datasource?: { type: string; uid: string };
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
}

export interface Variable {
  name: string;
  type: string;
  query?: string | { query: string };
  allValue?: string;
}

export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
}

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_FILE, "utf8")) as Dashboard;
}

/** Every panel, rows' collapsed children included. */
export function panelsOf(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/**
 * What Grafana substitutes: a multi-value variable at "All" becomes its allValue (`.*`),
 * `$__rate_interval` at least four scrape intervals, `$__range` the time range.
 */
export function concrete(expr: string, rateInterval = "1m", range = "5m"): string {
  return expr
    .replaceAll("$__rate_interval", rateInterval)
    .replaceAll("$__range", range)
    .replaceAll("$namespace", ".*")
    .replaceAll("$app", ".*");
}

/** Grafana's `label_values(selector, label)` as the PromQL whose series it lists. */
function labelValuesQuery(query: string): string {
  const m = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(query.trim());
  if (!m) throw new Error(`not a label_values query: ${query}`);
  return `group by (${m[2]}) (${m[1]})`;
}

/** Each PromQL of the dashboard, named by where it is, as written (variables unreplaced). */
export function expressions(d: Dashboard): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const v of d.templating.list) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : (v.query?.query ?? "");
    out.push({ where: `variable ${v.name}`, expr: labelValuesQuery(q) });
  }
  for (const p of panelsOf(d)) {
    for (const t of p.targets ?? []) out.push({ where: `${p.title} ${t.refId}`, expr: t.expr });
  }
  return out;
}

// Grouping keywords, and aggregation operators (followed by `by (...)`, not by a parenthesis).
const KEYWORDS = new Set([
  ...["by", "without", "on", "ignoring", "group_left", "group_right"],
  ...["sum", "min", "max", "avg", "count", "group", "stddev", "stdvar"],
  ...["topk", "bottomk", "quantile", "count_values"],
]);

/**
 * Metric names a PromQL expression reads (`_bucket` series by their histogram's name). Lexical:
 * a name is an identifier followed by `{` or `[` or standing alone, minus functions,
 * keywords and label names inside braces or grouping clauses.
 */
export function metricNames(expr: string): Set<string> {
  const names = new Set<string>();
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "{}")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "$1()");
  for (const m of stripped.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?/g)) {
    const [, name, call] = m;
    if (call || KEYWORDS.has(name!) || /^\d/.test(name!)) continue;
    if (/^(and|or|unless|bool|offset|inf|nan)$/i.test(name!)) continue;
    if (/^\d+[smhdwy]$/.test(name!)) continue;
    names.add(name!.replace(/_bucket$/, ""));
  }
  return names;
}
