/**
 * One regression test per Bun default that silently breaks a proxy
 * (docs/routing.md: "Why Bun" and the pitfalls table under "The data path"),
 * each through real `bun sidecar/main.ts` processes:
 *
 *   v1: app + proxy on 127.0.7.2, v2: app + proxy on 127.0.7.3 (the forward path: client ->
 *   proxy v1 -> proxy v2 -> app v2, chosen by `x-to: v2`), and a third pod on 127.0.7.4 whose
 *   app serves only the websocket churn test, so its upstream sockets can be counted alone.
 *
 * Every proxy runs with both Bun idle timers set to fire early (`--client-idle-seconds 2`,
 * `BUN_CONFIG_HTTP_IDLE_TIMEOUT=1`), so every slow transfer below also proves that no idle
 * timer cuts a response or an upload in progress.
 */
import { createHash, type Hash } from "node:crypto";
import http from "node:http";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { freePort, sleep, waitFor } from "../harness/ports.ts";
import { sample } from "../harness/metrics.ts";
import {
  establishedWith,
  makeDir,
  rawRequest,
  startApp,
  startCanaryPair,
  startProxy,
  trackPeakRss,
  writeRoutes,
  type App,
  type AppRoutes,
  type Proxy,
} from "./sidecar-fixture.ts";

const H1 = "127.0.7.2";
const H2 = "127.0.7.3";
const H3 = "127.0.7.4";
const HOP_KEY = Buffer.from("sidecar-bun-test-hop-key-0123456").toString("base64");
const MB = 1024 * 1024;
/** The target for one proxy's peak resident set while it moves hundreds of MB. */
const RSS_LIMIT = 96 * MB;
const CLIENT_IDLE_SECONDS = 2;
/**
 * Bun's fetch idle timer (seconds; 0 disables it). Measured on 1.4.4: with 1 (or 2) a
 * response silent for 12 s fails with TimeoutError after 8.0 s (Bun adds its 4 s timer
 * granularity); unset, 300 s. The proxy passes `timeout: false`, so it must not apply.
 */
const BUN_FETCH_IDLE = "1";
const HOSTILE_TIMERS = {
  extraArgs: ["--client-idle-seconds", String(CLIENT_IDLE_SECONDS)],
  env: { BUN_CONFIG_HTTP_IDLE_TIMEOUT: BUN_FETCH_IDLE },
};

let dir: string;
let app1: App;
let app2: App;
let app3: App;
let p1: Proxy;
let p2: Proxy;
let p3: Proxy;

// ---- bodies: distinct 1 MiB blocks (a lost, repeated or reordered block changes the hash) ----

const BLOCK = Buffer.alloc(MB, 0);
for (let i = 0; i < BLOCK.length; i++) BLOCK[i] = (i * 7 + (i >> 11)) & 0xff;

/** Block `i` of a body: the pattern with `i` written at its start. */
function block(i: number, size = MB): Buffer {
  const b = Buffer.allocUnsafe(size);
  BLOCK.copy(b, 0, 0, size);
  b.writeUInt32BE(i, 0);
  return b;
}

/** A body of `blocks` distinct blocks, hashed as it is produced. */
function generated(blocks: number, hash: Hash): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i === blocks) return void this.push(null);
      const b = block(i++);
      hash.update(b);
      this.push(b);
    },
  });
}

/** Bytes and sha256 of a stream, as it arrives. */
class Tally {
  bytes = 0;
  private readonly hash = createHash("sha256");
  add(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
  }
  digest(): string {
    return this.hash.digest("hex");
  }
}

// ---- the apps' extra routes ----

/** The app's digest of the last /download it sent. */
let sentDownload = "";
/** Close codes and reasons the apps saw on /close-codes and /churn. */
const appCloses: { path: string; code: number; reason: string }[] = [];
/** What /up received, by connection. */
const upReceived: Tally[] = [];

