/**
 * The access log on real Bun proxies (sidecar/access-log/): each proxy's stdout is this
 * test's own pipe, so the lines are read exactly as a container runtime reads them, and can
 * be left unread to make stdout slow.
 *
 * - Pods v1 (127.0.14.2) and v2 (127.0.14.3), a canary of v2 at weight 0 whose rule `x-to: v2`
 *   forwards: a request served where it landed, one forwarded (logged on both proxies), and a
 *   fallback once v2's proxy is gone; every line parsed as JSON with the documented fields.
 * - A proxy (127.0.14.4) whose stdout nobody reads: requests keep completing at their usual
 *   pace while the pipe is full, lines are dropped and counted, and once the pipe is read
 *   again every request is either a whole JSON line or one count of
 *   verso_access_log_dropped_total.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { METRIC } from "../../shared/metric-names.ts";
import { ENV, PROXY_RUNTIME_ENV } from "../../shared/pod-env.ts";
import type { AccessLine } from "../../sidecar/access-log/line.ts";
import { sample } from "../harness/metrics.ts";
import { BUN, REPO_ROOT, SIDECAR_MAIN } from "../harness/paths.ts";
import { freePort, waitFor } from "../harness/ports.ts";
import { get, makeDir, startApp, writeRoutes, type App } from "./sidecar-fixture.ts";

const H1 = "127.0.14.2";
const H2 = "127.0.14.3";
const H3 = "127.0.14.4";
const HOP_KEY = Buffer.from("access-log-test-hop-key-0123456").toString("base64");
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT = `00-${TRACE}-00f067aa0ba902b7-01`;
const RFC3339_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** A proxy whose stdout this test holds: read into `lines`, or left unread until `read()`. */
interface LoggingProxy {
  readonly url: string;
  readonly addr: string;
  readonly child: ChildProcess;
  /** Lines read so far, parsed (a line that is not JSON fails the test where it is read). */
  readonly lines: AccessLine[];
  /** Text read that does not parse as a JSON line (should stay empty). */
  readonly garbage: string[];
  /** Start (or keep) reading stdout. */
  read(): void;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

async function startLoggingProxy(o: {
  host: string;
  app: App;
  version: string;
  routes: string;
  dir: string;
  port?: number;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Leave stdout unread until read() (a slow log collector). */
  paused?: boolean;
}): Promise<LoggingProxy> {
  const port = o.port ?? (await freePort(o.host));
  const adminPort = await freePort(o.host);
  const child = spawn(
    BUN,
    [
      SIDECAR_MAIN,
      ...["--listen", `${o.host}:${port}`, "--app", `${o.app.host}:${o.app.port}`],
      ...["--admin", `${o.host}:${adminPort}`, "--app-name", "shop", "--version", o.version],
      ...["--routes", o.routes, "--log-level", "info", ...(o.args ?? [])],
    ],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, ...PROXY_RUNTIME_ENV, ...o.env },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const logFile = join(o.dir, `proxy-${o.version}-${port}.stderr.log`);
  child.stderr!.pipe(createWriteStream(logFile));
  const lines: AccessLine[] = [];
  const garbage: string[] = [];
  let partial = "";
  let reading = false;
  const read = (): void => {
    if (reading) return;
    reading = true;
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (text: string) => {
      const parts = (partial + text).split("\n");
      partial = parts.pop()!;
      for (const line of parts) {
        try {
          lines.push(JSON.parse(line) as AccessLine);
        } catch {
          garbage.push(line);
        }
      }
    });
  };
  if (!o.paused) read();
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const admin = `http://${o.host}:${adminPort}`;
  await waitFor(
    `proxy ${o.version} /ready (log ${logFile})`,
    async () => ((await fetch(`${admin}/ready`)).ok ? true : undefined),
    15_000,
    100,
  );
  return {
    url: `http://${o.host}:${port}`,
    addr: `${o.host}:${port}`,
    child,
    lines,
    garbage,
    read,
    metrics: async () => (await fetch(`${admin}/metrics`)).text(),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // Its own process group (detached): the proxy and nothing else of ours.
      process.kill(-child.pid!, "SIGKILL");
      await exited;
    },
  };
}

