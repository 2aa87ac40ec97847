/**
 * One proxy process per case: readiness, rewritten kubelet probes, a malformed routes file,
 * the version header switch, and the SIGTERM drain.
 */
import http from "node:http";
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { bundleProxy } from "../harness/compiled.ts";
import { sample } from "../harness/metrics.ts";
import { freePort, sleep, waitFor } from "../harness/ports.ts";
import {
  get,
  makeDir,
  startApp,
  startProxy,
  writeRoutes,
  type App,
  type Proxy,
} from "./sidecar-fixture.ts";

const H = "127.0.3.4";
let dir: string;
let app: App;

beforeAll(async () => {
  dir = makeDir("verso-sidecar-life-");
  app = await startApp(H, "v1");
});
afterAll(() => app?.close());

/** A v1 proxy in front of `app`, its routes file `<name>.json` holding a table without a release. */
async function startShopProxy(
  name: string,
  revision: number,
  opts: Partial<Parameters<typeof startProxy>[0]> = {},
): Promise<{ routes: string; p: Proxy }> {
  const routes = join(dir, `${name}.json`);
  writeRoutes(routes, { app: "shop", revision, endpoints: {} });
  const p = await startProxy({ host: H, app, version: "v1", routes, dir, ...opts });
  return { routes, p };
}

