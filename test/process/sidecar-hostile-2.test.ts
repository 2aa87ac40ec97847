/**
 * Hostile input at the proxy, the part of issue 15's list that sidecar-hostile.test.ts (request
 * framing, smuggling, oversized heads, a 5 s slowloris) and sidecar.test.ts (forged, stale and
 * wrong-version hop tokens) do not cover:
 *
 * - a head dribbled slowly: closed 10 s after the connect (a first head) or
 *   --client-idle-seconds after the last answer (a later one), bytes or not;
 * - thousands of idle connections: the proxy within its pod's 128 MiB and still serving;
 * - hop tokens replayed for another app, or valid far too long: ignored;
 * - no response, whoever made it (the app, a peer, the proxy itself), carries the internal
 *   hop header `x-verso-hop`. (`x-verso-version` and `x-verso-error` are public by design:
 *   docs/routing.md.)
 *
 *   v1: app + proxy on 127.0.21.2, v2: app + proxy on 127.0.21.3; the table sends `x-to: v2`
 *   to v2 and everything else to v1 (sidecar-fixture.ts startCanaryPair).
 */
import type http from "node:http";
import net from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signHop } from "../../sidecar/routing/hop.ts";
import { sleep } from "../harness/ports.ts";
import {
  get,
  makeDir,
  rawRequest,
  rssOf,
  startApp,
  startCanaryPair,
  startProxy,
  trackPeakRss,
  type App,
  type Proxy,
} from "./sidecar-fixture.ts";

const H1 = "127.0.21.2";
const H2 = "127.0.21.3";
const H3 = "127.0.21.4";
const KEY = Buffer.from("sidecar-hostile2-test-hop-key-01");
const MiB = 1024 * 1024;
/** The injected proxy's memory limit (--proxy-memory-limit, deploy/deployment.yaml). */
const POD_LIMIT = 128 * MiB;

let app1: App;
let app2: App;
let p1: Proxy;
let p2: Proxy;
let routes: string;
const report: string[] = [];

/** `/leak` answers with headers an app should never be able to pass to a client. */
const leak: http.RequestListener = (_req, res) => {
  res.setHeader("x-verso-hop", "from-the-app");
  res.setHeader("connection", "x-app-private");
  res.setHeader("x-app-private", "named in Connection");
  res.setHeader("content-type", "text/plain");
  res.end("leak\n");
};

beforeAll(async () => {
  const dir = makeDir("verso-sidecar-hostile2-");
  routes = join(dir, "routes.json");
  [app1, app2] = await Promise.all([
    startApp(H1, "v1", { http: { "/leak": leak } }),
    startApp(H2, "v2", { http: { "/leak": leak } }),
  ]);
  [p1, p2] = await startCanaryPair({
    apps: [app1, app2],
    routes,
    dir,
    hopKey: KEY.toString("base64"),
  });
});

afterAll(async () => {
  if (report.length > 0) console.info(`proxy, hostile input:\n  ${report.join("\n  ")}`);
  await Promise.all([p1?.proc.stop(), p2?.proc.stop()]);
  await Promise.all([app1?.close(), app2?.close()]);
});

describe("hop tokens replayed out of their context are ignored", () => {
  /**
   * Sent to v2's proxy with no `x-to`: the table sends it to v1. Only a token this proxy
   * signed for itself (app shop, version v2, still live) makes v2 serve it.
   */
  const at = (token: string) => get(`${p2.url}/echo`, { "x-verso-hop": token });

  it("a genuine token for (shop, v2) is honoured (the control)", async () => {
    const r = await at(signHop(KEY, "shop", "v2", Date.now() + 10_000));
    expect(r.version).toBe("v2");
  });

  for (const [name, token] of [
    [
      "signed with this key for another app (cart, v2)",
      () => signHop(KEY, "cart", "v2", Date.now() + 10_000),
    ],
    [
      "signed with another app's key (as the controller derives one per app)",
      () =>
        signHop(Buffer.from("another-apps-derived-hop-key-012"), "shop", "v2", Date.now() + 10_000),
    ],
    [
      "for another version, replayed at v2 (shop, v1)",
      () => signHop(KEY, "shop", "v1", Date.now() + 10_000),
    ],
    ["expired a second ago", () => signHop(KEY, "shop", "v2", Date.now() - 1_000)],
    [
      "valid for an hour (a token must not outlive 30 s + 30 s of skew)",
      () => signHop(KEY, "shop", "v2", Date.now() + 3_600_000),
    ],
    [
      "a genuine token with its version swapped (signature no longer matches)",
      () => signHop(KEY, "shop", "v1", Date.now() + 10_000).replace(/\.v1$/, ".v2"),
    ],
  ] as const) {
    it(`${name}: ignored, routed as the table says (v1), never reaches the app`, async () => {
      const r = await at(token());
      expect(r.version).toBe("v1");
      expect(JSON.parse(r.body).headers["x-verso-hop"]).toBeUndefined();
      expect(r.headers["x-verso-hop"]).toBeUndefined();
    });
  }
});

