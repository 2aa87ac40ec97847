/**
 * The proxy's exposition as a real Prometheus reads it: two proxies' metrics (v1 and v2 of
 * one app) served over HTTP, discovered through file_sd, scraped every second. Checks the
 * scrape itself (content type, parse, no errors), the values as PromQL sees them, label
 * escaping end to end, and the controller's own Prometheus queries over those series (what
 * it asks, from Prometheus' query log, and how it reads the answers, empty ones included).
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { METRIC } from "../../shared/metric-names.ts";
import { createMetrics, METRICS_CONTENT_TYPE } from "../../sidecar/metrics/metrics.ts";
import type { ProxyMetrics } from "../../sidecar/metrics/metrics.ts";
import { createPrometheusSource } from "../../webhook/controller/io/metrics/prometheus.ts";
import { waitFor } from "../harness/ports.ts";
import { prometheusBinary, startPrometheus, type Prometheus } from "../harness/prometheus.ts";

const installed = prometheusBinary() !== undefined;
// A weird version label exercises escaping through a real parser and TSDB.
const NASTY = 'canary "b"\\\nx';

function serve(metrics: ProxyMetrics): Promise<{ server: Server; address: string }> {
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": METRICS_CONTENT_TYPE }).end(metrics.render());
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const a = server.address();
      resolve({ server, address: `127.0.0.1:${typeof a === "object" && a ? a.port : 0}` });
    }),
  );
}

describe.skipIf(!installed)("a real Prometheus scraping the proxy's metrics", () => {
  const v1 = createMetrics("shop", "v1");
  const v2 = createMetrics("shop", "v2");
  const servers: Server[] = [];
  let prom: Prometheus | undefined;
  const one = async (promql: string): Promise<number | undefined> =>
    (await prom!.query(promql))[0]?.value;
  /** Waits (bounded) until a scrape has brought `promql` to `want`. */
  const settles = (promql: string, want: number) =>
    waitFor(promql, async () => ((await one(promql)) === want ? true : undefined), 30_000);

  beforeAll(async () => {
    const targets = [];
    for (const [m, pod] of [
      [v1, "shop-v1-0"],
      [v2, "shop-v2-0"],
    ] as const) {
      const { server, address } = await serve(m);
      servers.push(server);
      targets.push({ targets: [address], labels: { namespace: "shop", pod } });
    }
    // Counter series appear once incremented, so Prometheus's first sample of each is its
    // first value and increase() counts only what comes after (as with prom-client): the
    // series the controller's queries difference get one request before the first scrape.
    v1.served("GET", "2xx", "local", 0.02);
    v1.served("POST", "5xx", "local", 0.02);
    v2.served("GET", "2xx", "forwarded", 0.2);
    v1.setRevision(4);
    prom = await startPrometheus({ targets, scrapeIntervalSeconds: 1 });
  });

  afterAll(async () => {
    await prom?.stop();
    for (const s of servers) await new Promise((r) => s.close(r));
  });

  it("discovers both targets from the file and scrapes them without errors", async () => {
    await settles('count(up{job="verso"} == 1)', 2);
    const targets = await waitFor(
      "both targets scraped",
      async () => {
        const t = await prom!.targets();
        return t.length === 2 && t.every((x) => x.health === "up") ? t : undefined;
      },
      30_000,
    );
    for (const t of targets) {
      expect(t.lastError).toBe("");
      expect(t.labels).toMatchObject({ job: "verso", namespace: "shop" });
    }
    // The scrape's own accounting: every sample served was accepted.
    const served = v2
      .render()
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("#"));
    expect(await one('scrape_samples_scraped{pod="shop-v2-0"}')).toBe(served.length);
    expect(await one(`${METRIC.revision}{pod="shop-v1-0"}`)).toBe(4);
    expect(await one(`${METRIC.revision}{pod="shop-v2-0"}`)).toBe(-1);
  });

  it("reads the request counters and histogram as served", async () => {
    // With the one each from before the first scrape: 90 + 10 and 20.
    for (let i = 0; i < 89; i++) v1.served("GET", "2xx", "local", 0.02);
    for (let i = 0; i < 9; i++) v1.served("POST", "5xx", "local", 0.02);
    for (let i = 0; i < 19; i++) v2.served("GET", "2xx", "forwarded", 0.2);
    v1.forwarded("v2");
    v1.fellBack(NASTY);
    const sel = '{namespace="shop",app="shop",version="v1"}';
    await settles(`sum(${METRIC.requests}${sel})`, 100);
    expect(
      await one(`${METRIC.requests}{version="v1",method="POST",code_class="5xx",source="local"}`),
    ).toBe(10);
    await settles(`${METRIC.duration}_count{version="v2"}`, 20);
    // Cumulative buckets as PromQL reads them: all 100 of v1 at 0.025 and above, none below.
    expect(await one(`${METRIC.duration}_bucket{version="v1",le="0.01"}`)).toBe(0);
    expect(await one(`${METRIC.duration}_bucket{version="v1",le="0.025"}`)).toBe(100);
    expect(await one(`${METRIC.duration}_bucket{version="v1",le="+Inf"}`)).toBe(100);
    // Linear interpolation inside the (0.15, 0.2] bucket that holds all of v2's 20.
    const p50 = await one(
      `histogram_quantile(0.5, sum by (le) (${METRIC.duration}_bucket{version="v2"}))`,
    );
    expect(p50).toBeCloseTo(0.175, 9);
    expect(await one(`${METRIC.duration}_sum{version="v2"}`)).toBeCloseTo(4, 9);
    expect(await one(`${METRIC.forwards}{target="v2"}`)).toBe(1);
    // Escaped on the way out, unescaped by Prometheus: the label value comes back raw.
    const [fallback] = await prom!.query(METRIC.fallbacks);
    expect(fallback?.metric.version).toBe(NASTY);
    expect(fallback?.value).toBe(1);
  });

  it("scrapes the process series", async () => {
    const rss = await one(`process_resident_memory_bytes{pod="shop-v1-0"}`);
    // Both "proxies" are this test process: its RSS, give or take what a second changes.
    expect(rss! / process.memoryUsage.rss()).toBeGreaterThan(0.5);
    expect(rss! / process.memoryUsage.rss()).toBeLessThan(2);
    expect(await one("process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(await one("process_open_fds")).toBeGreaterThan(2);
    const start = await one("process_start_time_seconds");
    expect(Math.abs(start! - (Date.now() / 1000 - process.uptime()))).toBeLessThan(2);
  });

  it("the controller's Prometheus source measures over these series", async () => {
    // Its PromQL selects on namespace (from the file_sd labels here) and rates over the
    // interval; a quantile of rates is a ratio, so it does not depend on scrape timing.
    const m = await createPrometheusSource(prom!.url).measure({
      namespace: "shop",
      app: "shop",
      releaseVersion: "v2",
      admins: [],
      intervalMs: 60_000,
    });
    expect(m?.release.requests).toBeGreaterThan(0);
    expect(m?.release.errors).toBe(0);
    expect(m?.stable.errors).toBeGreaterThan(0);
    expect(m?.release.p99Ms).toBeCloseTo(199.5, 6);
    expect(m?.stable.p99Ms).toBeCloseTo(24.85, 6);
  });

  it("the controller's Prometheus source asks six queries over the interval and reads empty answers as nothing served", async () => {
    // A release no proxy has served (v3): empty vectors, read as 0 requests and no p99; the
    // other side is everything. increase() extrapolates: counts come back rounded.
    const before = prom!.queryLog().length;
    const m = await createPrometheusSource(prom!.url).measure({
      namespace: "shop",
      app: "shop",
      releaseVersion: "v3",
      admins: [],
      intervalMs: 30_000,
    });
    expect(m?.release).toEqual({ requests: 0, errors: 0 });
    expect(Number.isInteger(m?.stable.requests)).toBe(true);
    expect(Number.isInteger(m?.stable.errors)).toBe(true);
    expect(m?.stable.p99Ms).toBeGreaterThan(0);
    // What it asked, from Prometheus' query log: both sides, the interval as the window.
    const asked = prom!
      .queryLog()
      .slice(before)
      .map((q) => q.query);
    const sel = (op: string): string => `namespace="shop",app="shop",version${op}"v3"`;
    expect(asked.sort()).toEqual(
      ["=", "!="]
        .flatMap((op) => [
          `sum(increase(${METRIC.requests}{${sel(op)}}[30s]))`,
          `sum(increase(${METRIC.requests}{${sel(op)},code_class="5xx"}[30s]))`,
          `histogram_quantile(0.99, sum by (le) (rate(${METRIC.duration}_bucket{${sel(op)}}[30s])))`,
        ])
        .sort(),
    );
  });
});

if (!installed) {
  describe("a real Prometheus scraping the proxy's metrics", () => {
    it.skip("skipped: no prometheus binary on PATH (apt-get install prometheus; .ci/run does)", () => {});
  });
}
