/**
 * The built-in metrics source against real proxy metrics: the sidecar's own exporter
 * served over HTTP on 127.0.0.x, scraped and differenced by the controller. (The Prometheus
 * source is tested against a real Prometheus server: prometheus-scrape.test.ts here, and
 * test/cluster/node-prometheus.test.ts on the real node.)
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../shared/log.ts";
import {
  createMetrics,
  METRICS_CONTENT_TYPE,
  type ProxyMetrics,
} from "../../sidecar/metrics/metrics.ts";
import { createBuiltinSource } from "../../webhook/controller/io/metrics/builtin.ts";
import type { Target } from "../../webhook/controller/io/metrics/source.ts";

function serve(metrics: ProxyMetrics, host: string): Promise<Server> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": METRICS_CONTENT_TYPE }).end(metrics.render());
  });
  return new Promise((r) => server.listen(0, host, () => r(server)));
}

describe("built-in metrics source", () => {
  const v1 = createMetrics("shop", "v1");
  const v2 = createMetrics("shop", "v2");
  const servers: Server[] = [];
  let target: Target;

  beforeAll(async () => {
    servers.push(await serve(v1, "127.0.0.51"), await serve(v2, "127.0.0.52"));
    const admins = servers.map((s) => {
      const a = s.address();
      return typeof a === "object" && a ? `${a.address}:${a.port}` : "";
    });
    // A dead pod address must not break the measurement.
    target = {
      namespace: "shop",
      app: "shop",
      releaseVersion: "v2",
      admins: [...admins, "127.0.0.53:1"],
      intervalMs: 1000,
    };
  });

  afterAll(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
  });

  it("measures only what was served during the interval, per version", async () => {
    const source = createBuiltinSource(createLogger("test", "error"), 500);
    for (let i = 0; i < 50; i++) v2.served("GET", "2xx", "local", 0.01); // before the baseline
    expect(await source.measure(target)).toBeUndefined(); // no baseline yet: takes one
    for (let i = 0; i < 90; i++) v1.served("GET", "2xx", "local", 0.02);
    for (let i = 0; i < 10; i++) v1.served("GET", "5xx", "local", 0.02);
    for (let i = 0; i < 18; i++) v2.served("GET", "2xx", "forwarded", 0.2);
    for (let i = 0; i < 2; i++) v2.served("GET", "5xx", "forwarded", 0.2);
    const m = await source.measure(target);
    expect(m?.release.requests).toBe(20);
    expect(m?.release.errors).toBe(2);
    expect(m?.stable.requests).toBe(100);
    expect(m?.stable.errors).toBe(10);
    // 0.2s lands in the (0.15, 0.2] bucket; 0.02s in (0.01, 0.025].
    expect(m?.release.p99Ms).toBeGreaterThan(150);
    expect(m?.release.p99Ms).toBeLessThanOrEqual(200);
    expect(m?.stable.p99Ms).toBeGreaterThan(10);
    expect(m?.stable.p99Ms).toBeLessThanOrEqual(25);
    const quiet = await source.measure(target);
    expect(quiet).toEqual({
      release: { requests: 0, errors: 0 },
      stable: { requests: 0, errors: 0 },
    });
  });
});
