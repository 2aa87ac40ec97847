/**
 * When a pod's app has gone (exited before its proxy, as with a native sidecar during a pod's
 * termination, or crashed) the proxy still serves what it can: a request that landed on it
 * goes to another pod of the same version, and a request a peer forwarded to it is handed
 * back (`x-verso-hop: app-gone`) so that peer tries its next pod. Nothing reached the dead app
 * in either case, so any method may move.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sample } from "../harness/metrics.ts";
import { freePort } from "../harness/ports.ts";
import { stopAll } from "../harness/processes.ts";
import { METRIC } from "../../shared/metric-names.ts";
import {
  get,
  makeDir,
  startApp,
  startProxy,
  writeRoutes,
  type App,
  type Proxy,
} from "./sidecar-fixture.ts";

const [A, B, C] = ["127.0.15.2", "127.0.15.3", "127.0.15.4"];
const HOP_KEY = Buffer.from("sidecar-app-gone-test-hop-key-01").toString("base64");

describe("a proxy whose app has gone", () => {
  const dir = makeDir("verso-app-gone-");
  const routes = join(dir, "routes.json");
  let apps: App[] = [];
  // a and b serve v1; c serves v2, a release at weight 0: c forwards everything to v1.
  let a: Proxy;
  let b: Proxy;
  let c: Proxy;

  beforeAll(async () => {
    apps = await Promise.all([startApp(A, "v1"), startApp(B, "v1"), startApp(C, "v2")]);
    const ports = await Promise.all([freePort(A), freePort(B), freePort(C)]);
    writeRoutes(routes, {
      app: "shop",
      revision: 1,
      release: { version: "v2", strategy: "canary", weight: 0 },
      endpoints: { v1: [`${A}:${ports[0]}`, `${B}:${ports[1]}`], v2: [`${C}:${ports[2]}`] },
      hopKey: HOP_KEY,
    });
    const start = (host: string, i: number, version: string): Promise<Proxy> =>
      startProxy({ host, app: apps[i] as App, version, routes, dir, port: ports[i] });
    [a, b, c] = await Promise.all([start(A, 0, "v1"), start(B, 1, "v1"), start(C, 2, "v2")]);
    await apps[0]?.close(); // a's app exits; its proxy stays
  });

  afterAll(async () => {
    await stopAll(2_000);
    await Promise.all(apps.slice(1).map((app) => app.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("sends a request that landed on it to another pod of its version, any method", async () => {
    const before = apps[1]?.requests ?? 0;
    for (const method of ["GET", "POST"]) {
      const res = await fetch(`${a.url}/echo`, { method, body: method === "POST" ? "x" : null });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { version: string }).version).toBe("v1");
    }
    expect((apps[1]?.requests ?? 0) - before).toBe(2);
    // Counted as this app's connect failure, and as a forward to v1.
    const metrics = await a.metrics();
    expect(sample(metrics, METRIC.upstreamErrors, { kind: "app-connect" })).toBeGreaterThanOrEqual(
      2,
    );
    expect(sample(metrics, METRIC.forwards, { target: "v1" })).toBeGreaterThanOrEqual(2);
  });

  it("hands a forwarded request back, and the forwarding peer serves it from its next pod", async () => {
    const before = apps[1]?.requests ?? 0;
    const refusedBefore = sample(await a.metrics(), METRIC.upstreamErrors, { kind: "app-connect" });
    // c forwards every request to v1: its picks land on a (whose app is gone) until a is
    // marked down.
    const answers = await Promise.all(Array.from({ length: 20 }, () => get(`${c.url}/echo`)));
    for (const r of answers) {
      expect(r.status).toBe(200);
      expect(r.headers["x-verso-hop"]).toBeUndefined(); // internal: never reaches a client
      expect(JSON.parse(r.body)).toMatchObject({ version: "v1" });
    }
    expect((apps[1]?.requests ?? 0) - before).toBe(20);
    // Some of them did reach a and were handed back.
    const refused = sample(await a.metrics(), METRIC.upstreamErrors, { kind: "app-connect" });
    expect(refused).toBeGreaterThan(refusedBefore);
    expect(sample(await c.metrics(), METRIC.fallbacks)).toBe(0);
    // b answered too, and never saw an error.
    expect(sample(await b.metrics(), METRIC.upstreamErrors)).toBe(0);
  });
});
