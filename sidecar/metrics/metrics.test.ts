import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { DURATION_BUCKETS, METRIC } from "../../shared/metric-names.ts";
import { codeClass, createMetrics, methodClass, METRICS_CONTENT_TYPE } from "./metrics.ts";
import { parseExposition, type Family } from "../../test/harness/prometheus.ts";

const here = fileURLToPath(new URL(".", import.meta.url));
const metricsModule = fileURLToPath(new URL("./metrics.ts", import.meta.url));
const bun = fileURLToPath(new URL("../../node_modules/.bin/bun", import.meta.url));
const promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].find((p) => existsSync(p));

const lines = (text: string, keep: (l: string) => boolean = () => true) =>
  text.split("\n").filter(keep).sort();
// Line sets: blank separator lines are compared by count in the test that needs them.
const notProcess = (l: string) => l !== "" && !/^(# (HELP|TYPE) )?process_/.test(l);
const value = (f: Family | undefined, labels: Record<string, string> = {}) =>
  f?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

/** Prometheus's own parser and linter, when installed (CI installs prometheus). */
function promtoolCheck(text: string): void {
  if (!promtool) return;
  const r = spawnSync(promtool, ["check", "metrics"], { input: text, encoding: "utf8" });
  expect(r.stdout + r.stderr).toBe("");
  expect(r.status).toBe(0);
}

// The help texts the prom-client proxy shipped (git history of this file's module): users'
// tooling may show them, so they are part of the comparison.
const HELP: Record<string, string> = {
  [METRIC.requests]: "Requests served by this proxy's app, by the version that served them.",
  [METRIC.duration]: "Time from arrival at the serving proxy to the end of the response, seconds.",
  [METRIC.forwards]: "Requests forwarded to a peer of another version.",
  [METRIC.retries]:
    "Retries on another peer after a peer refused or reset before any body was sent.",
  [METRIC.fallbacks]: "Requests served locally because no peer of the wanted version answered.",
  [METRIC.upstreamErrors]: "Errors talking to the local app or a peer, by kind.",
  [METRIC.revision]: "Revision of the routing table in force (-1: none yet, serving locally).",
};

/** The same calls on ours and on prom-client's classes, as the proxy made them before. */
function bothWays(app: string, version: string, target: string) {
  const ours = createMetrics(app, version);
  const ref = new Registry();
  const counter = (name: string, labelNames: string[]) =>
    new Counter({ name, help: HELP[name]!, labelNames, registers: [ref] });
  const requests = counter(METRIC.requests, ["app", "version", "method", "code_class", "source"]);
  const duration = new Histogram({
    name: METRIC.duration,
    help: HELP[METRIC.duration]!,
    labelNames: ["app", "version"],
    buckets: DURATION_BUCKETS,
    registers: [ref],
  });
  const forwards = counter(METRIC.forwards, ["app", "target"]);
  const retries = counter(METRIC.retries, ["app", "target"]);
  const fallbacks = counter(METRIC.fallbacks, ["app", "version"]);
  const errors = counter(METRIC.upstreamErrors, ["app", "kind"]);
  const revision = new Gauge({
    name: METRIC.revision,
    help: HELP[METRIC.revision]!,
    labelNames: ["app"],
    registers: [ref],
  });
  revision.labels(app).set(-1);
  const seconds = [0.0004, 0.001, 0.003, 0.07, 0.9, 2, 12, 0.1, 0.1000001];
  seconds.forEach((s, i) => {
    const code = i % 3 === 0 ? "5xx" : "2xx";
    const source = i % 2 === 0 ? "local" : "forwarded";
    ours.served("POST", code, source, s);
    requests.labels(app, version, "POST", code, source).inc();
    duration.labels(app, version).observe(s);
  });
  for (let i = 0; i < 3; i++) {
    ours.forwarded(target);
    forwards.labels(app, target).inc();
  }
  ours.retried(target);
  retries.labels(app, target).inc();
  ours.fellBack("v2");
  fallbacks.labels(app, "v2").inc();
  ours.upstreamError("peer-reset");
  errors.labels(app, "peer-reset").inc();
  ours.setRevision(42);
  revision.labels(app).set(42);
  return { ours, ref };
}

describe("proxy metrics", () => {
  it("renders the same series, line for line, as prom-client did", async () => {
    const { ours, ref } = bothWays("shop", "v1", "v2");
    expect(lines(ours.render(), notProcess)).toEqual(lines(await ref.metrics(), notProcess));
    // One blank line between families, as prom-client: 7 proxy families, 7 process ones.
    expect(ours.render().split("\n\n")).toHaveLength(14);
    expect((await ref.metrics()).split("\n\n")).toHaveLength(7);
    expect(ours.render()).toMatch(/\n$/);
    expect(METRICS_CONTENT_TYPE).toBe(ref.contentType);
    promtoolCheck(ours.render());
  });

  it("escapes backslash, double quote and newline in label values as prom-client does", async () => {
    const nasty = 'ca"na\\ry\nv2';
    const { ours, ref } = bothWays('sh"op\\', "v\n1", nasty);
    expect(lines(ours.render(), (l) => l.startsWith("verso_"))).toEqual(
      lines(await ref.metrics(), (l) => l.startsWith("verso_")),
    );
    expect(ours.render()).toContain(
      'verso_forwards_total{app="sh\\"op\\\\",target="ca\\"na\\\\ry\\nv2"} 3',
    );
    // A parser gets the raw values back.
    const fams = parseExposition(ours.render());
    expect(value(fams.get(METRIC.forwards), { app: 'sh"op\\', target: nasty })).toBe(3);
    expect(value(fams.get(METRIC.requests), { version: "v\n1", code_class: "5xx" })).toBe(2);
    promtoolCheck(ours.render());
  });

  it("histogram buckets are cumulative and +Inf, _count and _sum agree", () => {
    const m = createMetrics("shop", "v1");
    const seconds = [0.0004, 0.001, 0.003, 0.07, 0.07, 0.9, 2, 12];
    for (const s of seconds) m.served("GET", "2xx", "local", s);
    const f = parseExposition(m.render()).get(METRIC.duration)!;
    expect(f.type).toBe("histogram");
    const buckets = f.samples.filter((s) => s.name === `${METRIC.duration}_bucket`);
    expect(buckets.map((b) => b.labels.le)).toEqual([...DURATION_BUCKETS.map(String), "+Inf"]);
    for (const b of buckets) {
      const le = b.labels.le === "+Inf" ? Infinity : Number(b.labels.le);
      expect(b.value, `le=${le}`).toBe(seconds.filter((s) => s <= le).length);
      expect(b.labels).toMatchObject({ app: "shop", version: "v1" });
    }
    expect(value(f, { le: "0.001" })).toBe(2); // le is inclusive
    expect(f.samples.find((s) => s.name.endsWith("_count"))?.value).toBe(8);
    const sum = f.samples.find((s) => s.name.endsWith("_sum"))?.value;
    expect(sum).toBeCloseTo(
      seconds.reduce((a, b) => a + b, 0),
      9,
    );
  });

  it("counters appear once incremented; the revision gauge is always there (-1 first)", () => {
    const m = createMetrics("shop", "v1");
    let fams = parseExposition(m.render());
    for (const name of [METRIC.requests, METRIC.forwards, METRIC.retries, METRIC.fallbacks]) {
      expect(fams.get(name)?.type, name).toBe("counter");
      expect(fams.get(name)?.samples, name).toEqual([]);
    }
    expect(fams.get(METRIC.upstreamErrors)?.samples).toEqual([]);
    expect(fams.get(METRIC.revision)?.samples).toEqual([
      { name: METRIC.revision, labels: { app: "shop" }, value: -1 },
    ]);
    m.served("DELETE", "4xx", "forwarded", 0.01);
    m.served("DELETE", "4xx", "forwarded", 0.01);
    m.upstreamError("app-timeout");
    m.setRevision(3);
    fams = parseExposition(m.render());
    const labels = { app: "shop", version: "v1", method: "DELETE", code_class: "4xx" };
    expect(fams.get(METRIC.requests)?.samples).toEqual([
      { name: METRIC.requests, labels: { ...labels, source: "forwarded" }, value: 2 },
    ]);
    expect(value(fams.get(METRIC.upstreamErrors), { kind: "app-timeout" })).toBe(1);
    expect(fams.get(METRIC.forwards)?.samples).toEqual([]);
    expect(value(fams.get(METRIC.revision))).toBe(3);
  });

  it("every method x code class x source counts into its own series, across scrapes", () => {
    const m = createMetrics("shop", "v1");
    const want = new Map<string, number>();
    let n = 0;
    for (const method of ["GET", "POST", "PUT", "DELETE", "other"] as const) {
      for (const code of ["1xx", "2xx", "3xx", "4xx", "5xx"] as const) {
        for (const source of ["local", "forwarded"] as const) {
          n++;
          for (let i = 0; i < n; i++) m.served(method, code, source, 0.01);
          want.set(`${method} ${code} ${source}`, n);
        }
      }
    }
    m.render(); // a scrape does not reset anything
    const samples = parseExposition(m.render()).get(METRIC.requests)!.samples;
    const got = new Map(
      samples.map((s) => [`${s.labels.method} ${s.labels.code_class} ${s.labels.source}`, s.value]),
    );
    expect(got).toEqual(want);
  });

  it("process series: prom-client's names, types and help, with live values", () => {
    const ref = new Registry();
    collectDefaultMetrics({ register: ref });
    const theirs = new Map(
      ref.getMetricsAsArray().map((m) => [m.name, (m as unknown as { help: string }).help]),
    );
    const fams = parseExposition(createMetrics("shop", "v1").render());
    const names = [...fams.keys()].filter((n) => n.startsWith("process_"));
    expect(names.sort()).toEqual([
      "process_cpu_seconds_total",
      "process_cpu_system_seconds_total",
      "process_cpu_user_seconds_total",
      "process_max_fds",
      "process_open_fds",
      "process_resident_memory_bytes",
      "process_start_time_seconds",
    ]);
    for (const n of names) expect(fams.get(n)!.help, n).toBe(theirs.get(n));
    const v = (n: string) => value(fams.get(n))!;
    expect(v("process_cpu_seconds_total")).toBeCloseTo(
      v("process_cpu_user_seconds_total") + v("process_cpu_system_seconds_total"),
      6,
    );
    expect(v("process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(v("process_resident_memory_bytes") / process.memoryUsage.rss()).toBeCloseTo(1, 1);
    expect(
      Math.abs(v("process_start_time_seconds") - (Date.now() / 1000 - process.uptime())),
    ).toBeLessThan(2);
    expect(v("process_open_fds")).toBeGreaterThan(2);
    expect(v("process_max_fds")).toBeGreaterThanOrEqual(v("process_open_fds"));
  });

  it("loads and renders under Bun, with no prom-client in the process", () => {
    const script = `
      const { createMetrics } = await import(${JSON.stringify(metricsModule)});
      const m = createMetrics("shop", "v1");
      m.served("GET", "2xx", "local", 0.02);
      m.served("GET", "2xx", "local", 0.2);
      m.forwarded("v2");
      m.setRevision(9);
      process.stdout.write(JSON.stringify({ text: m.render(), bun: Bun.version }));`;
    const out = execFileSync(bun, ["-e", script], { encoding: "utf8", timeout: 20_000 });
    const { text, bun: version } = JSON.parse(out) as Record<string, unknown>;
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    const fams = parseExposition(text as string);
    expect(value(fams.get(METRIC.requests), { method: "GET", code_class: "2xx" })).toBe(2);
    expect(value(fams.get(METRIC.duration), { le: "0.025" })).toBe(1);
    expect(value(fams.get(METRIC.duration), { le: "+Inf" })).toBe(2);
    expect(value(fams.get(METRIC.forwards), { target: "v2" })).toBe(1);
    expect(value(fams.get(METRIC.revision))).toBe(9);
    expect(value(fams.get("process_resident_memory_bytes"))).toBeGreaterThan(1e6);
    expect(value(fams.get("process_cpu_seconds_total"))).toBeGreaterThan(0);
    expect(value(fams.get("process_open_fds"))).toBeGreaterThan(2);
    promtoolCheck(text as string);
  });

  it("nothing the proxy loads imports prom-client (its +8.6 MB RSS is what this replaces)", () => {
    for (const file of readdirSync(here).filter(
      (f) => f.endsWith(".ts") && !f.endsWith(".test.ts"),
    )) {
      expect(readFileSync(`${here}/${file}`, "utf8"), file).not.toMatch(/["']prom-client["'/]/);
    }
  });

  it.each([
    ["GET", "GET"],
    ["PATCH", "other"],
    [undefined, "other"],
  ])("method %s -> %s", (m, want) => expect(methodClass(m)).toBe(want));

  it.each([
    [101, "1xx"],
    [204, "2xx"],
    [302, "3xx"],
    [404, "4xx"],
    [503, "5xx"],
    [999, "5xx"],
  ])("status %d -> %s", (s, want) => expect(codeClass(s)).toBe(want));

  it("says which release version it cut off, and when the cut is lifted", () => {
    const m = createMetrics("shop", "v1");
    expect(m.render()).not.toContain(METRIC.cutoff);
    m.cutOff("v2", true);
    expect(m.render()).toContain(`${METRIC.cutoff}{app="shop",version="v2"} 1`);
    expect(m.render()).toContain(`${METRIC.cutoffs}{app="shop",version="v2"} 1`);
    m.cutOff("v2", false);
    expect(m.render()).toContain(`${METRIC.cutoff}{app="shop",version="v2"} 0`);
  });

  it("access log drops: a counter from 0 on proxies with the access log, absent otherwise", () => {
    expect(createMetrics("shop", "v1").render()).not.toContain(METRIC.accessLogDropped);
    const m = createMetrics("shop", "v1", { accessLog: true });
    expect(value(parseExposition(m.render()).get(METRIC.accessLogDropped))).toBe(0);
    m.accessLogDropped(1);
    m.accessLogDropped(40);
    const f = parseExposition(m.render()).get(METRIC.accessLogDropped);
    expect(f?.type).toBe("counter");
    expect(f?.samples).toEqual([
      { name: METRIC.accessLogDropped, labels: { app: "shop" }, value: 41 },
    ]);
    promtoolCheck(m.render());
  });
});