const routes: AppRoutes = {
  http: {
    /** Promises 100 bytes, sends 10, then stalls until the client is gone (or 5 s). */
    "/partial": (_req, res) => {
      res.writeHead(200, { "content-length": "100" });
      res.write("0123456789");
      const t = setTimeout(() => res.destroy(), 5_000);
      res.once("close", () => clearTimeout(t));
    },
    /** Counts and hashes the request body: {bytes, sha256}. */
    "/hash": (req, res) => {
      const t = new Tally();
      req.on("data", (c: Buffer) => t.add(c));
      req.on("end", () => res.end(JSON.stringify({ bytes: t.bytes, sha256: t.digest() })));
    },
    /** `?mb=N`: N distinct 1 MiB blocks, with Content-Length, written under backpressure. */
    "/download": (req, res) => {
      const n = Number(new URL(req.url!, "http://x").searchParams.get("mb"));
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": n * MB });
      const hash = createHash("sha256");
      let i = 0;
      const write = (): void => {
        while (i < n) {
          const b = block(i++);
          hash.update(b);
          if (!res.write(b)) return void res.once("drain", write);
        }
        sentDownload = hash.digest("hex");
        res.end();
      };
      write();
    },
    /** An event, `?ms=N` of silence, a second event. */
    "/quiet-sse": (req, res) => {
      const ms = Number(new URL(req.url!, "http://x").searchParams.get("ms"));
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
      const t = setTimeout(() => res.end("data: last\n\n"), ms);
      res.on("close", () => clearTimeout(t));
    },
    /** A long poll: nothing at all (not even the head) for `?ms=N`. */
    "/long-poll": (req, res) => {
      const ms = Number(new URL(req.url!, "http://x").searchParams.get("ms"));
      const t = setTimeout(() => res.end("polled"), ms);
      res.on("close", () => clearTimeout(t));
    },
    "/redirect": (_req, res) => {
      res.writeHead(302, { location: "/elsewhere", "content-length": 0 });
      res.end();
    },
    "/gzip": (_req, res) => {
      res.writeHead(200, {
        "content-type": "text/plain",
        "content-encoding": "gzip",
        "content-length": GZIPPED.length,
      });
      res.end(GZIPPED);
    },
  },
  ws: {
    /** Sends `?mb=N` MiB in 64 KiB messages as fast as its socket takes them, then "end:<sha256>". */
    "/down": (ws, req) => {
      const n = Number(new URL(req.url!, "http://x").searchParams.get("mb")) * 16;
      const hash = createHash("sha256");
      void (async () => {
        for (let i = 0; i < n && ws.readyState === WebSocket.OPEN; i++) {
          const b = block(i, 64 * 1024);
          hash.update(b);
          // Keep at most ~2 MB queued here: the proxy's pace, not this app's memory, decides.
          if (ws.bufferedAmount > 2 * MB) await new Promise((r) => ws.send(b, r));
          else ws.send(b);
        }
        ws.send(`end:${hash.digest("hex")}`);
      })();
    },
    /** A slow reader: pauses 100 ms after every 8 MiB; answers "end:<sha>" with what it got. */
    "/up": (ws) => {
      const t = new Tally();
      upReceived.push(t);
      let mark = 8 * MB;
      ws.on("message", (data: Buffer, isBinary) => {
        if (!isBinary) {
          ws.send(`got:${t.bytes}:${t.digest()}`);
          return;
        }
        t.add(data);
        if (t.bytes >= mark) {
          mark += 8 * MB;
          ws.pause();
          setTimeout(() => ws.resume(), 100);
        }
      });
    },
    /** Records how each socket ended; "close-1011" makes the app close with 1011. */
    "/close-codes": (ws) => {
      ws.on("close", (code, reason) =>
        appCloses.push({ path: "/close-codes", code, reason: String(reason) }),
      );
      ws.on("message", (m) => {
        if (String(m) === "close-1011") ws.close(1011, "boom");
      });
    },
    /** "echo": echoed; "close": the app closes (1000); "kill": the app drops the socket. */
    "/churn": (ws) => {
      ws.on("close", (code, reason) =>
        appCloses.push({ path: "/churn", code, reason: String(reason) }),
      );
      ws.on("message", (m) => {
        const what = String(m);
        if (what === "close") ws.close(1000, "server");
        else if (what === "kill") ws.terminate();
        else ws.send(what);
      });
    },
  },
};

const GZIPPED = gzipSync(Buffer.from("verso ".repeat(5_000)));

