/**
 * View models -> text: the `list` table, the `get` page, a `--watch` frame. Pure (the clock
 * and colour are arguments), so every layout is a table test.
 */
import type { EventRow, GateRow, ReleaseRow, ReleaseView } from "./model.ts";

export interface RenderOptions {
  now: number;
  color: boolean;
}

const ESC = "\x1b[";
const CODES = {
  bold: "1",
  dim: "2",
  red: "31",
  green: "32",
  yellow: "33",
  blue: "34",
  cyan: "36",
} as const;
type Style = keyof typeof CODES;

export const paint = (on: boolean, style: Style, text: string): string =>
  on && text !== "" ? `${ESC}${CODES[style]}m${text}${ESC}0m` : text;

// eslint-disable-next-line no-control-regex -- matching terminal escapes is the point
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
/** Printed width: escape sequences take no room. */
export const visibleLength = (s: string): number => s.replace(ANSI, "").length;

/** Columns padded to their widest cell, three spaces apart, as kubectl prints. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) =>
    Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ""))),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) =>
        i === cells.length - 1 ? c : c + " ".repeat((widths[i] ?? 0) - visibleLength(c) + 3),
      )
      .join("")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** kubectl-style age: 45s, 12m, 5h, 3d. */
export function age(fromIso: string | undefined, now: number): string {
  if (!fromIso) return "-";
  const t = Date.parse(fromIso);
  if (!Number.isFinite(t)) return "-";
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

const num = (n: number): string => String(Math.round(n * 100) / 100);
export const pct = (n: number | undefined): string => (n === undefined ? "-" : `${num(n)}%`);
const ms = (n: number | undefined): string => (n === undefined ? "-" : `${num(n)}ms`);
const dur = (millis: number): string =>
  millis % 60_000 === 0 ? `${millis / 60_000}m` : `${Math.round(millis / 100) / 10}s`;

const PHASE_STYLE: Record<string, Style> = {
  Promoted: "green",
  Failed: "red",
  Paused: "yellow",
  Progressing: "cyan",
  Pending: "blue",
};
const phaseText = (phase: string, color: boolean): string =>
  paint(color, PHASE_STYLE[phase] ?? "dim", phase);

export function renderList(
  rows: readonly ReleaseRow[],
  options: RenderOptions & { allNamespaces: boolean; namespace: string },
): string {
  if (rows.length === 0)
    return options.allNamespaces
      ? "No releases found."
      : `No releases found in namespace ${options.namespace}.`;
  const headers = ["APP", "STRATEGY", "PHASE", "STEP", "DESIRED", "ACTUAL", "AGE"];
  const body = rows.map((r) => [
    r.app,
    r.strategy,
    phaseText(r.phase, options.color),
    r.step ?? "-",
    pct(r.desiredWeight),
    pct(r.actualWeight),
    age(r.created, options.now),
  ]);
  return options.allNamespaces
    ? table(
        ["NAMESPACE", ...headers],
        body.map((cells, i) => [rows[i]!.namespace, ...cells]),
      )
    : table(headers, body);
}

const GATE_NAMES: Record<GateRow["gate"], string> = {
  "error-rate": "error rate",
  p99: "p99",
  "p99-ratio": "p99 / stable p99",
  "min-requests": "requests",
};

/** `x` in the gate's unit. */
function inUnit(unit: GateRow["unit"], x: number): string {
  return unit === "%" ? pct(x) : unit === "ms" ? ms(x) : unit === "x" ? `${num(x)}x` : String(x);
}

function gateValue(g: GateRow): string {
  return g.value === undefined ? "-" : inUnit(g.unit, g.value);
}

function gateThreshold(g: GateRow): string {
  const v = inUnit(g.unit, g.threshold);
  return g.gate === "min-requests" ? `>= ${v}` : `<= ${v}`;
}

function gateResult(g: GateRow, color: boolean): string {
  const style: Style = g.result === "pass" ? "green" : g.result === "fail" ? "red" : "dim";
  return paint(color, style, g.result);
}

function eventLines(events: readonly EventRow[], o: RenderOptions): string {
  if (events.length === 0) return "  <none>";
  return table(
    ["AGE", "TYPE", "REASON", "OBJECT", "MESSAGE"],
    events.map((e) => [
      age(e.at, o.now),
      e.type === "Warning" ? paint(o.color, "yellow", e.type) : e.type,
      e.reason,
      e.object,
      e.count > 1 ? `${e.message} (x${e.count})` : e.message,
    ]),
  );
}

/** The `get APP` page. */
export function renderRelease(v: ReleaseView, o: RenderOptions): string {
  const b = (s: string): string => paint(o.color, "bold", s);
  const out: string[] = [];
  out.push(
    `${b(v.app)} in namespace ${v.namespace}: release ${b(v.deployment)} (version ${v.version})`,
  );
  const strategy =
    v.strategy === "canary" && v.steps
      ? `canary, steps ${v.steps.join(",")}${v.intervalMs !== undefined ? ` every ${dur(v.intervalMs)}` : ""}`
      : v.strategy === "canary"
        ? "canary, weight set by hand"
        : v.strategy;
  out.push(`Strategy:  ${strategy}`);
  const step = v.step !== undefined && v.steps ? `, step ${v.step.replace("/", " of ")}` : "";
  const why = v.reason ? ` (${v.reason}${v.message ? `: ${v.message}` : ""})` : "";
  out.push(`Phase:     ${phaseText(v.phase, o.color)}${step}${why}`);
  const actual =
    v.actualWeight !== undefined && v.traffic
      ? `, actual ${pct(v.actualWeight)} (last ${dur(v.traffic.windowMs)})`
      : v.traffic
        ? `, actual - (no requests in the last ${dur(v.traffic.windowMs)})`
        : "";
  out.push(`Weight:    desired ${pct(v.desiredWeight)}${actual}`);
  const flags = [
    v.paused && paint(o.color, "yellow", "paused (verso.dev/paused)"),
    v.aborted && paint(o.color, "red", "aborted (verso.dev/abort)"),
    v.promoteAnnotation && "promote (verso.dev/promote)",
  ].filter((f): f is string => typeof f === "string");
  if (flags.length > 0) out.push(`Control:   ${flags.join(", ")}`);
  if (v.match && v.match.length > 0)
    out.push(`Match:     ${v.match.map((m) => `${m.rule} -> ${pct(m.weight)}`).join(", ")}`);
  out.push(`Age:       ${age(v.created, o.now)}`);
  for (const p of v.policyErrors) out.push(paint(o.color, "red", `Invalid:   ${p}`));

  out.push("", b("VERSIONS"));
  out.push(
    table(
      ["VERSION", "ROLE", "DEPLOYMENT", "READY", "PODS"],
      v.versions.map((x) => [
        x.version,
        x.role,
        x.deployments.join(",") || "-",
        `${x.readyReplicas}/${x.desiredReplicas}`,
        x.pods.length === 0
          ? "-"
          : x.pods.map((p) => (p.ready ? p.name : `${p.name} (not ready)`)).join(", "),
      ]),
    ),
  );

  if (v.gates.length > 0) {
    const a = v.analysis;
    const head = a
      ? `GATES (last analysis ${age(a.at, o.now)} ago: ${a.action}, ${a.reason}: ${a.message})`
      : "GATES (no analysis yet)";
    out.push("", b(head));
    out.push(
      table(
        ["GATE", "VALUE", "THRESHOLD", "SAMPLE", "RESULT"],
        v.gates.map((g) => [
          GATE_NAMES[g.gate],
          gateValue(g),
          gateThreshold(g),
          g.sample === undefined
            ? "-"
            : g.baselineSample !== undefined
              ? `${g.sample} vs ${g.baselineSample}`
              : String(g.sample),
          gateResult(g, o.color),
        ]),
      ),
    );
  }

  if (v.traffic) {
    out.push(
      "",
      b(`TRAFFIC (last ${dur(v.traffic.windowMs)}, ${v.traffic.pods} pods scraped twice)`),
    );
    out.push(
      v.traffic.versions.length === 0
        ? "  <no requests>"
        : table(
            ["VERSION", "REQ/S", "ERRORS", "P99", "REQUESTS"],
            v.traffic.versions.map((t) => [
              t.version,
              num(t.rps),
              t.errorRate !== undefined && t.errorRate > 0
                ? paint(o.color, "red", pct(t.errorRate))
                : pct(t.errorRate),
              ms(t.p99Ms),
              String(t.requests),
            ]),
          ),
    );
  } else if (v.trafficNote) {
    out.push("", b("TRAFFIC"), `  ${paint(o.color, "dim", v.trafficNote)}`);
  }

  out.push("", b("EVENTS"), eventLines(v.events, o));
  return out.join("\n");
}

export interface FrameOptions {
  /** Terminal: move home and overwrite (no scrolling); else print frames one after another. */
  inPlace: boolean;
  /** The header's text (command and time). */
  title: string;
}

const CLEAR_LINE = `${ESC}K`;
const HOME = `${ESC}H`;
const CLEAR_BELOW = `${ESC}J`;

/**
 * One `--watch` frame. On a terminal: cursor home, every line cleared to its end as it is
 * written, and whatever the previous frame left below wiped, so the view redraws in place
 * without flicker. Piped: the frame as plain text after a separator line.
 */
export function frame(body: string, o: FrameOptions): string {
  if (!o.inPlace) return `--- ${o.title}\n${body}\n\n`;
  const lines = [o.title, "", ...body.split("\n")];
  return HOME + lines.map((l) => l + CLEAR_LINE).join("\n") + "\n" + CLEAR_BELOW;
}
