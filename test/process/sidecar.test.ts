/**
 * Two "pods" as real processes: v1 (app + proxy on 127.0.3.2) and v2 (app + proxy on
 * 127.0.3.3), both reading one routes file the tests rewrite. Entry traffic lands on both
 * proxies alternately, as a Service would spread it.
 */
import http from "node:http";
import { Readable } from "node:stream";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { sample } from "../harness/metrics.ts";
import { freePort, sleep, waitFor } from "../harness/ports.ts";
import { signHop } from "../../sidecar/routing/hop.ts";
import {
  get,
  makeDir,
  startApp,
  startProxy,
  writeRoutes,
  type App,
  type Proxy,
} from "./sidecar-fixture.ts";

const H1 = "127.0.3.2";
const H2 = "127.0.3.3";
const HOP_KEY = Buffer.from("process-test-hop-key-0123456789").toString("base64");

let dir: string;
let routes: string;
let app1: App;
let app2: App;
let p1: Proxy;
let p2: Proxy;
let revision = 1;

function table(release: object | undefined, endpoints?: Record<string, string[]>): object {
  return {
    app: "shop",
    revision: revision++,
    ...(release ? { release } : {}),
    endpoints: endpoints ?? { v1: [`${H1}:${p1.port}`], v2: [`${H2}:${p2.port}`] },
    hopKey: HOP_KEY,
  };
}

/** Rewrite the routes file and wait until both proxies report the new revision. */
async function route(release: object | undefined, endpoints?: Record<string, string[]>) {
  const t = table(release, endpoints) as { revision: number };
  writeRoutes(routes, t);
  for (const p of [p1, p2]) {
    await waitFor(
      `revision ${t.revision} on ${p.version}`,
      async () =>
        sample(await p.metrics(), "verso_routing_table_revision") === t.revision ? true : undefined,
      5_000,
      50,
    );
  }
}

beforeAll(async () => {
  dir = makeDir("verso-sidecar-");
  routes = join(dir, "routes.json");
  app1 = await startApp(H1, "v1");
  app2 = await startApp(H2, "v2");
  // The proxies need each other's ports in the table before they start: pick them first.
  const port1 = await freePort(H1);
  const port2 = await freePort(H2);
  writeRoutes(routes, {
    app: "shop",
    revision: revision++,
    endpoints: { v1: [`${H1}:${port1}`], v2: [`${H2}:${port2}`] },
    hopKey: HOP_KEY,
  });
  [p1, p2] = await Promise.all([
    startProxy({ host: H1, app: app1, version: "v1", routes, dir, port: port1 }),
    startProxy({ host: H2, app: app2, version: "v2", routes, dir, port: port2 }),
  ]);
});

afterAll(async () => {
  await Promise.all([p1?.proc.stop(), p2?.proc.stop()]);
  await Promise.all([app1?.close(), app2?.close()]);
});