beforeAll(async () => {
  dir = makeDir("verso-sidecar-bun-");
  const routesFile = join(dir, "routes.json");
  const routes3 = join(dir, "routes-3.json");
  [app1, app2, app3] = await Promise.all([
    startApp(H1, "v1", routes),
    startApp(H2, "v2", routes),
    startApp(H3, "v1", routes),
  ]);
  const port3 = await freePort(H3);
  writeRoutes(routes3, {
    app: "shop",
    revision: 1,
    endpoints: { v1: [`${H3}:${port3}`] },
    hopKey: HOP_KEY,
  });
  [[p1, p2], p3] = await Promise.all([
    startCanaryPair({
      apps: [app1, app2],
      routes: routesFile,
      dir,
      hopKey: HOP_KEY,
      ...HOSTILE_TIMERS,
    }),
    startProxy({
      host: H3,
      app: app3,
      version: "v1",
      routes: routes3,
      dir,
      port: port3,
      ...HOSTILE_TIMERS,
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([p1?.proc.stop(), p2?.proc.stop(), p3?.proc.stop()]);
  await Promise.all([app1?.close(), app2?.close(), app3?.close()]);
});

const mb = (n: number): string => (n / MB).toFixed(1);

/** POST `blocks` MiB to `url` (chunked unless `withLength`); the app's {bytes, sha256} and ours. */
function upload(
  url: string,
  blocks: number,
  opts: { withLength: boolean; headers?: Record<string, string> },
): Promise<{ status: number; seen: { bytes: number; sha256: string }; sent: string }> {
  const hash = createHash("sha256");
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: "POST",
        agent: false,
        headers: {
          ...opts.headers,
          ...(opts.withLength ? { "content-length": String(blocks * MB) } : {}),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          try {
            resolve({
              status: res.statusCode ?? 0,
              seen: JSON.parse(text),
              sent: hash.digest("hex"),
            });
          } catch {
            reject(new Error(`upload: ${res.statusCode} ${text.slice(0, 200)}`));
          }
        });
      },
    );
    req.setTimeout(60_000, () => req.destroy(new Error("upload timed out")));
    req.on("error", reject);
    generated(blocks, hash).pipe(req);
  });
}

describe("Bun.serve maxRequestBodySize (128 MiB default: 413)", () => {
  it("a 300 MB upload, chunked and with Content-Length, arrives intact; proxy RSS bounded", async () => {
    for (const withLength of [false, true]) {
      const rss = trackPeakRss([p1.proc.pid]);
      const t0 = Date.now();
      const r = await upload(`${p1.url}/hash`, 300, { withLength });
      const [peak] = rss.stop();
      console.info(
        `300 MB upload (${withLength ? "content-length" : "chunked"}): ${Date.now() - t0} ms, proxy peak RSS ${mb(peak!)} MB`,
      );
      expect(r.status).toBe(200);
      expect(r.seen).toEqual({ bytes: 300 * MB, sha256: r.sent });
      expect(peak).toBeLessThanOrEqual(RSS_LIMIT);
    }
  });

  it("4 concurrent 100 MB uploads on the forward path: intact, each proxy's peak <= 96 MB", async () => {
    const rss = trackPeakRss([p1.proc.pid, p2.proc.pid]);
    const t0 = Date.now();
    const results = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        upload(`${p1.url}/hash`, 100, { withLength: i % 2 === 0, headers: { "x-to": "v2" } }),
      ),
    );
    const [peak1, peak2] = rss.stop();
    console.info(
      `4 x 100 MB forward uploads: ${Date.now() - t0} ms, peak RSS landing ${mb(peak1!)} MB, peer ${mb(peak2!)} MB`,
    );
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.seen).toEqual({ bytes: 100 * MB, sha256: r.sent });
    }
    expect(peak1).toBeLessThanOrEqual(RSS_LIMIT);
    expect(peak2).toBeLessThanOrEqual(RSS_LIMIT);
  });
});

