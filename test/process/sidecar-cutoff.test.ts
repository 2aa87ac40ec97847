/**
 * The fast cut-off on real proxies (Bun, sidecar/routing/cutoff.ts): a canary at 50 % whose
 * app answers 500 to everything. Proxy v1 forwards half its requests to v2; at the 5th failure
 * in a row it sends v2 nothing new, stable serves, and its metrics say so for the controller.
 *
 * Measured and printed: the time from the 5th failure to the last response v2 served (0 % on
 * the bad version), with requests in flight (10 at a time) so the cut has work to stop.
 */
import http from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { METRIC } from "../../shared/metric-names.ts";
import { waitFor } from "../harness/ports.ts";
import {
  makeDir,
  startApp,
  startCanaryPair,
  writeRoutes,
  type App,
  type Proxy,
} from "./sidecar-fixture.ts";

const H1 = "127.0.12.2";
const H2 = "127.0.12.3";
const HOP_KEY = Buffer.from("sidecar-cutoff-test-hop-key-0123").toString("base64");
const CUTOFF = 5;
/** Bounds of the load loop: at most this many requests, for at most this long. */
const MAX_REQUESTS = 400;
const MAX_MS = 20_000;

let app1: App;
let app2: App;
let p1: Proxy;
let p2: Proxy;
let routes: string;

/** v1 answers 200, v2 answers 500: the release fails hard from its first request. */
const answer =
  (status: number, name: string): http.RequestListener =>
  (_req, res) => {
    res.writeHead(status, { "content-type": "text/plain" });
    res.end(name);
  };

beforeAll(async () => {
  const dir = makeDir("verso-sidecar-cutoff-");
  routes = join(dir, "routes.json");
  [app1, app2] = await Promise.all([
    startApp(H1, "v1", { http: { "/": answer(200, "v1") } }),
    startApp(H2, "v2", { http: { "/": answer(500, "v2") } }),
  ]);
  [p1, p2] = await startCanaryPair({ apps: [app1, app2], routes, dir, hopKey: HOP_KEY });
});

afterAll(async () => {
  await Promise.all([p1?.proc.stop(), p2?.proc.stop()]);
  await Promise.all([app1?.close(), app2?.close()]);
});

const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
afterAll(() => agent.destroy());

/** One GET through proxy v1: who served it (the app's body), its status, when it ended. */
function call(): Promise<{ body: string; status: number; at: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${p1.url}/`, { agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ body, status: res.statusCode ?? 0, at: performance.now() }));
    });
    req.setTimeout(5_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

describe("proxy fast cut-off (verso.dev/cutoff-failures)", () => {
  it("cuts a release off at the 5th failure in a row: 0 % on it within 1 s, stable serves", async () => {
    writeRoutes(routes, {
      app: "shop",
      revision: 2,
      release: { version: "v2", strategy: "canary", weight: 50, cutoffFailures: CUTOFF },
      endpoints: { v1: [`${H1}:${p1.port}`], v2: [`${H2}:${p2.port}`] },
      hopKey: HOP_KEY,
    });
    await waitFor(
      "proxy v1 on revision 2",
      async () =>
        (await p1.metrics()).includes(`${METRIC.revision}{app="shop"} 2`) ? true : undefined,
      10_000,
      50,
    );

    const results: { body: string; status: number; at: number }[] = [];
    const started = performance.now();
    while (results.length < MAX_REQUESTS && performance.now() - started < MAX_MS) {
      results.push(...(await Promise.all(Array.from({ length: 10 }, call))));
    }
    const byEnd = [...results].sort((a, b) => a.at - b.at);
    const fromV2 = byEnd.filter((r) => r.body === "v2");
    expect(fromV2.every((r) => r.status === 500)).toBe(true);
    const fifth = fromV2[CUTOFF - 1];
    expect(fifth, "v2 got at least 5 requests before the cut").toBeDefined();
    const last = fromV2.at(-1)!;
    const cutMs = last.at - fifth!.at;
    // Requests already on their way to v2 when the 5th failure came back still end there;
    // nothing sent after it does.
    process.stdout.write(
      `cut-off: ${fromV2.length} requests served by v2 in all; last one ${cutMs.toFixed(1)} ms after the 5th failure; ${results.length - fromV2.length} served by v1\n`,
    );
    expect(cutMs).toBeLessThanOrEqual(1_000);
    expect(fromV2.length).toBeLessThan(CUTOFF + 10);
    // Everything after the cut went to stable and succeeded.
    const after = byEnd.filter((r) => r.at > last.at);
    expect(after.length).toBeGreaterThan(100);
    expect(after.every((r) => r.body === "v1" && r.status === 200)).toBe(true);

    const text = await p1.metrics();
    expect(text).toContain(`${METRIC.cutoff}{app="shop",version="v2"} 1`);
    expect(text).toContain(`${METRIC.cutoffs}{app="shop",version="v2"} 1`);
  });

  it("lifts the cut when the controller takes the release off (weight 0)", async () => {
    writeRoutes(routes, {
      app: "shop",
      revision: 3,
      release: { version: "v2", strategy: "canary", weight: 0, cutoffFailures: CUTOFF },
      endpoints: { v1: [`${H1}:${p1.port}`], v2: [`${H2}:${p2.port}`] },
      hopKey: HOP_KEY,
    });
    await waitFor(
      "cut lifted",
      async () =>
        (await p1.metrics()).includes(`${METRIC.cutoff}{app="shop",version="v2"} 0`)
          ? true
          : undefined,
      10_000,
      50,
    );
  });
});