describe("routing end to end", () => {
  it("weights: 30% observed within 6 sd over 2,000 requests, counters add up exactly", async () => {
    await route({ version: "v2", strategy: "canary", weight: 30 });
    const before = await Promise.all([p1.metrics(), p2.metrics()]);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const N = 2_000;
    const seen = { v1: 0, v2: 0 } as Record<string, number>;
    const entries = [p1, p2];
    for (let i = 0; i < N; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, (_, j) => get(`${entries[(i + j) % 2]!.url}/echo`, {}, agent)),
      );
      for (const r of batch) {
        expect(r.status).toBe(200);
        // The header names the version that served; the app's own body must agree.
        expect(JSON.parse(r.body).version).toBe(r.version);
        seen[r.version!]!++;
      }
    }
    agent.destroy();
    const sd = Math.sqrt(N * 0.3 * 0.7);
    expect(Math.abs(seen.v2! - N * 0.3)).toBeLessThanOrEqual(6 * sd);
    const after = await Promise.all([p1.metrics(), p2.metrics()]);
    const delta = (i: number, labels: Record<string, string>) =>
      sample(after[i]!, "verso_requests_total", labels) -
      sample(before[i]!, "verso_requests_total", labels);
    expect(delta(0, { version: "v1" })).toBe(seen.v1);
    expect(delta(1, { version: "v2" })).toBe(seen.v2);
    expect(delta(0, {}) + delta(1, {})).toBe(N);
    // Forwarded-in requests are labelled as such where they were served.
    expect(delta(1, { source: "forwarded" })).toBeGreaterThan(0);
    const durCount = (i: number, text: string[]) =>
      sample(text[i]!, "verso_request_duration_seconds_count");
    expect(
      durCount(0, after) - durCount(0, before) + durCount(1, after) - durCount(1, before),
    ).toBe(N);
  });

  it("match rules with their own weights: internal 100 %, beijing 20 %, everyone else 5 %, from either entry", async () => {
    await route({
      version: "v2",
      strategy: "canary",
      weight: 5,
      match: [
        { header: "x-user-type", value: "internal" },
        { header: "x-region", value: "beijing", weight: 20 },
      ],
    });
    const before = await Promise.all([p1.metrics(), p2.metrics()]);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const classes = {
      internal: { headers: { "x-user-type": "internal", "x-region": "beijing" }, n: 400 },
      beijing: { headers: { "x-region": "beijing" }, n: 6_000 },
      others: { headers: { "x-region": "shanghai" }, n: 6_000 },
    };
    const onV2 = { internal: 0, beijing: 0, others: 0 };
    const served = { v1: 0, v2: 0 } as Record<string, number>;
    for (const [name, c] of Object.entries(classes) as [
      keyof typeof classes,
      (typeof classes)["internal"],
    ][]) {
      for (let i = 0; i < c.n; i += 100) {
        // Alternate entries: requests land on v1 (release-bound ones are forwarded) and on v2
        // (release-bound ones are served locally, the rest forwarded to stable).
        const batch = await Promise.all(
          Array.from({ length: 100 }, (_, j) =>
            get(`${[p1, p2][(i + j) % 2]!.url}/echo`, c.headers, agent),
          ),
        );
        for (const r of batch) {
          expect(r.status).toBe(200);
          served[r.version!]!++;
          if (r.version === "v2") onV2[name]++;
        }
      }
    }
    agent.destroy();
    console.log("share on v2:", {
      internal: onV2.internal / classes.internal.n,
      beijing: onV2.beijing / classes.beijing.n,
      others: onV2.others / classes.others.n,
    });
    expect(onV2.internal).toBe(classes.internal.n);
    expect(Math.abs(onV2.beijing / classes.beijing.n - 0.2)).toBeLessThanOrEqual(0.025);
    expect(Math.abs(onV2.others / classes.others.n - 0.05)).toBeLessThanOrEqual(0.015);
    const after = await Promise.all([p1.metrics(), p2.metrics()]);
    const delta = (i: number, labels: Record<string, string>) =>
      sample(after[i]!, "verso_requests_total", labels) -
      sample(before[i]!, "verso_requests_total", labels);
    expect(delta(0, { version: "v1" })).toBe(served.v1);
    expect(delta(1, { version: "v2" })).toBe(served.v2);
    expect(served.v1! + served.v2!).toBe(12_400);
    // Both paths were taken: v2 served some requests it received itself and some forwarded.
    expect(delta(1, { source: "local" })).toBeGreaterThan(0);
    expect(delta(1, { source: "forwarded" })).toBeGreaterThan(0);
    expect(delta(0, { source: "forwarded" })).toBeGreaterThan(0);
  });

  it("header and cookie rules send matching requests to the release from either entry", async () => {
    await route({
      version: "v2",
      strategy: "canary",
      weight: 0,
      match: [
        { header: "x-user-type", value: "internal" },
        { cookie: "beta", value: "1" },
      ],
    });
    for (const p of [p1, p2]) {
      for (let i = 0; i < 20; i++) {
        expect((await get(`${p.url}/echo`, { "x-user-type": "internal" })).version).toBe("v2");
        expect((await get(`${p.url}/echo`, { cookie: "a=b; beta=1" })).version).toBe("v2");
        expect((await get(`${p.url}/echo`, { cookie: "beta=2" })).version).toBe("v1");
        expect((await get(`${p.url}/echo`)).version).toBe("v1");
      }
    }
  });

  it("blue-green: preview by header, then switch with no failed request", async () => {
    await route({
      version: "v2",
      strategy: "blue-green",
      weight: 0,
      match: [{ header: "x-preview", value: "1" }],
    });
    expect((await get(`${p1.url}/echo`, { "x-preview": "1" })).version).toBe("v2");
    expect((await get(`${p2.url}/echo`)).version).toBe("v1");

    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const results: { status: number; version: string | undefined }[] = [];
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop && i < 20_000; i++) {
        const r = await get(`${[p1, p2][i % 2]!.url}/echo`, {}, agent).catch(() => ({
          status: 0,
          version: undefined,
        }));
        results.push(r);
      }
    })();
    await sleep(300);
    await route({
      version: "v2",
      strategy: "blue-green",
      weight: 100,
      match: [{ header: "x-preview", value: "1" }],
    });
    const switchedAt = results.length;
    await sleep(300);
    stop = true;
    await load;
    agent.destroy();
    expect(results.length).toBeGreaterThan(switchedAt);
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    expect(results.slice(0, 5).every((r) => r.version === "v1")).toBe(true);
    expect(results.slice(switchedAt).every((r) => r.version === "v2")).toBe(true);
  });

  it("a forged, stale or wrong-version hop marker does not bypass the split, and is stripped", async () => {
    await route({ version: "v2", strategy: "canary", weight: 0 });
    const now = Date.now();
    const forged = [
      signHop(Buffer.from("not-the-key-not-the-key-0123456"), "shop", "v2", now + 10_000),
      signHop(Buffer.from(HOP_KEY, "base64"), "shop", "v2", now - 1_000),
      signHop(Buffer.from(HOP_KEY, "base64"), "shop", "v1", now + 10_000),
      "1",
      `${now + 10_000}.AAAA.v2`,
    ];
    for (const token of forged) {
      // Landing on the release pod with weight 0: the request must still go to v1.
      const r = await get(`${p2.url}/echo`, { "x-verso-hop": token });
      expect(r.version).toBe("v1");
      expect(JSON.parse(r.body).headers["x-verso-hop"]).toBeUndefined();
    }
    // A genuine token does make the release pod serve it (that is how forwarding works).
    const genuine = signHop(Buffer.from(HOP_KEY, "base64"), "shop", "v2", now + 10_000);
    const r = await get(`${p2.url}/echo`, { "x-verso-hop": genuine });
    expect(r.version).toBe("v2");
    expect(JSON.parse(r.body).headers["x-verso-hop"]).toBeUndefined();
  });

  it("a dead peer causes no failed request; with no live peer the request is served locally", async () => {
    const dead = `${H2}:${await freePort(H2)}`;
    await route(
      { version: "v2", strategy: "canary", weight: 100 },
      {
        v1: [`${H1}:${p1.port}`],
        v2: [dead, `${H2}:${p2.port}`],
      },
    );
    const before = await p1.metrics();
    for (let i = 0; i < 100; i++) {
      const r = await get(`${p1.url}/echo`);
      expect(r.status).toBe(200);
      expect(r.version).toBe("v2");
    }
    // A streamed upload is retried too, intact: a refused connect has read no body byte. Fresh
    // dead peers each round (a refused one is skipped for 5 s); until one took the upload first.
    const SIZE = 10 * 1024 * 1024;
    let hitDead = false;
    for (let round = 0; round < 6 && !hitDead; round++) {
      const deadA = `${H2}:${await freePort(H2)}`;
      const deadB = `${H2}:${await freePort(H2)}`;
      await route(
        { version: "v2", strategy: "canary", weight: 100 },
        { v1: [`${H1}:${p1.port}`], v2: [deadA, deadB, `${H2}:${p2.port}`] },
      );
      const retried0 = sample(await p1.metrics(), "verso_retries_total");
      const chunk = Buffer.alloc(64 * 1024, 120);
      const post = await fetch(`${p1.url}/upload`, {
        method: "POST",
        body: Readable.toWeb(
          Readable.from(
            (function* () {
              for (let sent = 0; sent < SIZE; sent += chunk.length) yield chunk;
            })(),
          ),
        ) as ReadableStream,
        duplex: "half",
      } as RequestInit);
      expect(post.status).toBe(200);
      expect(await post.json()).toMatchObject({ version: "v2", bytes: SIZE });
      hitDead = sample(await p1.metrics(), "verso_retries_total") > retried0;
    }
    expect(hitDead).toBe(true);
    const after = await p1.metrics();
    expect(
      sample(after, "verso_retries_total") - sample(before, "verso_retries_total"),
    ).toBeGreaterThan(0);
    expect(sample(after, "verso_upstream_errors_total", { kind: "peer-connect" })).toBeGreaterThan(
      0,
    );

    await route(
      { version: "v2", strategy: "canary", weight: 100 },
      { v1: [`${H1}:${p1.port}`], v2: [dead] },
    );
    const fb0 = sample(await p1.metrics(), "verso_fallbacks_total", { version: "v2" });
    for (let i = 0; i < 20; i++) {
      const r = await get(`${p1.url}/echo`);
      expect(r.status).toBe(200);
      expect(r.version).toBe("v1");
    }
    expect(sample(await p1.metrics(), "verso_fallbacks_total", { version: "v2" }) - fb0).toBe(20);
  });
});