describe("proxy lifecycle", () => {
  it("SIGTERM: /ready turns 503; new connections are served with Connection: close for the drain delay, then refused; the in-flight request finishes; exit 0", async () => {
    const { p } = await startShopProxy("drain", 1, {
      extraArgs: ["--drain-seconds", "10", "--drain-delay-seconds", "1"],
    });
    // Keep-alive, so "Connection: close" on the answer can only come from the proxy's drain.
    const agent = new http.Agent({ keepAlive: true });
    const slow = get(`${p.url}/slow?ms=2500`, {}, agent);
    await sleep(200);
    process.kill(p.proc.pid, "SIGTERM");
    await sleep(200);
    const ready = await fetch(`http://${H}:${p.adminPort}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ draining: true });
    // In the drain delay: kube-proxy and the peers may still send requests here.
    const during = await get(`${p.url}/echo`);
    expect(during.status).toBe(200);
    expect(during.headers.connection).toBe("close");
    await sleep(1_200);
    await expect(get(`${p.url}/echo`)).rejects.toThrow();
    const r = await slow;
    agent.destroy();
    expect(r.status).toBe(200);
    expect(r.body).toBe("v1");
    expect(r.headers.connection).toBe("close");
    const exit = await p.proc.exited;
    expect(exit).toEqual({ code: 0, signal: null });
  });

  it("drain deadline: a request longer than --drain-seconds does not hold the exit", async () => {
    const { p } = await startShopProxy("drain2", 1, {
      extraArgs: ["--drain-seconds", "0.5", "--drain-delay-seconds", "0"],
    });
    const slow = get(`${p.url}/slow?ms=5000`).catch((e: Error) => e);
    await sleep(200);
    const t0 = Date.now();
    process.kill(p.proc.pid, "SIGTERM");
    expect((await p.proc.exited).code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(await slow).toBeInstanceOf(Error);
  });

  it("SIGTERM closes relayed websockets with 1001 at once instead of waiting out --drain-seconds", async () => {
    const { p } = await startShopProxy("drain-ws", 1, {
      extraArgs: ["--drain-seconds", "20", "--drain-delay-seconds", "0"],
    });
    const ws = new WebSocket(`ws://${H}:${p.port}/ws`);
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    const t0 = Date.now();
    process.kill(p.proc.pid, "SIGTERM");
    expect(await closed).toBe(1001);
    expect((await p.proc.exited).code).toBe(0);
    // Not the 20 s drain: nothing else was in flight once the socket was closed.
    expect(Date.now() - t0).toBeLessThan(3_000);
  });

  it("the image's bundle (bun build, as Dockerfile.sidecar builds it) serves, routes and counts", async () => {
    const main = bundleProxy(dir);
    const { p } = await startShopProxy("bundle", 1, { main });
    try {
      for (let i = 0; i < 20; i++) {
        const r = await get(`${p.url}/echo?i=${i}`);
        expect(r.status).toBe(200);
        expect(r.version).toBe("v1");
      }
      const m = await p.metrics();
      expect(sample(m, "verso_requests_total", { code_class: "2xx" })).toBe(20);
      expect(sample(m, "verso_upstream_errors_total")).toBe(0);
    } finally {
      await p.proc.stop();
    }
  });

  it("/ready needs the app's port; /healthz does not", async () => {
    const noApp = { ...app, port: await freePort(H) };
    const { p } = await startShopProxy("ready", 1, { app: noApp, waitReady: false });
    try {
      const admin = `http://${H}:${p.adminPort}`;
      expect((await fetch(`${admin}/healthz`)).status).toBe(200);
      const ready = await fetch(`${admin}/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({
        appAccepting: false,
        routing: "table",
        revision: 1,
      });
      // The app being down is the version's failure: 502, counted where served.
      const r = await get(`${p.url}/echo`);
      expect(r.status).toBe(502);
      const m = await p.metrics();
      expect(sample(m, "verso_requests_total", { code_class: "5xx", version: "v1" })).toBe(1);
      expect(sample(m, "verso_upstream_errors_total", { kind: "app-connect" })).toBe(1);
    } finally {
      await p.proc.stop();
    }
  });

  it("rewritten kubelet probes reach this pod's app (http with path and headers, tcp)", async () => {
    const dead = await freePort(H);
    const probes = {
      "/app-health/web/readyz": {
        kind: "http",
        port: app.port,
        path: "/echo?probe=1",
        scheme: "HTTP",
        headers: [{ name: "x-probe", value: "kubelet" }],
      },
      "/app-health/web/livez": { kind: "tcp", port: app.port },
      "/app-health/web/startupz": { kind: "tcp", port: dead },
      "/app-health/side/readyz": { kind: "http", port: dead, path: "/", scheme: "HTTP" },
    };
    const { p } = await startShopProxy("probes", 1, {
      env: { VERSO_PROBES: JSON.stringify(probes) },
    });
    try {
      const admin = `http://${H}:${p.adminPort}`;
      expect((await fetch(`${admin}/app-health/web/readyz`)).status).toBe(200);
      expect(app.lastHeaders["x-probe"]).toBe("kubelet");
      expect((await fetch(`${admin}/app-health/web/livez`)).status).toBe(200);
      expect((await fetch(`${admin}/app-health/web/startupz`)).status).toBe(503);
      expect((await fetch(`${admin}/app-health/side/readyz`)).status).toBe(503);
      expect((await fetch(`${admin}/app-health/nope/readyz`)).status).toBe(404);
    } finally {
      await p.proc.stop();
    }
  });

  it("a ConfigMap volume's ..data symlink swap is seen (the file path itself never changes)", async () => {
    // The kubelet's layout: routes.json -> ..data/routes.json, ..data -> ..<timestamp>/, and an
    // update writes a new ..<timestamp>/ and renames a new ..data link over the old one.
    const vol = join(dir, "configmap");
    const publish = (stamp: string, revision: number): void => {
      mkdirSync(join(vol, stamp), { recursive: true });
      writeFileSync(
        join(vol, stamp, "routes.json"),
        JSON.stringify({ app: "shop", revision, endpoints: {} }),
      );
      symlinkSync(stamp, join(vol, "..data_tmp"));
      renameSync(join(vol, "..data_tmp"), join(vol, "..data"));
    };
    publish("..2026_11_28_a", 21);
    symlinkSync(join("..data", "routes.json"), join(vol, "routes.json"));
    const p = await startProxy({
      host: H,
      app,
      version: "v1",
      routes: join(vol, "routes.json"),
      dir,
    });
    try {
      const revision = async () => sample(await p.metrics(), "verso_routing_table_revision");
      expect(await revision()).toBe(21);
      publish("..2026_11_28_b", 22);
      rmSync(join(vol, "..2026_11_28_a"), { recursive: true });
      await waitFor(
        "revision 22",
        async () => ((await revision()) === 22 ? true : undefined),
        5_000,
        50,
      );
    } finally {
      await p.proc.stop();
    }
  });

  it("a malformed routes file is reported and the last good table kept; --version-header false", async () => {
    const { routes, p } = await startShopProxy("bad", 4, {
      extraArgs: ["--version-header", "false"],
    });
    try {
      writeFileSync(routes, "{ not json");
      await sleep(1_500);
      writeRoutes(routes, { app: "other-app", revision: 9, endpoints: {} });
      await sleep(1_500);
      expect(sample(await p.metrics(), "verso_routing_table_revision")).toBe(4);
      const r = await get(`${p.url}/echo`);
      expect(r.status).toBe(200);
      expect(r.version).toBeUndefined();
      writeRoutes(routes, { app: "shop", revision: 5, endpoints: {} });
      await waitFor(
        "revision 5",
        async () =>
          sample(await p.metrics(), "verso_routing_table_revision") === 5 ? true : undefined,
        5_000,
        50,
      );
    } finally {
      await p.proc.stop();
    }
    const log = readFileSync(p.proc.logFile, "utf8");
    expect(log).toContain("malformed routes file");
    expect(log).toContain("wrong-app");
  });

  it("slow client: a large response does not pile up in the proxy", async () => {
    // The app streams 50 MB; the client reads slowly. pipe() must pause the app side.
    const big = http.createServer((_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 1);
      let left = 800;
      const write = (): void => {
        while (left > 0) {
          left--;
          if (!res.write(chunk)) return void res.once("drain", write);
        }
        res.end();
      };
      write();
    });
    const port = await freePort(H);
    await new Promise<void>((r) => big.listen(port, H, r));
    const { p } = await startShopProxy("slow", 1, { app: { ...app, port } });
    try {
      let received = 0;
      await new Promise<void>((resolve, reject) => {
        http.get(`${p.url}/big`, (res) => {
          res.on("data", (c: Buffer) => {
            received += c.length;
            res.pause();
            setTimeout(() => res.resume(), 2);
          });
          res.on("end", resolve);
          res.on("error", reject);
        });
      });
      expect(received).toBe(800 * 64 * 1024);
      const rss = sample(await p.metrics(), "process_resident_memory_bytes");
      expect(rss).toBeLessThan(150 * 1024 * 1024);
    } finally {
      await p.proc.stop();
      big.close();
    }
  });
});
