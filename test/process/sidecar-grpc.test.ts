/**
 * gRPC through real proxies: two "pods" (v1 on 127.0.8.2, v2 on 127.0.8.3), each a grpc-js
 * server and an HTTP app behind one `bun sidecar/main.ts` with both listeners, reading one
 * routes file with `endpoints` and `grpcEndpoints`. Every call is routed on its own.
 */
import { join } from "node:path";
import grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sample } from "../harness/metrics.ts";
import { freePort, waitFor } from "../harness/ports.ts";
import { signHop } from "../../sidecar/routing/hop.ts";
import { client, ECHO, startGrpcApp, unary, type GrpcApp } from "./grpc-fixture.ts";
import {
  get,
  makeDir,
  startApp,
  startProxy,
  writeRoutes,
  type App,
  type Proxy,
} from "./sidecar-fixture.ts";

const H1 = "127.0.8.2";
const H2 = "127.0.8.3";
const HOP_KEY = Buffer.from("grpc-test-hop-key-0123456789abcd").toString("base64");

interface Pod {
  host: string;
  version: string;
  http: App;
  grpc: GrpcApp;
  grpcPort: number;
  proxy: Proxy;
}

let dir: string;
let routes: string;
let pods: [Pod, Pod];
let revision = 1;

async function route(release: object | undefined, grpcEndpoints?: Record<string, string[]>) {
  const rev = revision++;
  writeRoutes(routes, {
    app: "shop",
    revision: rev,
    ...(release ? { release } : {}),
    endpoints: Object.fromEntries(pods.map((p) => [p.version, [`${p.host}:${p.proxy.port}`]])),
    grpcEndpoints:
      grpcEndpoints ??
      Object.fromEntries(pods.map((p) => [p.version, [`${p.host}:${p.grpcPort}`]])),
    hopKey: HOP_KEY,
  });
  for (const p of pods) {
    await waitFor(
      `revision ${rev} on ${p.version}`,
      async () =>
        sample(await p.proxy.metrics(), "verso_routing_table_revision") === rev ? true : undefined,
      5_000,
      50,
    );
  }
}

/** A proxy on `host` in front of `app` (HTTP) and `grpcAppPort`, with a gRPC listener of its own. */
async function startGrpcProxy(
  host: string,
  version: string,
  app: App,
  grpcAppPort: number,
): Promise<{ proxy: Proxy; grpcPort: number }> {
  const grpcPort = await freePort(host);
  const proxy = await startProxy({
    host,
    app,
    version,
    routes,
    dir,
    extraArgs: ["--grpc-listen", `${host}:${grpcPort}`, "--grpc-app", `${host}:${grpcAppPort}`],
  });
  return { proxy, grpcPort };
}

async function startPod(host: string, version: string): Promise<Pod> {
  const http = await startApp(host, version);
  const grpcApp = await startGrpcApp(host, version);
  const { proxy, grpcPort } = await startGrpcProxy(host, version, http, grpcApp.port);
  return { host, version, http, grpc: grpcApp, grpcPort, proxy };
}

const served = (text: string, version: string, labels: Record<string, string> = {}) =>
  sample(text, "verso_requests_total", { version, ...labels });

beforeAll(async () => {
  dir = makeDir("verso-grpc-");
  routes = join(dir, "routes.json");
  writeRoutes(routes, { app: "shop", revision: revision++, endpoints: {}, hopKey: HOP_KEY });
  pods = [await startPod(H1, "v1"), await startPod(H2, "v2")];
  await route(undefined);
});

afterAll(async () => {
  for (const p of pods ?? []) {
    await p.proxy.proc.stop();
    await Promise.all([p.http.close(), p.grpc.close()]);
  }
});