/** The first line matching `where`, once it has been written (lines go out asynchronously). */
function lineOf(p: LoggingProxy, where: (l: AccessLine) => boolean): Promise<AccessLine> {
  return waitFor("an access log line", async () => p.lines.find(where), 5_000, 20);
}

const dir = makeDir("verso-access-log-");
const started: { stop(): Promise<void> }[] = [];
afterAll(async () => {
  for (const s of started.reverse()) await s.stop();
});

describe("access log lines for a routed, a forwarded and a fallback request", () => {
  let app1: App;
  let app2: App;
  let p1: LoggingProxy;
  let p2: LoggingProxy;

  beforeAll(async () => {
    app1 = await startApp(H1, "v1");
    app2 = await startApp(H2, "v2");
    started.push({ stop: () => app1.close() }, { stop: () => app2.close() });
    const routes = join(dir, "routes.json");
    const [port1, port2] = await Promise.all([freePort(H1), freePort(H2)]);
    writeRoutes(routes, {
      app: "shop",
      revision: 1,
      release: {
        version: "v2",
        strategy: "canary",
        weight: 0,
        match: [{ header: "x-to", value: "v2" }],
      },
      endpoints: { v1: [`${H1}:${port1}`], v2: [`${H2}:${port2}`] },
      hopKey: HOP_KEY,
    });
    // v1 as the webhook configures it (env, with the pod's colour); v2 by flag.
    [p1, p2] = await Promise.all([
      startLoggingProxy({
        host: H1,
        app: app1,
        version: "v1",
        routes,
        dir,
        port: port1,
        env: { [ENV.accessLog]: "true", [ENV.color]: "blue" },
      }),
      startLoggingProxy({
        host: H2,
        app: app2,
        version: "v2",
        routes,
        dir,
        port: port2,
        args: ["--access-log", "true"],
      }),
    ]);
    started.push(p1, p2);
  });

  it("served where it landed: every documented field, no query, the trace id", async () => {
    const t0 = Date.now();
    const r = await get(`${p1.url}/echo?token=secret`, { traceparent: TRACEPARENT });
    expect(r.status).toBe(200);
    const line = await lineOf(p1, (l) => l.path === "/echo");
    expect(line).toEqual({
      time: expect.stringMatching(RFC3339_MS),
      app: "shop",
      version: "v1",
      color: "blue",
      route: "random",
      forwarded: false,
      servedBy: "v1",
      method: "GET",
      path: "/echo",
      status: 200,
      bytes: Buffer.byteLength(r.body),
      durationMs: expect.any(Number),
      upstream: "local",
      traceId: TRACE,
    });
    const at = Date.parse(line.time);
    expect(at).toBeGreaterThanOrEqual(t0 - 5);
    expect(at).toBeLessThanOrEqual(Date.now());
    expect(line.durationMs).toBeGreaterThan(0);
    expect(line.durationMs).toBeLessThan(Date.now() - t0 + 1);
  });

  it("a streamed body (no Content-Length) is counted as it is relayed", async () => {
    const r = await get(`${p1.url}/sse?n=3`);
    expect(r.status).toBe(200);
    const line = await lineOf(p1, (l) => l.path === "/sse");
    expect(line.bytes).toBe(Buffer.byteLength(r.body));
    expect(line.bytes).toBeGreaterThan(0);
    expect(line).not.toHaveProperty("traceId");
  });

  it("forwarded to a peer: its version and address here, a hop-token line there", async () => {
    const r = await get(`${p1.url}/echo/fwd`, { "x-to": "v2", traceparent: TRACEPARENT });
    expect(r.status).toBe(200);
    expect(r.version).toBe("v2");
    const here = await lineOf(p1, (l) => l.path === "/echo/fwd");
    expect(here).toMatchObject({
      version: "v1",
      color: "blue",
      route: "match",
      forwarded: true,
      servedBy: "v2",
      upstream: p2.addr,
      status: 200,
      bytes: Buffer.byteLength(r.body),
      traceId: TRACE,
    });
    const there = await lineOf(p2, (l) => l.path === "/echo/fwd");
    expect(there).toMatchObject({
      app: "shop",
      version: "v2",
      route: "hop-token",
      forwarded: false,
      servedBy: "v2",
      upstream: "local",
      status: 200,
      traceId: TRACE,
    });
    // No colour on a pod without one.
    expect(there).not.toHaveProperty("color");
  });

  it("fallback: the peer is down, so the request is served here and the line says so", async () => {
    await p2.stop();
    const r = await get(`${p1.url}/echo/fallback`, { "x-to": "v2" });
    expect(r.status).toBe(200);
    expect(r.version).toBe("v1");
    const line = await lineOf(p1, (l) => l.path === "/echo/fallback");
    expect(line).toMatchObject({
      route: "match",
      fallback: "v2",
      forwarded: false,
      servedBy: "v1",
      upstream: "local",
      status: 200,
    });
    expect(p1.garbage).toEqual([]);
    expect(p2.garbage).toEqual([]);
    expect(sample(await p1.metrics(), METRIC.accessLogDropped)).toBe(0);
  });
});