describe("response bodies stream under backpressure", () => {
  it("a slowly read 300 MB download on the forward path arrives intact; RSS bounded", async () => {
    const rss = trackPeakRss([p1.proc.pid, p2.proc.pid]);
    const t0 = Date.now();
    const got = await new Promise<{ status: number; tally: Tally; pauses: number }>(
      (resolve, reject) => {
        const tally = new Tally();
        let pauses = 0;
        let mark = 16 * MB;
        const req = http.get(
          `${p1.url}/download?mb=300`,
          { agent: false, headers: { "x-to": "v2" } },
          (res) => {
            res.on("data", (c: Buffer) => {
              tally.add(c);
              // A slow reader: 150 ms of nothing after every 16 MiB (~19 pauses, ~3 s).
              if (tally.bytes >= mark) {
                mark += 16 * MB;
                pauses++;
                res.pause();
                setTimeout(() => res.resume(), 150);
              }
            });
            res.on("end", () => resolve({ status: res.statusCode ?? 0, tally, pauses }));
            res.on("error", reject);
          },
        );
        req.setTimeout(60_000, () => req.destroy(new Error("download timed out")));
        req.on("error", reject);
      },
    );
    const [peak1, peak2] = rss.stop();
    console.info(
      `slow 300 MB download (forward path, ${got.pauses} pauses): ${Date.now() - t0} ms, peak RSS landing ${mb(peak1!)} MB, peer ${mb(peak2!)} MB`,
    );
    expect(got.status).toBe(200);
    expect(got.tally.bytes).toBe(300 * MB);
    expect(got.tally.digest()).toBe(sentDownload);
    expect(peak1).toBeLessThanOrEqual(RSS_LIMIT);
    expect(peak2).toBeLessThanOrEqual(RSS_LIMIT);
  });
});

describe("idle timers: Bun.serve idleTimeout (10 s default) and fetch's own (300 s)", () => {
  /**
   * Why this proves the requirement that a response may stay quiet for 10 minutes and more:
   * both Bun timers are set here to fire within 2 s (client side) and 8 s (fetch, see
   * BUN_FETCH_IDLE), yet responses silent for 10 s pass through two proxies. The proxy does
   * not merely raise the limits: it turns the client timer off for each request in progress
   * (`server.timeout(req, 0)`) and gives fetch `timeout: false`, so no timer runs while a
   * response is open and the length of the silence does not matter (10 s or 10 min alike);
   * waiting 10 minutes in CI would prove nothing more. The idle limit for a keep-alive
   * connection between requests is still enforced (second half), so turning the timer off
   * per request leaks no idle connections.
   */
  it("10 s of silence (SSE, long poll, websocket) on the forward path passes; idle keep-alive closes in ~2 s", async () => {
    const QUIET_MS = 10_000;
    const keepAlive = `Host: shop\r\nx-to: v2`;
    // Neither end of this websocket pings: it is as quiet as the responses.
    const quietWs = await openWs(`ws://${H1}:${p1.port}/ws`, { "x-to": "v2" });
    const t0 = Date.now();
    const [sse, poll, idle] = await Promise.all([
      rawRequest(H1, p1.port, `GET /quiet-sse?ms=${QUIET_MS} HTTP/1.1\r\n${keepAlive}`),
      rawRequest(H1, p1.port, `GET /long-poll?ms=${QUIET_MS} HTTP/1.1\r\n${keepAlive}`),
      rawRequest(H1, p1.port, `GET /echo HTTP/1.1\r\nHost: shop`),
    ]);
    expect(idle.status).toBe(200);
    const idleClosedAfter = (await idle.closed) - idle.at;
    const quietDone = Math.min(sse.at, poll.at);
    console.info(
      `quiet responses done after ${quietDone - t0} ms; idle keep-alive closed ${idleClosedAfter} ms after its response`,
    );
    expect(sse.status).toBe(200);
    expect(sse.body.toString()).toBe("data: first\n\ndata: last\n\n");
    expect(poll.status).toBe(200);
    expect(poll.body.toString()).toBe("polled");
    expect(quietDone - t0).toBeGreaterThanOrEqual(QUIET_MS);
    // Bun.serve's timer has a 4 s granularity: a 2 s limit closes after 2 to 6 s.
    expect(idleClosedAfter).toBeGreaterThanOrEqual(1_500);
    expect(idleClosedAfter).toBeLessThanOrEqual(6_000);
    // After the quiet response the connection got its idle limit back.
    const sseClosedAfter =
      (await Promise.race([sse.closed, sleep(8_000).then(() => NaN)])) - sse.at;
    console.info(`keep-alive after the quiet SSE closed ${sseClosedAfter} ms after it`);
    expect(sseClosedAfter).toBeLessThanOrEqual(6_000);
    const echo = nextText(quietWs, 5_000);
    quietWs.send("still there");
    expect(await echo).toBe("v2:still there");
    quietWs.close();
  });
});