describe("gRPC: every call routed on its own", () => {
  it("weight 20: 5,000 unary calls over ONE connection land 20 % ± 2 % on the release", async () => {
    await route({ version: "v2", strategy: "canary", weight: 20 });
    const before = await Promise.all(pods.map((p) => p.proxy.metrics()));
    const c = client(H1, pods[0].grpcPort);
    const N = 5_000;
    const on = { v1: 0, v2: 0 } as Record<string, number>;
    for (let i = 0; i < N; i += 250) {
      const batch = await Promise.all(Array.from({ length: 250 }, () => unary(c, "hello")));
      for (const r of batch) {
        expect(r.code).toBe(0);
        const v = r.body!.split(":")[0]!;
        expect(r.version).toBe(v);
        on[v]!++;
      }
    }
    c.close();
    console.log("share on v2 over one connection:", on.v2! / N);
    expect(Math.abs(on.v2! / N - 0.2)).toBeLessThanOrEqual(0.02);
    const after = await Promise.all(pods.map((p) => p.proxy.metrics()));
    // Counted where served, as 2xx: the counters add up to the calls made.
    const d1 =
      served(after[0]!, "v1", { code_class: "2xx" }) -
      served(before[0]!, "v1", { code_class: "2xx" });
    const d2 =
      served(after[1]!, "v2", { code_class: "2xx" }) -
      served(before[1]!, "v2", { code_class: "2xx" });
    expect(d1).toBe(on.v1);
    expect(d2).toBe(on.v2);
  });

  it("a metadata match rule sends every matching call to the release; a path rule too", async () => {
    await route({
      version: "v2",
      strategy: "canary",
      weight: 0,
      match: [{ header: "x-user-type", value: "internal" }, { pathPrefix: "/verso.test.Echo/Up" }],
    });
    const c = client(H1, pods[0].grpcPort);
    for (let i = 0; i < 100; i++) {
      expect((await unary(c, "a", { "x-user-type": "internal" })).body).toBe("v2:a");
      expect((await unary(c, "b")).body).toBe("v1:b");
    }
    const up = await new Promise<string>((resolve, reject) => {
      const call = c.makeClientStreamRequest(
        ECHO.Up.path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        (e, v) => (e ? reject(e) : resolve(v!.toString())),
      );
      call.write(Buffer.alloc(10));
      call.end();
    });
    expect(up).toBe("v2:10");
    c.close();
  });

  it("sticky by metadata: a key never flips, and stays on the release as the weight grows", async () => {
    const c = client(H2, pods[1].grpcPort);
    const onRelease = new Map<string, boolean>();
    for (const weight of [10, 50]) {
      await route({ version: "v2", strategy: "canary", weight, sticky: { header: "x-user-id" } });
      const first = new Map<string, boolean>();
      for (let round = 0; round < 2; round++) {
        for (let u = 0; u < 60; u++) {
          const key = `user-${u}`;
          const on = (await unary(c, "s", { "x-user-id": key })).body!.startsWith("v2:");
          if (round === 0) first.set(key, on);
          else expect(on).toBe(first.get(key)); // the same key, the same side
          if (onRelease.get(key)) expect(on).toBe(true); // never flips back as weight grows
        }
      }
      for (const [key, on] of first) onRelease.set(key, on);
    }
    expect([...onRelease.values()].filter(Boolean).length).toBeGreaterThan(10);
    c.close();
  });

  it("HTTP/1.1 and gRPC ports of the same pod are both routed", async () => {
    await route({ version: "v2", strategy: "canary", weight: 100 });
    const c = client(H1, pods[0].grpcPort);
    expect((await unary(c, "x")).body).toBe("v2:x");
    c.close();
    const r = await get(`${pods[0].proxy.url}/echo`);
    expect(r.version).toBe("v2");
  });

  it("a forged hop token is ignored: the call is routed as if it had none", async () => {
    await route({ version: "v2", strategy: "canary", weight: 0 });
    const c = client(H1, pods[0].grpcPort);
    const forged = signHop(
      Buffer.from("not-the-key-0123456789abcdefghij"),
      "shop",
      "v1",
      Date.now() + 10_000,
    );
    // Sent to v1's proxy claiming to be for v2? No: a token signed with the wrong key for v1.
    const r = await unary(c, "f", { "x-verso-hop": forged });
    expect(r.body).toBe("v1:f");
    // And a forged token presented to v2's proxy does not make v2 serve a stable call locally.
    const c2 = client(H2, pods[1].grpcPort);
    const forged2 = signHop(
      Buffer.from("not-the-key-0123456789abcdefghij"),
      "shop",
      "v2",
      Date.now() + 10_000,
    );
    expect((await unary(c2, "g", { "x-verso-hop": forged2 })).body).toBe("v1:g");
    c.close();
    c2.close();
  });
});