describe("pass-through", () => {
  beforeAll(() =>
    route({
      version: "v2",
      strategy: "canary",
      weight: 0,
      match: [{ header: "x-to", value: "v2" }],
    }),
  );

  it("X-Forwarded-* set once, Host preserved, hop-by-hop headers removed", async () => {
    const r = await get(`${p1.url}/echo`, {
      "x-to": "v2",
      host: "shop.example",
      "x-forwarded-for": "203.0.113.9",
      connection: "x-drop-me",
      "x-drop-me": "1",
      "proxy-authorization": "secret",
    });
    const seen = JSON.parse(r.body).headers;
    expect(r.version).toBe("v2");
    expect(seen.host).toBe("shop.example");
    expect(seen["x-forwarded-for"]).toBe("203.0.113.9, 127.0.0.1");
    expect(seen["x-forwarded-proto"]).toBe("http");
    expect(seen["x-forwarded-host"]).toBe("shop.example");
    expect(seen["x-drop-me"]).toBeUndefined();
    expect(seen["proxy-authorization"]).toBeUndefined();
  });

  it("chunked request bodies and Expect: 100-continue", async () => {
    const res = await fetch(`${p1.url}/echo`, {
      method: "POST",
      body: Readable.toWeb(Readable.from(["a".repeat(1000), "b".repeat(2000)])) as ReadableStream,
      duplex: "half",
      headers: { "x-to": "v2" },
    } as RequestInit);
    expect(await res.json()).toMatchObject({ version: "v2", bytes: 3000 });
    for (const reject of [false, true]) {
      const status = await new Promise<number>((resolve, reject_) => {
        const req = http.request(`${p1.url}/continue`, {
          method: "PUT",
          headers: {
            expect: "100-continue",
            "content-length": "5",
            "x-to": "v2",
            ...(reject ? { "x-reject": "1" } : {}),
          },
        });
        req.on("continue", () => req.end("hello"));
        req.on("response", (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject_);
      });
      expect(status).toBe(reject ? 417 : 200);
    }
  });

  it("server-sent events stream through as they are produced", async () => {
    const res = await fetch(`${p1.url}/sse?n=5`, { headers: { "x-to": "v2" } });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = res.body!.getReader();
    const arrivals: number[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const line of Buffer.from(value).toString().split("\n"))
        if (line.startsWith("data:")) arrivals.push(Date.now());
    }
    expect(arrivals.length).toBe(5);
    // Spread over ~400ms: delivered one by one, not buffered to the end.
    expect(arrivals[4]! - arrivals[0]!).toBeGreaterThan(250);
  });

  it("websocket upgrade to the local app and to a peer", async () => {
    for (const [headers, want] of [
      [{}, "v1"],
      [{ "x-to": "v2" }, "v2"],
    ] as const) {
      const ws = new WebSocket(`ws://${H1}:${p1.port}/ws`, { headers });
      let upgradeVersion: string | undefined;
      ws.once("upgrade", (res) => (upgradeVersion = res.headers["x-verso-version"] as string));
      await new Promise((resolve, reject) => {
        ws.once("open", resolve);
        ws.once("error", reject);
      });
      const replies: string[] = [];
      ws.on("message", (m) => replies.push(String(m)));
      for (let i = 0; i < 3; i++) ws.send(`m${i}`);
      await waitFor("echoes", async () => (replies.length === 3 ? true : undefined), 5_000, 20);
      expect(replies).toEqual([`${want}:m0`, `${want}:m1`, `${want}:m2`]);
      expect(upgradeVersion).toBe(want);
      ws.close();
    }
  });

  it("a 200 MB streamed upload passes through both proxies with bounded memory", async () => {
    const SIZE = 200 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 7);
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent >= SIZE) return this.push(null);
        sent += chunk.length;
        this.push(chunk);
      },
    });
    const [b1, b2] = await Promise.all([p1.metrics(), p2.metrics()]);
    const base = {
      v1: sample(b1, "process_resident_memory_bytes"),
      v2: sample(b2, "process_resident_memory_bytes"),
    };
    const rss = { v1: 0, v2: 0 };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [m1, m2] = await Promise.all([p1.metrics(), p2.metrics()]);
        rss.v1 = Math.max(rss.v1, sample(m1, "process_resident_memory_bytes"));
        rss.v2 = Math.max(rss.v2, sample(m2, "process_resident_memory_bytes"));
        await sleep(100);
      }
    })();
    const result = await new Promise<{ bytes: number; version: string }>((resolve, reject) => {
      const req = http.request(
        `${p1.url}/upload`,
        { method: "POST", headers: { "x-to": "v2" } },
        (res) => {
          let text = "";
          res.on("data", (c) => (text += c));
          res.on("end", () => resolve(JSON.parse(text)));
        },
      );
      req.on("error", reject);
      body.pipe(req);
    });
    sampling = false;
    await sampler;
    expect(result).toEqual(expect.objectContaining({ bytes: SIZE, version: "v2" }));
    // 200 MB went through; neither proxy's resident set grew by more than half of it (a proxy
    // that buffered the body would grow by all of it).
    const MB = 1024 * 1024;
    console.info(
      `upload RSS MB: v1 ${(base.v1 / MB).toFixed(0)} -> ${(rss.v1 / MB).toFixed(0)}, v2 ${(base.v2 / MB).toFixed(0)} -> ${(rss.v2 / MB).toFixed(0)}`,
    );
    expect(rss.v1).toBeGreaterThan(0);
    expect(rss.v1 - base.v1).toBeLessThan(SIZE / 2);
    expect(rss.v2 - base.v2).toBeLessThan(SIZE / 2);
  });
});