describe("fetch defaults: no redirect following, no decompression, no invented headers", () => {
  for (const path of ["local", "forward"] as const) {
    const to = path === "forward" ? "\r\nx-to: v2" : "";
    const app = (): App => (path === "forward" ? app2 : app1);

    it(`${path}: a 302 reaches the client as it is; the app saw one request`, async () => {
      const before = app().requests;
      const r = await rawRequest(
        H1,
        p1.port,
        `GET /redirect HTTP/1.1\r\nHost: shop${to}\r\nConnection: close`,
      );
      expect(r.status).toBe(302);
      expect(r.headers.location).toBe("/elsewhere");
      expect(app().requests - before).toBe(1);
    });

    it(`${path}: a gzip body reaches the client byte for byte, Content-Encoding kept`, async () => {
      const r = await rawRequest(
        H1,
        p1.port,
        `GET /gzip HTTP/1.1\r\nHost: shop${to}\r\nAccept-Encoding: gzip\r\nConnection: close`,
      );
      expect(r.status).toBe(200);
      expect(r.headers["content-encoding"]).toBe("gzip");
      expect(r.body.equals(GZIPPED)).toBe(true);
    });

    it(`${path}: no User-Agent is invented, no Accept-Encoding added`, async () => {
      const r = await rawRequest(
        H1,
        p1.port,
        `GET /echo HTTP/1.1\r\nHost: shop${to}\r\nConnection: close`,
      );
      expect(r.status).toBe(200);
      const seen = JSON.parse(r.body.toString()).headers as Record<string, string>;
      // Bun's fetch cannot omit User-Agent (it would send "Bun/1.4.4"): the proxy sends it empty.
      expect(seen["user-agent"]).toBe("");
      expect(JSON.stringify(seen)).not.toMatch(/bun/i);
      // Bun's fetch adds `Accept: */*` when there is none and it cannot be removed; RFC 9110
      // 12.5.1 gives "*/*" the meaning of no Accept at all, so it is left as it is.
      expect(seen.accept).toBe("*/*");
      expect(seen["accept-encoding"]).toBeUndefined();
      expect(seen.host).toBe("shop");
    });
  }
});

describe("Expect: 100-continue", () => {
  /**
   * Bun.serve answers `100 Continue` itself when the request arrives: it does not wait for the
   * handler, let alone for the app's verdict (no setting changes that). So the client uploads
   * its body even when the app refuses it, as here: the cost is one body's upload, the app's
   * 417 still reaches the client, and the proxy has nothing to fix.
   */
  for (const path of ["local", "forward"] as const) {
    it(`${path}: the app's 417 reaches the client, after Bun's own 100`, async () => {
      const app = path === "forward" ? app2 : app1;
      const before = app.requests;
      const body = Buffer.alloc(64 * 1024, 1);
      const r = await rawRequest(
        H1,
        p1.port,
        `PUT /continue HTTP/1.1\r\nHost: shop${path === "forward" ? "\r\nx-to: v2" : ""}\r\n` +
          `Expect: 100-continue\r\nContent-Length: ${body.length}\r\nx-reject: 1\r\nConnection: close`,
        body,
      );
      console.info(
        `${path} expect 100-continue refused: interim ${JSON.stringify(r.interim)}, final ${r.status}`,
      );
      expect(r.status).toBe(417);
      expect(r.interim).toEqual([100]);
      expect(app.requests - before).toBe(1);
    });
  }
});

describe("other Upgrade protocols", () => {
  for (const [name, head] of [
    [
      "h2c",
      "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
    ],
    ["foo", "Connection: Upgrade\r\nUpgrade: foo"],
  ] as const) {
    it(`Upgrade: ${name} gets a 501 upgrade-unsupported; no app sees it`, async () => {
      const before = app1.requests + app2.requests;
      for (const to of ["", "\r\nx-to: v2"]) {
        const r = await rawRequest(H1, p1.port, `GET /echo HTTP/1.1\r\nHost: shop${to}\r\n${head}`);
        expect(r.status).toBe(501);
        expect(r.headers["x-verso-error"]).toBe("upgrade-unsupported");
        r.socket.destroy();
      }
      expect(app1.requests + app2.requests - before).toBe(0);
    });
  }
});

describe("a client that leaves is nobody's error", () => {
  it("a client gone while a small body is read counts no 5xx and no upstream error", async () => {
    const m0 = await p1.metrics();
    const ac = new AbortController();
    const pending = fetch(`${p1.url}/partial`, { signal: ac.signal }).then((r) => r.text());
    setTimeout(() => ac.abort(), 300);
    await expect(pending).rejects.toThrow();
    await sleep(300);
    const m1 = await p1.metrics();
    const delta = (name: string, labels: Record<string, string> = {}) =>
      sample(m1, name, labels) - sample(m0, name, labels);
    expect(delta("verso_requests_total", { code_class: "5xx" })).toBe(0);
    expect(delta("verso_upstream_errors_total")).toBe(0);
  });
});