describe("gRPC: pass-through", () => {
  beforeAll(() => route({ version: "v2", strategy: "canary", weight: 100 }));

  it("server, client and bidi streaming of 10 MB pass intact across two proxies", async () => {
    const c = client(H1, pods[0].grpcPort);
    const SIZE = 10 * 1024 * 1024;
    const down = await new Promise<number>((resolve, reject) => {
      let n = 0;
      const call = c.makeServerStreamRequest(
        ECHO.Down.path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(String(SIZE)),
      );
      call.on("data", (d: Buffer) => (n += d.length));
      call.on("end", () => resolve(n));
      call.on("error", reject);
    });
    expect(down).toBe(SIZE);
    const up = await new Promise<string>((resolve, reject) => {
      const call = c.makeClientStreamRequest(
        ECHO.Up.path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        (e, v) => (e ? reject(e) : resolve(v!.toString())),
      );
      const chunk = Buffer.alloc(64 * 1024, 1);
      for (let sent = 0; sent < SIZE; sent += chunk.length) call.write(chunk);
      call.end();
    });
    expect(up).toBe(`v2:${SIZE}`);
    const echoed = await new Promise<number>((resolve, reject) => {
      let n = 0;
      const call = c.makeBidiStreamRequest(
        ECHO.Bidi.path,
        (b: Buffer) => b,
        (b: Buffer) => b,
      );
      call.on("data", (d: Buffer) => (n += d.length));
      call.on("end", () => resolve(n));
      call.on("error", reject);
      const chunk = Buffer.alloc(64 * 1024, 2);
      for (let sent = 0; sent < SIZE; sent += chunk.length) call.write(chunk);
      call.end();
    });
    expect(echoed).toBe(SIZE);
    c.close();
  });

  it("bidi is interactive: each message comes back before the next is sent", async () => {
    const c = client(H1, pods[0].grpcPort);
    const call = c.makeBidiStreamRequest(
      ECHO.Bidi.path,
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    for (let i = 0; i < 5; i++) {
      const back = new Promise<string>((r) => call.once("data", (d: Buffer) => r(d.toString())));
      call.write(Buffer.from(`m${i}`));
      expect(await back).toBe(`m${i}`);
    }
    call.end();
    c.close();
  });

  it("errors, trailers-only answers and trailing metadata pass exactly; a release failing UNAVAILABLE is counted 5xx", async () => {
    const c = client(H1, pods[0].grpcPort);
    const before = await pods[1].proxy.metrics();
    const nf = await unary(c, "status:5");
    expect(nf).toMatchObject({ code: grpc.status.NOT_FOUND, details: "v2 failed on purpose" });
    const unavailable = await unary(c, "status:14");
    expect(unavailable.code).toBe(grpc.status.UNAVAILABLE);
    const trailing = await new Promise<string | undefined>((resolve) => {
      const call = c.makeUnaryRequest(
        ECHO.Unary.path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from("t"),
        () => undefined,
      );
      call.on("status", (s) => resolve(s.metadata.get("x-served-by")[0] as string | undefined));
    });
    expect(trailing).toBe("v2");
    const after = await pods[1].proxy.metrics();
    expect(
      served(after, "v2", { code_class: "4xx" }) - served(before, "v2", { code_class: "4xx" }),
    ).toBe(1);
    expect(
      served(after, "v2", { code_class: "5xx" }) - served(before, "v2", { code_class: "5xx" }),
    ).toBe(1);
    c.close();
  });

  it("a deadline is kept by the proxy and the app sees the cancellation; a client cancel reaches the app", async () => {
    const c = client(H1, pods[0].grpcPort);
    const cancelled0 = pods[1].grpc.cancelled;
    const t0 = Date.now();
    const r = await unary(c, "sleep:3000", {}, { deadline: Date.now() + 300 });
    expect(r.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - t0).toBeLessThan(1_500);
    await waitFor(
      "app saw the deadline's cancel",
      async () => (pods[1].grpc.cancelled > cancelled0 ? true : undefined),
      3_000,
      20,
    );
    const cancelled1 = pods[1].grpc.cancelled;
    const call = c.makeUnaryRequest(
      ECHO.Unary.path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from("sleep:3000"),
      () => undefined,
    );
    setTimeout(() => call.cancel(), 200);
    await waitFor(
      "app saw the client's cancel",
      async () => (pods[1].grpc.cancelled > cancelled1 ? true : undefined),
      3_000,
      20,
    );
    c.close();
  });

  it("5,000 calls on one upstream session: no GOAWAY, no failed call (Bun's http2 client)", async () => {
    const c = client(H1, pods[0].grpcPort);
    const errors0 = sample(await pods[0].proxy.metrics(), "verso_upstream_errors_total");
    let failed = 0;
    for (let i = 0; i < 5_000; i += 250) {
      const batch = await Promise.all(Array.from({ length: 250 }, () => unary(c, "p")));
      failed += batch.filter((r) => r.code !== 0).length;
    }
    expect(failed).toBe(0);
    expect(sample(await pods[0].proxy.metrics(), "verso_upstream_errors_total")).toBe(errors0);
    c.close();
  });

  it("grpc.health.v1 is answered by this pod's app, never routed", async () => {
    const c = client(H1, pods[0].grpcPort);
    const calls = pods[0].grpc.calls;
    const status = await new Promise<string>((resolve, reject) =>
      c.makeUnaryRequest(
        "/grpc.health.v1.Health/Check",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        (e, v) => (e ? reject(e) : resolve(v!.toString("hex"))),
      ),
    );
    expect(status).toBe("0801");
    expect(pods[0].grpc.calls).toBe(calls); // Check is not Unary: v1's Echo saw nothing
    c.close();
  });
});

describe("gRPC: failures", () => {
  it("a dead peer fails no call; with no live peer the call is served locally (fallback)", async () => {
    const dead = `${H2}:${await freePort(H2)}`;
    await route(
      { version: "v2", strategy: "canary", weight: 100 },
      { v1: [`${H1}:${pods[0].grpcPort}`], v2: [dead, `${H2}:${pods[1].grpcPort}`] },
    );
    const c = client(H1, pods[0].grpcPort);
    const before = await pods[0].proxy.metrics();
    for (let i = 0; i < 50; i++) {
      const r = await unary(c, "d");
      expect(r, JSON.stringify(r)).toMatchObject({ code: 0, body: "v2:d" });
    }
    const after = await pods[0].proxy.metrics();
    const delta = (name: string, labels: Record<string, string> = {}) =>
      sample(after, name, labels) - sample(before, name, labels);
    // The dead peer was tried and refused, and the call went on to the live one.
    expect(delta("verso_upstream_errors_total", { kind: "peer-connect" })).toBeGreaterThan(0);
    expect(delta("verso_retries_total")).toBeGreaterThan(0);
    await route(
      { version: "v2", strategy: "canary", weight: 100 },
      { v1: [`${H1}:${pods[0].grpcPort}`], v2: [dead] },
    );
    const fb0 = sample(await pods[0].proxy.metrics(), "verso_fallbacks_total", { version: "v2" });
    for (let i = 0; i < 20; i++) expect((await unary(c, "e")).body).toBe("v1:e");
    expect(
      sample(await pods[0].proxy.metrics(), "verso_fallbacks_total", { version: "v2" }) - fb0,
    ).toBe(20);
    c.close();
  });

  it("an app that sends GOAWAY every 300 ms (max connection age) fails no call: sessions are replaced", async () => {
    const aging = await startGrpcApp(H1, "v1", { maxConnectionAgeMs: 300 });
    const { proxy: p, grpcPort: port } = await startGrpcProxy(H1, "v1", pods[0].http, aging.port);
    try {
      await route(undefined);
      const c = client(H1, port);
      let failed = 0;
      const until = Date.now() + 2_500;
      let calls = 0;
      while (Date.now() < until && calls < 20_000) {
        const batch = await Promise.all(Array.from({ length: 20 }, () => unary(c, "age")));
        calls += batch.length;
        failed += batch.filter((r) => r.code !== 0).length;
      }
      c.close();
      console.log(`max-connection-age run: ${calls} calls, ${failed} failed`);
      expect(calls).toBeGreaterThan(200);
      expect(failed).toBe(0);
    } finally {
      await p.proc.stop();
      await aging.close();
    }
  });

  it("no upstream at all answers UNAVAILABLE as gRPC, never an HTTP error page", async () => {
    const gone = await freePort(H1);
    const { proxy: lone, grpcPort: port } = await startGrpcProxy(H1, "v1", pods[0].http, gone);
    try {
      const c = client(H1, port);
      const r = await unary(c, "z");
      expect(r.code).toBe(grpc.status.UNAVAILABLE);
      expect(r.details).toMatch(/verso proxy/);
      c.close();
    } finally {
      await lone.proc.stop();
    }
  });

  it("a release failing every call is cut off at the 5th failure in a row: 0 % on it within 1 s, for HTTP too", async () => {
    const CUTOFF = 5;
    await route({ version: "v2", strategy: "canary", weight: 50, cutoffFailures: CUTOFF });
    pods[1].grpc.failWith = grpc.status.INTERNAL;
    const c = client(H1, pods[0].grpcPort);
    try {
      const results: { body: string | undefined; code: number; at: number }[] = [];
      const call = async () => ({ ...(await unary(c, "cut")), at: performance.now() });
      // Bounded: at most 600 calls, 10 at a time, for at most 20 s.
      const until = Date.now() + 20_000;
      while (results.length < 600 && Date.now() < until)
        results.push(...(await Promise.all(Array.from({ length: 10 }, call))));
      const byEnd = [...results].sort((a, b) => a.at - b.at);
      // v2's failures carry its details; every success is v1's body.
      const fromV2 = byEnd.filter((r) => r.code !== 0);
      expect(fromV2.every((r) => r.code === grpc.status.INTERNAL)).toBe(true);
      const fifth = fromV2[CUTOFF - 1];
      expect(fifth, "v2 got at least 5 calls before the cut").toBeDefined();
      const last = fromV2.at(-1)!;
      const cutMs = last.at - fifth!.at;
      console.log(
        `grpc cut-off: ${fromV2.length} calls failed on v2; last one ${cutMs.toFixed(1)} ms after the 5th failure; ${results.length - fromV2.length} served by v1`,
      );
      expect(cutMs).toBeLessThanOrEqual(1_000);
      const after = byEnd.filter((r) => r.at > last.at);
      expect(after.length).toBeGreaterThan(100);
      expect(after.every((r) => r.code === 0 && r.body?.startsWith("v1:"))).toBe(true);
      const text = await pods[0].proxy.metrics();
      expect(sample(text, "verso_release_cutoff", { version: "v2" })).toBe(1);
      // One cut per proxy: its HTTP listener sends the release nothing either.
      for (let i = 0; i < 20; i++) {
        const res = await get(`${pods[0].proxy.url}/`);
        expect(res.version).toBe("v1");
      }
    } finally {
      c.close();
      delete pods[1].grpc.failWith;
      await route({ version: "v2", strategy: "canary", weight: 0, cutoffFailures: CUTOFF });
    }
  });
});