describe("a stdout nobody reads never delays a request", () => {
  const BUFFER = 16 * 1024;
  const CONCURRENCY = 8;
  let app: App;
  let proxy: LoggingProxy;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let sent = 0;

  /** `n` GETs, CONCURRENCY at a time; each one's milliseconds, and every status 200. */
  async function load(n: number): Promise<number[]> {
    const ms: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < n) {
          next++;
          const t0 = performance.now();
          const r = await get(`${proxy.url}/echo?n=${sent++}`, {}, agent);
          ms.push(performance.now() - t0);
          expect(r.status).toBe(200);
        }
      }),
    );
    return ms;
  }
  const dropped = async () => sample(await proxy.metrics(), METRIC.accessLogDropped);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

  beforeAll(async () => {
    app = await startApp(H3, "v1");
    started.push({ stop: () => app.close() });
    const routes = join(dir, "routes-slow.json");
    writeRoutes(routes, { app: "shop", revision: 1, endpoints: { v1: [] }, hopKey: HOP_KEY });
    proxy = await startLoggingProxy({
      host: H3,
      app,
      version: "v1",
      routes,
      dir,
      args: [
        ...["--access-log", "true", "--access-log-buffer-bytes", String(BUFFER)],
        ...["--drain-delay-seconds", "0"],
      ],
      paused: true,
    });
    started.push(proxy);
  });
  afterAll(() => agent.destroy());

  it("requests keep completing while the pipe is full; lines are dropped and counted", async () => {
    // Fill the pipe (the kernel's buffer, the reader's, then the proxy's 16 KiB).
    const before: number[] = [];
    while ((await dropped()) === 0) {
      expect(sent, "the pipe never filled").toBeLessThan(20_000);
      before.push(...(await load(200)));
    }
    // Full now: every further request still completes, at the pace it had.
    const droppedBefore = await dropped();
    const during = await load(1_000);
    const droppedDuring = (await dropped()) - droppedBefore;
    expect(droppedDuring).toBeGreaterThanOrEqual(during.length - 5);
    expect(Math.max(...during)).toBeLessThan(2_000);
    expect(median(during)).toBeLessThan(Math.max(50, 3 * median(before)));

    // Read again: what was held comes out whole, and every request is a line or a drop.
    proxy.read();
    await waitFor(
      "every request accounted for",
      async () => (proxy.lines.length + (await dropped()) === sent ? true : undefined),
      10_000,
      50,
    );
    expect(proxy.garbage).toEqual([]);
    expect(proxy.lines.length).toBeGreaterThan(0);
    for (const l of proxy.lines) expect(l).toMatchObject({ app: "shop", status: 200 });
    // Logging resumes once the output keeps up.
    const total = await dropped();
    await load(50);
    await waitFor(
      "the new lines",
      async () => (proxy.lines.length + total === sent ? true : undefined),
      5_000,
      20,
    );
    expect(await dropped()).toBe(total);
  });

  it("SIGTERM: exits 0 with the last request's line written", async () => {
    const r = await get(`${proxy.url}/echo/last`);
    expect(r.status).toBe(200);
    const exited = new Promise((resolve) => proxy.child.once("exit", resolve));
    process.kill(proxy.child.pid!, "SIGTERM");
    expect(await exited).toBe(0);
    await waitFor(
      "stdout closed",
      async () => (proxy.child.stdout!.readableEnded ? true : undefined),
      5_000,
      20,
    );
    expect(proxy.lines.at(-1)).toMatchObject({ path: "/echo/last", status: 200 });
  });
});