// ---- websockets ----

function openWs(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`websocket open timed out: ${url}`));
    }, 5_000);
    ws.once("open", () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function closeOf(ws: WebSocket, timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("websocket close timed out")), timeoutMs);
    ws.once("close", (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: String(reason) });
    });
  });
}

function nextText(ws: WebSocket, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no websocket message")), timeoutMs);
    const on = (data: Buffer, isBinary: boolean): void => {
      if (isBinary) return;
      clearTimeout(timer);
      ws.off("message", on);
      resolve(String(data));
    };
    ws.on("message", on);
  });
}

describe("websocket relay: backpressure both ways", () => {
  it("200 MB app -> slow client on the forward path: every byte, in order; RSS bounded", async () => {
    const rss = trackPeakRss([p1.proc.pid, p2.proc.pid]);
    const t0 = Date.now();
    const ws = await openWs(`ws://${H1}:${p1.port}/down?mb=200`, { "x-to": "v2" });
    const tally = new Tally();
    let pauses = 0;
    let mark = 8 * MB;
    const end = await new Promise<string>((resolve, reject) => {
      // A relay that lost data stalls: no byte for 5 s (pauses are 100 ms) fails at once.
      let timer = setTimeout(() => reject(new Error("no byte at all")), 5_000);
      ws.on("message", (data: Buffer, isBinary) => {
        clearTimeout(timer);
        if (!isBinary) return resolve(String(data));
        timer = setTimeout(() => reject(new Error(`stalled at ${tally.bytes} bytes`)), 5_000);
        tally.add(data);
        // A slow reader: 100 ms of nothing after every 8 MiB (~25 pauses).
        if (tally.bytes >= mark) {
          mark += 8 * MB;
          pauses++;
          ws.pause();
          setTimeout(() => ws.resume(), 100);
        }
      });
      ws.once("close", (code) => reject(new Error(`closed (${code}) at ${tally.bytes} bytes`)));
    });
    const [peak1, peak2] = rss.stop();
    console.info(
      `websocket 200 MB to a slow client (forward path, ${pauses} pauses): ${Date.now() - t0} ms, peak RSS landing ${mb(peak1!)} MB, peer ${mb(peak2!)} MB`,
    );
    ws.close();
    expect(tally.bytes).toBe(200 * MB);
    expect(end).toBe(`end:${tally.digest()}`);
    expect(peak1).toBeLessThanOrEqual(RSS_LIMIT);
    expect(peak2).toBeLessThanOrEqual(RSS_LIMIT);
  });

  it("200 MB client -> slow app on the forward path: every byte, in order; RSS bounded", async () => {
    const rss = trackPeakRss([p1.proc.pid, p2.proc.pid]);
    const t0 = Date.now();
    const ws = await openWs(`ws://${H1}:${p1.port}/up`, { "x-to": "v2" });
    const sent = createHash("sha256");
    const n = 200 * 16;
    for (let i = 0; i < n; i++) {
      const b = block(i, 64 * 1024);
      sent.update(b);
      // The client's own backpressure: at most ~2 MB queued in this process.
      if (ws.bufferedAmount > 2 * MB) await new Promise((r) => ws.send(b, r));
      else ws.send(b);
    }
    const reply = nextText(ws, 50_000);
    ws.send("end");
    const got = await reply;
    const [peak1, peak2] = rss.stop();
    console.info(
      `websocket 200 MB to a slow app (forward path): ${Date.now() - t0} ms, peak RSS landing ${mb(peak1!)} MB, peer ${mb(peak2!)} MB`,
    );
    ws.close();
    expect(got).toBe(`got:${200 * MB}:${sent.digest("hex")}`);
    expect(peak1).toBeLessThanOrEqual(RSS_LIMIT);
    expect(peak2).toBeLessThanOrEqual(RSS_LIMIT);
  });
});