describe("no response carries the internal hop header", () => {
  const hopIn = (headers: Record<string, unknown>): string[] =>
    Object.keys(headers).filter((n) => /^x-verso-hop$/i.test(n) || /x-app-private/i.test(n));

  it("an app's own x-verso-hop (and a header it names in Connection) never reach the client, local or forwarded", async () => {
    const local = await rawRequest(
      H1,
      p1.port,
      "GET /leak HTTP/1.1\r\nHost: shop\r\nConnection: close",
    );
    const forwarded = await rawRequest(
      H1,
      p1.port,
      "GET /leak HTTP/1.1\r\nHost: shop\r\nx-to: v2\r\nConnection: close",
    );
    expect([local.status, local.headers["x-verso-version"]]).toEqual([200, "v1"]);
    expect([forwarded.status, forwarded.headers["x-verso-version"]]).toEqual([200, "v2"]);
    expect(hopIn(local.headers)).toEqual([]);
    expect(hopIn(forwarded.headers)).toEqual([]);
  });

  // The app-gone 503 a peer answers is checked in sidecar-app-gone.test.ts.
  it("nor do the proxy's own refusals (400 bad Host, 400 repeated Content-Length, 431)", async () => {
    const answers: [string, Record<string, string>][] = [];
    const raw = async (name: string, head: string): Promise<void> => {
      const r = await rawRequest(H1, p1.port, head).catch(() => undefined);
      if (r) answers.push([`${name}: ${r.status}`, r.headers]);
      r?.socket.destroy();
    };
    await raw("bad Host", "GET /echo HTTP/1.1\r\nHost: a/b\r\nConnection: close");
    await raw(
      "repeated Content-Length",
      "POST /echo HTTP/1.1\r\nHost: shop\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    );
    await raw(
      "forged hop, bad Host",
      "GET /echo HTTP/1.1\r\nHost: a b\r\nx-verso-hop: 1.AAAA.v1\r\nConnection: close",
    );
    await raw(
      "a 100 KB header",
      `GET /echo HTTP/1.1\r\nHost: shop\r\nX-Big: ${"a".repeat(100 * 1024)}`,
    );
    expect(answers.map(([n]) => n)).toEqual([
      "bad Host: 400",
      "repeated Content-Length: 400",
      "forged hop, bad Host: 400",
      "a 100 KB header: 431",
    ]);
    for (const [name, headers] of answers)
      expect({ name, hop: hopIn(headers) }).toEqual({ name, hop: [] });
  });
});

describe("thousands of idle connections", () => {
  /** Opens `n` TCP connections to the proxy, `concurrency` at a time; each sends `head` (if any). */
  async function openMany(n: number, head?: string): Promise<net.Socket[]> {
    const sockets: net.Socket[] = [];
    for (let i = 0; i < n; i += 250) {
      await Promise.all(
        Array.from({ length: Math.min(250, n - i) }, () => {
          const s = net.connect({ host: H1, port: p1.port });
          s.on("error", () => undefined);
          sockets.push(s);
          return new Promise<void>((r) =>
            s.once("connect", () => {
              if (head !== undefined) s.write(head);
              r();
            }),
          );
        }),
      );
    }
    return sockets;
  }
  const alive = (sockets: net.Socket[]): number =>
    sockets.filter((s) => !s.destroyed && s.readyState === "open").length;

  it("5,000 silent connections, 1,000 with half a head and 1,000 kept alive after a request: the proxy stays within 128 MiB and serves at once", async () => {
    const before = rssOf(p1.proc.pid);
    const peak = trackPeakRss([p1.proc.pid]);
    const started = Date.now();
    const silent = await openMany(5_000);
    const halfHeads = await openMany(1_000, "GET /echo HTTP/1.1\r\nHost: shop\r\nX-Partial: ");
    // Kept alive: one complete request each, answered, then nothing.
    const keptAlive = await openMany(1_000, "GET /echo HTTP/1.1\r\nHost: shop\r\n\r\n");
    await sleep(2_000);
    const openMs = Date.now() - started;
    const during = rssOf(p1.proc.pid);

    const t = Date.now();
    const r = await get(`${p1.url}/echo`);
    const servedMs = Date.now() - t;
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const a = Date.now();
      expect((await get(`${p1.url}/echo`)).status).toBe(200);
      latencies.push(Date.now() - a);
    }
    const stillOpen = alive([...silent, ...halfHeads, ...keptAlive]);
    const [peakBytes] = peak.stop();
    for (const s of [...silent, ...halfHeads, ...keptAlive]) s.destroy();
    await sleep(1_000);
    const after = rssOf(p1.proc.pid);
    report.push(
      `7,000 idle connections (5,000 silent, 1,000 half a head, 1,000 kept alive) opened in ${openMs} ms, ${stillOpen} still open; ` +
        `proxy RSS ${(before / MiB).toFixed(1)} -> ${(during / MiB).toFixed(1)} MiB (peak ${(peakBytes! / MiB).toFixed(1)}, ` +
        `${((during - before) / 7_000 / 1024).toFixed(1)} KiB per connection), ${(after / MiB).toFixed(1)} MiB after they closed; ` +
        `a request meanwhile: ${r.status} in ${servedMs} ms, then 20 in max ${Math.max(...latencies)} ms`,
    );
    expect(stillOpen).toBe(7_000);
    expect(r.status).toBe(200);
    expect(servedMs).toBeLessThan(1_000);
    expect(Math.max(...latencies)).toBeLessThan(500);
    expect(peakBytes!).toBeLessThan(POD_LIMIT);
  }, 120_000);
});