describe("websocket close codes", () => {
  for (const path of ["local", "forward"] as const) {
    const headers: Record<string, string> = path === "forward" ? { "x-to": "v2" } : {};
    const url = (): string => `ws://${H1}:${p1.port}/close-codes`;

    it(`${path}: client 4001 "bye" reaches the app; the app's 1011 reaches the client`, async () => {
      appCloses.length = 0;
      const a = await openWs(url(), headers);
      const aClosed = closeOf(a);
      a.close(4001, "bye");
      expect(await aClosed).toEqual({ code: 4001, reason: "bye" });
      await waitFor(
        "the app's close",
        async () => (appCloses.length === 1 ? true : undefined),
        5_000,
        10,
      );
      expect(appCloses[0]).toEqual({ path: "/close-codes", code: 4001, reason: "bye" });

      const b = await openWs(url(), headers);
      const bClosed = closeOf(b);
      b.send("close-1011");
      expect(await bClosed).toEqual({ code: 1011, reason: "boom" });
    });
  }
});

describe("websocket churn: no upstream socket left behind", () => {
  /**
   * Five ways a relayed socket ends, each a fifth of 1,000 connections, and what each side
   * must see. An abnormal end (1006, no close frame) may not be sent on: the proxy maps it to
   * 1001 "going away" (forwarding 1006 throws in Bun and leaked the other side).
   */
  const KINDS = [
    { how: "client closes 1000", client: 1000, app: 1000 },
    { how: "client closes 4000", client: 4000, app: 4000 },
    { how: "app closes 1000", client: 1000, app: 1000 },
    { how: "client socket destroyed", client: 1006, app: 1001 },
    { how: "app socket destroyed", client: 1001, app: 1006 },
  ] as const;

  async function one(kind: number): Promise<number> {
    const ws = await openWs(`ws://${H3}:${p3.port}/churn`);
    const closed = closeOf(ws, 5_000);
    const echoed = async (): Promise<void> => {
      const reply = nextText(ws, 5_000);
      ws.send("hello");
      expect(await reply).toBe("hello");
    };
    switch (kind) {
      case 0:
        await echoed();
        ws.close(1000);
        break;
      case 1:
        await echoed();
        ws.close(4000, "client");
        break;
      case 2:
        ws.send("close");
        break;
      case 3:
        await echoed();
        ws.terminate();
        break;
      default:
        ws.send("kill");
    }
    return (await closed).code;
  }

  it("1,000 connections opened and closed every way: 0 app clients, 0 upstream sockets", async () => {
    appCloses.length = 0;
    const N = 1_000;
    const BATCH = 50;
    const t0 = Date.now();
    const clientCodes: number[] = [];
    for (let i = 0; i < N && Date.now() - t0 < 45_000; i += BATCH) {
      const batch = await Promise.all(
        Array.from({ length: BATCH }, (_, j) => one((i + j) % KINDS.length)),
      );
      clientCodes.push(...batch);
    }
    const opened = Date.now() - t0;
    expect(clientCodes.length).toBe(N);
    // Bounded wait; a close that never reached the app shows in the code counts below.
    await waitFor(
      "every close at the app",
      async () => (appCloses.length >= N ? 1 : undefined),
      10_000,
      20,
    ).catch(() => undefined);
    const left = await waitFor(
      "no websocket left at the app, no upstream socket at the proxy",
      async () => {
        const tcp = establishedWith(H3, app3.port);
        return app3.wss.clients.size === 0 && tcp.toIt === 0 && tcp.atIt === 0 ? tcp : undefined;
      },
      5_000,
      50,
    ).catch(() => ({ ...establishedWith(H3, app3.port), clients: app3.wss.clients.size }));
    console.info(
      `1,000 websockets through the proxy in ${opened} ms; afterwards ${JSON.stringify(left)} established to the app`,
    );
    expect(app3.wss.clients.size).toBe(0);
    expect(left).toEqual({ toIt: 0, atIt: 0 });
    for (let k = 0; k < KINDS.length; k++) {
      const want = KINDS[k]!;
      const client = clientCodes.filter((_, i) => i % KINDS.length === k);
      expect({ how: want.how, codes: [...new Set(client)] }).toEqual({
        how: want.how,
        codes: [want.client],
      });
    }
    const appCodes = new Map<number, number>();
    for (const c of appCloses) appCodes.set(c.code, (appCodes.get(c.code) ?? 0) + 1);
    const per = N / KINDS.length;
    expect(Object.fromEntries(appCodes)).toEqual({
      1000: 2 * per,
      4000: per,
      1001: per,
      1006: per,
    });
  });
});