describe("a head dribbled one byte at a time", () => {
  /** Dribbles `head` one byte per `everyMs` until the proxy closes or `forMs` passes. */
  async function dribble(
    socket: net.Socket,
    head: string,
    everyMs: number,
    forMs: number,
  ): Promise<{ closedMs: number | undefined; sent: number }> {
    let closedAt: number | undefined;
    socket.once("close", () => (closedAt = Date.now()));
    const t0 = Date.now();
    let sent = 0;
    while (closedAt === undefined && Date.now() - t0 < forMs && sent < head.length) {
      socket.write(head.slice(sent, ++sent));
      await sleep(everyMs);
    }
    socket.destroy();
    return { closedMs: closedAt === undefined ? undefined : closedAt - t0, sent };
  }
  const connected = async (): Promise<net.Socket> => {
    const socket = net.connect({ host: H1, port: p1.port });
    socket.on("error", () => undefined);
    await new Promise<void>((r) => socket.once("connect", () => r()));
    return socket;
  };
  const slowHead = `GET /echo HTTP/1.1\r\nHost: shop\r\nX-Slow: ${"s".repeat(2_000)}\r\n\r\n`;

  /**
   * Bun.serve 1.4.4 gives a connection's first request head 10 s, whatever the rate and
   * whatever `--client-idle-seconds` (measured 10.0 s at 1 byte per 100 ms, 1 s, 2 s or 5 s, for
   * idle limits of 2, 30, 65 and 255 s).
   */
  it("the first head of a connection, one byte every 2 s: closed 10 s after the connect, the app sees nothing", async () => {
    const requests = app1.requests;
    const r = await dribble(await connected(), slowHead, 2_000, 70_000);
    report.push(
      `first head dribbled at one byte per 2 s: ${r.closedMs === undefined ? "still open after 70 s" : `closed after ${r.closedMs} ms`} (${r.sent} bytes)`,
    );
    expect(r.closedMs).toBeDefined();
    expect(r.closedMs!).toBeLessThanOrEqual(12_000);
    expect(app1.requests).toBe(requests);
  }, 90_000);

  /**
   * After its first request a kept-alive connection has no head deadline of its own, but the
   * bytes of a head do not restart Bun's idle timer: a connection dribbling its second head is
   * closed `--client-idle-seconds` after its last answer (plus Bun's timer granularity, up to
   * 4 s). Measured at the default 65 s: closed after 66.8 s, so issue 15's "within 60 s"
   * holds only with `--client-idle-seconds` 55 or less (docs/security.md). Shown here on a
   * proxy started with 15 s, to keep the test short.
   */
  it("a second head on a kept-alive connection, one byte every 2 s: closed --client-idle-seconds after the last answer", async () => {
    const idle = 15;
    const p3 = await startProxy({
      host: H3,
      app: app1,
      version: "v1",
      routes,
      dir: makeDir("verso-sidecar-hostile2-idle-"),
      extraArgs: ["--client-idle-seconds", String(idle)],
    });
    try {
      const socket = net.connect({ host: H3, port: p3.port });
      socket.on("error", () => undefined);
      await new Promise<void>((r) => socket.once("connect", () => r()));
      const answered = new Promise<void>((r) => socket.once("data", () => r()));
      socket.write("GET /echo HTTP/1.1\r\nHost: shop\r\n\r\n");
      await answered;
      const r = await dribble(socket, slowHead, 2_000, 60_000);
      report.push(
        `second head dribbled at one byte per 2 s, --client-idle-seconds ${idle}: ${r.closedMs === undefined ? "still open after 60 s" : `closed after ${r.closedMs} ms`} (${r.sent} bytes)`,
      );
      expect(r.closedMs).toBeDefined();
      expect(r.closedMs!).toBeGreaterThanOrEqual((idle - 1) * 1000);
      expect(r.closedMs!).toBeLessThanOrEqual((idle + 5) * 1000);
    } finally {
      await p3.proc.stop();
    }
  }, 90_000);
});
