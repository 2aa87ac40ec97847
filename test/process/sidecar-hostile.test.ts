/**
 * Hostile HTTP/1.1 input at the proxy's listener: whatever the client sends, the app behind
 * `bun sidecar/main.ts` never sees a malformed or smuggled request. Each case sends raw bytes
 * on a TCP socket and checks both ends: what the client got, and every request the app saw
 * (method, path, body, counted as it arrives).
 *
 *   v1: app + proxy on 127.0.10.2, v2: app + proxy on 127.0.10.3 (the forward path, chosen by
 *   `x-to: v2`, for the hop-by-hop cases).
 *
 * What Bun.serve 1.4.4 does itself, before the proxy's handler runs (so nothing to count, no
 * metric, and nothing the proxy can change): 431 for a head over ~16 KB or too many header
 * lines; 400 for CL with TE, differing Content-Lengths, any Transfer-Encoding but `chunked`
 * (case-insensitive), a repeated Transfer-Encoding line, obs-fold, CR/NUL/CTL in a value, a
 * bad header name, a missing Host on HTTP/1.1, trailers after the last chunk; 505 (not 400)
 * for a broken request line (a space or NUL in the target, a bare LF, HTTP/9.9, a CTL in the
 * method); and it closes the connection after each of these. What it lets through and the
 * proxy refuses (sidecar/proxy/headers.ts `malformed`): repeated identical Content-Lengths,
 * several Host lines, an invalid Host.
 */
import type http from "node:http";
import net from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../harness/ports.ts";
import {
  get,
  makeDir,
  rawRequest,
  startApp,
  startCanaryPair,
  type App,
  type Proxy,
} from "./sidecar-fixture.ts";

const H1 = "127.0.10.2";
const H2 = "127.0.10.3";
const HOP_KEY = Buffer.from("sidecar-hostile-test-hop-key-012").toString("base64");
/** Short, so the slowloris case can show when Bun closes a slow connection (default 65 s). */
const CLIENT_IDLE_SECONDS = 2;

let app1: App;
let app2: App;
let p1: Proxy;
let p2: Proxy;

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The whole body arrived (false: the request was cut off mid-body). */
  complete: boolean;
}
/** Every request each app saw, in order, recorded as its head arrives. */
const seen = new Map<App, Seen[]>();

function record(app: App): void {
  const list: Seen[] = [];
  seen.set(app, list);
  app.server.on("request", (req: http.IncomingMessage) => {
    const s: Seen = {
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      body: "",
      complete: false,
    };
    list.push(s);
    req.on("data", (c: Buffer) => (s.body += c.toString("latin1")));
    req.on("end", () => (s.complete = true));
  });
}

/** What `app` sees from now on: `since()` lists it (give a cut-off request time to arrive). */
function watch(app: App): { since(): Promise<Seen[]>; count(): number } {
  const list = seen.get(app)!;
  const from = list.length;
  const requests = app.requests;
  return {
    async since() {
      await sleep(150);
      return list.slice(from);
    },
    count: () => app.requests - requests,
  };
}

beforeAll(async () => {
  const dir = makeDir("verso-sidecar-hostile-");
  const routes = join(dir, "routes.json");
  [app1, app2] = await Promise.all([startApp(H1, "v1"), startApp(H2, "v2")]);
  record(app1);
  record(app2);
  [p1, p2] = await startCanaryPair({
    apps: [app1, app2],
    routes,
    dir,
    hopKey: HOP_KEY,
    extraArgs: ["--client-idle-seconds", String(CLIENT_IDLE_SECONDS)],
  });
});

afterAll(async () => {
  await Promise.all([p1?.proc.stop(), p2?.proc.stop()]);
  await Promise.all([app1?.close(), app2?.close()]);
});

/** Proxy v1's 5xx served plus its upstream errors: what a client's bad request must not move. */
async function appErrors(): Promise<number> {
  let n = 0;
  for (const line of (await p1.metrics()).split("\n")) {
    if (
      /^verso_upstream_errors_total\{/.test(line) ||
      /^verso_requests_total\{.*code="5xx"/.test(line)
    )
      n += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return n;
}

interface Wire {
  /** Everything the proxy sent, latin1. */
  readonly text: string;
  /** Status codes of the responses in `text`, in order. */
  readonly statuses: number[];
  /** True when the proxy closed the connection within the wait. */
  readonly closed: boolean;
}

/**
 * `bytes` in one write on a new connection (so pipelined requests land in one read), then
 * all that comes back until the proxy closes the connection or `waitMs` passes.
 */
function wire(bytes: string, waitMs = 3_000): Promise<Wire> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: H1, port: p1.port });
    const chunks: Buffer[] = [];
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString("latin1");
      const statuses = [...text.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((m) => Number(m[1]));
      resolve({ text, statuses, closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.once("close", () => finish(true));
    socket.once("error", (error: NodeJS.ErrnoException) => {
      // A reset after the answer is a close too; before any byte it is a failure to connect.
      if (error.code === "ECONNRESET") finish(true);
      else reject(error);
    });
    socket.once("connect", () => socket.write(Buffer.from(bytes, "latin1")));
  });
}

const SECOND = "GET /second HTTP/1.1\r\nHost: shop\r\n\r\n";
const POST = "POST /echo HTTP/1.1\r\nHost: shop\r\n";
const GET = "GET /echo HTTP/1.1\r\nHost: shop\r\n";

describe("oversized request headers", () => {
  for (const [name, head] of [
    ["one 100 KB header", `${GET}X-Big: ${"a".repeat(100 * 1024)}\r\n`],
    [
      "200 headers of 1 KB",
      GET + Array.from({ length: 200 }, (_, i) => `X-H${i}: ${"b".repeat(1024)}\r\n`).join(""),
    ],
    [
      "200 headers of 1 byte",
      GET + Array.from({ length: 200 }, (_, i) => `X-H${i}: b\r\n`).join(""),
    ],
  ] as const) {
    it(`${name}: 431 from Bun, connection closed, the app sees nothing`, async () => {
      const app = watch(app1);
      const r = await wire(`${head}\r\n${SECOND}`);
      expect(r.statuses).toEqual([431]);
      expect(r.closed).toBe(true);
      expect(await app.since()).toEqual([]);
      expect(app.count()).toBe(0);
    });
  }

  it("a 12 KB header (a large cookie) still passes, once", async () => {
    const app = watch(app1);
    const cookie = "c".repeat(12 * 1024);
    const r = await rawRequest(H1, p1.port, `${GET}Cookie: ${cookie}\r\nConnection: close`);
    expect(r.status).toBe(200);
    const got = await app.since();
    expect(got.map((s) => [s.url, s.headers.cookie?.length])).toEqual([["/echo", cookie.length]]);
  });
});

describe("malformed request lines and header lines", () => {
  /** Bun.serve 1.4.4 answers 505 to a request line it cannot parse, 400 to a bad header. */
  for (const [name, bytes, status] of [
    ["space in the target", "GET /a b HTTP/1.1\r\nHost: shop\r\n\r\n", 505],
    ["HTTP/9.9", "GET /echo HTTP/9.9\r\nHost: shop\r\n\r\n", 505],
    ["bare LF line endings", "GET /echo HTTP/1.1\nHost: shop\n\n", 505],
    ["NUL in the path", "GET /a\0b HTTP/1.1\r\nHost: shop\r\n\r\n", 505],
    ["CTL in the method", "G\x01T /echo HTTP/1.1\r\nHost: shop\r\n\r\n", 505],
    ["asterisk-form GET", "GET * HTTP/1.1\r\nHost: shop\r\n\r\n", 400],
    ["target without a leading slash", "GET echo HTTP/1.1\r\nHost: shop\r\n\r\n", 400],
    ["obs-fold", `${GET}X-A: a\r\n b\r\n\r\n`, 400],
    ["NUL in a value", `${GET}X-A: a\0b\r\n\r\n`, 400],
    ["bare CR in a value", `${GET}X-A: a\rb\r\n\r\n`, 400],
    ["space before the colon", `${GET}X-A : 1\r\n\r\n`, 400],
    ["a line without a colon", `${GET}NoColon\r\n\r\n`, 400],
    ["no Host on HTTP/1.1", "GET /echo HTTP/1.1\r\n\r\n", 400],
  ] as const) {
    it(`${name}: ${status}, connection closed, the app sees nothing`, async () => {
      const app = watch(app1);
      const r = await wire(bytes + SECOND);
      expect(r.statuses).toEqual([status]);
      expect(r.closed).toBe(true);
      expect(await app.since()).toEqual([]);
      expect(app.count()).toBe(0);
    });
  }

  /** RFC 9112 3.2: 400 to several Host lines or an invalid Host. Bun.serve forwards both. */
  for (const [name, host] of [
    ["two Host lines", "Host: shop\r\nHost: other"],
    ["Host with a slash", "Host: shop/admin"],
    ["Host with a space", "Host: a b"],
    ["Host with userinfo", "Host: user@evil"],
  ] as const) {
    it(`${name}: 400 bad-host from the proxy, the app sees nothing`, async () => {
      const app = watch(app1);
      const r = await wire(`GET /echo HTTP/1.1\r\n${host}\r\n\r\n${SECOND}`);
      expect(r.statuses).toEqual([400]);
      expect(r.text).toMatch(/^x-verso-error: bad-host$/im);
      expect(r.closed).toBe(true);
      expect(await app.since()).toEqual([]);
    });
  }

  /**
   * With no usable Host (none on HTTP/1.0, an empty one) Bun's `req.url` is the bare target:
   * the proxy used to drop its first segment (`/x/echo` reached the app as `/echo`).
   */
  for (const [name, bytes] of [
    ["HTTP/1.0 without Host", "GET /x/echo?q=1 HTTP/1.0\r\n\r\n"],
    ["empty Host", "GET /x/echo?q=1 HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n"],
  ] as const) {
    it(`${name}: the app gets the path the client sent`, async () => {
      const app = watch(app1);
      const r = await wire(bytes);
      expect(r.statuses).toEqual([200]);
      expect((await app.since()).map((s) => s.url)).toEqual(["/x/echo?q=1"]);
    });
  }

  /**
   * DEL (0x7f) in a value: RFC 9110 5.5 lets a recipient keep a CTL other than CR, LF and NUL,
   * and Bun.serve does, so it reaches the app, whose parser may refuse it, as node's does here
   * (not a request to the app: its 400 reaches the client, not a hang or a 502).
   */
  it("DEL in a value: passed on, node's own 400 reaches the client", async () => {
    const app = watch(app1);
    const r = await rawRequest(H1, p1.port, `${GET}X-A: a\x7fb\r\nConnection: close`);
    expect(r.status).toBe(400);
    expect(r.headers["x-verso-version"]).toBe("v1");
    expect(await app.since()).toEqual([]);
  });
});

describe("request smuggling: Content-Length and Transfer-Encoding", () => {
  const SMUGGLED = "GET /smuggled HTTP/1.1\r\nHost: shop\r\n\r\n";
  const smuggled = SMUGGLED.length.toString(16);
  for (const [name, bytes, code] of [
    [
      "CL.TE (CL covers a second request, TE ends the body before it)",
      `${POST}Content-Length: ${5 + SMUGGLED.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
      undefined,
    ],
    [
      "TE.CL (TE covers a second request, CL ends the body before it)",
      `${POST}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${smuggled}\r\n${SMUGGLED}\r\n0\r\n\r\n`,
      undefined,
    ],
    [
      "two Content-Lengths, different",
      `${POST}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`,
      undefined,
    ],
    [
      "two Content-Lengths, the same (Bun accepts and joins them: the proxy refuses)",
      `${POST}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`,
      "bad-content-length",
    ],
    ["Content-Length: 5, 5 on one line", `${POST}Content-Length: 5, 5\r\n\r\nhello`, undefined],
    ["Content-Length: +5", `${POST}Content-Length: +5\r\n\r\nhello`, undefined],
    [
      "Transfer-Encoding: chunked, identity",
      `${POST}Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
      undefined,
    ],
    [
      "Transfer-Encoding : chunked",
      `${POST}Transfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
      undefined,
    ],
    [
      "Transfer-Encoding: xchunked",
      `${POST}Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
      undefined,
    ],
    [
      "two Transfer-Encoding lines",
      `${POST}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
      undefined,
    ],
  ] as const) {
    it(`${name}: 400, connection closed, no request at the app`, async () => {
      const app = watch(app1);
      const errors = await appErrors();
      const r = await wire(bytes + SECOND);
      console.info(`${name}: ${JSON.stringify(r.statuses)}, closed ${r.closed}`);
      expect(r.statuses).toEqual([400]);
      if (code !== undefined) expect(r.text).toMatch(new RegExp(`^x-verso-error: ${code}$`, "im"));
      expect(r.closed).toBe(true);
      expect(await app.since()).toEqual([]);
      expect(app.count()).toBe(0);
      // Not the app's error: no 5xx served, no upstream error (a canary's gates read these).
      expect(await appErrors()).toBe(errors);
    });
  }

  /**
   * A framing error inside a chunked body is found as the body streams, after the head has
   * gone to the app (as with any proxy that does not buffer uploads): the client gets Bun's
   * 400, the app a request cut off mid-body (never complete, so never acted on by a careful
   * app), and nothing after it.
   */
  for (const [name, body] of [
    ["a chunk size that overflows", "FFFFFFFFFFFFFFFFF5\r\nhello\r\n0\r\n\r\n"],
    ["a chunk line ending in a bare LF", "5\nhello\n0\n\n"],
    ["a chunk shorter than its size", "9\r\nhello\r\n0\r\n\r\n"],
  ] as const) {
    it(`${name}: 400, the app sees at most a cut-off head, never a second request`, async () => {
      const app = watch(app1);
      const errors = await appErrors();
      const r = await wire(`${POST}Transfer-Encoding: chunked\r\n\r\n${body}${SECOND}`);
      const got = await app.since();
      console.info(
        `${name}: client got ${JSON.stringify(r.statuses)}, the app saw ${JSON.stringify(got.map((s) => [s.url, s.body, s.complete]))}`,
      );
      expect(r.statuses).toEqual([400]);
      expect(r.closed).toBe(true);
      expect(got.filter((s) => s.complete || s.url !== "/echo")).toEqual([]);
      expect(app.count()).toBeLessThanOrEqual(1);
      expect(await appErrors()).toBe(errors);
    });
  }

  /** Valid spellings (RFC 9112 7: coding names are case-insensitive; OWS may be a tab). */
  for (const [name, te] of [
    ["Transfer-Encoding: CHUNKED", "Transfer-Encoding: CHUNKED"],
    ["Transfer-Encoding:<tab>chunked", "Transfer-Encoding:\tchunked"],
  ] as const) {
    it(`${name} is framed as chunked: one request with its body, the connection kept`, async () => {
      const app = watch(app1);
      const r = await rawRequest(
        H1,
        p1.port,
        `${POST}${te}`,
        Buffer.from(`5\r\nhello\r\n0\r\n\r\n`),
      );
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body.toString()).bytes).toBe(5);
      expect((await app.since()).map((s) => [s.method, s.url, s.body, s.complete])).toEqual([
        ["POST", "/echo", "hello", true],
      ]);
      // Kept alive and framed right: the next request on it is a request of its own.
      const next = await nextOnSocket(r.socket, SECOND);
      expect(next).toMatch(/^HTTP\/1\.1 200 /);
      expect((await app.since()).map((s) => s.url)).toEqual(["/echo", "/second"]);
      r.socket.destroy();
    });
  }

  /**
   * Bun.serve 1.4.4 never runs a request pipelined behind a response still in progress: it
   * closes the connection with nothing written (uWS "denying async pipelining";
   * oven-sh/bun#38128 and others, open). So a second request in the same write never
   * reaches the app, smuggled or not; the first may have been sent on, and is cut off.
   */
  for (const [name, first] of [
    ["chunked POST", `${POST}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`],
    ["Content-Length POST", `${POST}Content-Length: 5\r\n\r\nhello`],
    ["GET", GET + "\r\n"],
  ] as const) {
    it(`a request pipelined behind a ${name}: connection closed, never at the app`, async () => {
      const app = watch(app1);
      const r = await wire(first + SECOND);
      const got = await app.since();
      console.info(
        `pipelined behind a ${name}: client got ${JSON.stringify(r.statuses)}, the app saw ${JSON.stringify(got.map((s) => [s.url, s.complete]))}`,
      );
      expect(r.closed).toBe(true);
      expect(r.statuses.length).toBeLessThanOrEqual(1);
      expect(got.map((s) => s.url).filter((u) => u !== "/echo")).toEqual([]);
      expect(app.count()).toBeLessThanOrEqual(1);
    });
  }
});

/** The next response on a kept-alive raw socket to `request`, as text. */
function nextOnSocket(socket: net.Socket, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`no answer to ${request}`)), 5_000);
    socket.on("data", (c: Buffer) => {
      text += c.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      const length = /^content-length: (\d+)$/im.exec(text);
      if (end !== -1 && length && text.length >= end + 4 + Number(length[1])) {
        clearTimeout(timer);
        resolve(text);
      }
    });
    socket.write(request);
  });
}

describe("slowloris", () => {
  /**
   * Bun.serve has no deadline for a request head: its idle timer restarts on every byte, so
   * a client that sends one byte per 100 ms keeps its connection as long as it likes (the
   * cost: one socket, no request at the app). It closes `--client-idle-seconds` (+ Bun's 4 s
   * timer granularity) after the bytes stop. One event loop, no thread per connection: other
   * clients are served meanwhile.
   */
  it("one byte per 100 ms for 5 s does not delay other clients; closed once the bytes stop", async () => {
    const app = watch(app1);
    const head = `${GET}X-Slow: ${"s".repeat(200)}\r\n\r\n`;
    const socket = net.connect({ host: H1, port: p1.port });
    socket.on("error", () => undefined);
    let closedAt: number | undefined;
    socket.once("close", () => (closedAt = Date.now()));
    await new Promise<void>((r) => socket.once("connect", () => r()));
    const t0 = Date.now();
    let sent = 0;
    const trickle = setInterval(() => {
      if (closedAt === undefined) socket.write(head.slice(sent, ++sent));
    }, 100);
    const latencies: number[] = [];
    while (Date.now() - t0 < 5_000) {
      await sleep(500);
      const a = Date.now();
      const r = await get(`${p1.url}/echo`);
      expect(r.status).toBe(200);
      latencies.push(Date.now() - a);
    }
    clearInterval(trickle);
    const stoppedAt = Date.now();
    const openWhileTrickling = closedAt === undefined;
    while (closedAt === undefined && Date.now() - stoppedAt < 10_000) await sleep(50);
    socket.destroy();
    console.info(
      `slowloris: ${sent} bytes in ${stoppedAt - t0} ms, open while trickling: ${openWhileTrickling}, ` +
        `closed ${closedAt === undefined ? "never (10 s)" : `${closedAt - stoppedAt} ms after the last byte`}; ` +
        `other clients meanwhile: ${JSON.stringify(latencies)} ms`,
    );
    expect(sent).toBeLessThan(head.length);
    expect(Math.max(...latencies)).toBeLessThan(1_000);
    expect(openWhileTrickling).toBe(true);
    expect(closedAt).toBeDefined();
    // Bun's timer has a 4 s granularity, and the slow head's last byte restarted it: measured
    // 7.1 s for a 2 s limit.
    expect(closedAt! - stoppedAt).toBeLessThanOrEqual(9_000);
    // Only the normal requests reached the app, never the slow one.
    const got = await app.since();
    expect(got.length).toBe(latencies.length);
    expect(got.every((s) => s.headers["x-slow"] === undefined)).toBe(true);
  });
});

describe("hop-by-hop abuse", () => {
  it("Connection: x-forwarded-for cannot strip the X-Forwarded-For the proxy sets", async () => {
    const app = watch(app1);
    const r = await rawRequest(
      H1,
      p1.port,
      `${GET}X-Forwarded-For: 203.0.113.9\r\nConnection: x-forwarded-for, x-forwarded-proto, x-forwarded-host`,
    );
    // The client's address as the proxy sees it (the socket stays open so it can be read).
    const client = r.socket.localAddress;
    r.socket.destroy();
    expect(r.status).toBe(200);
    const [s] = await app.since();
    // The client's own claim is dropped (it asked for that); the proxy's entry is set after.
    expect(s!.headers["x-forwarded-for"]).toBe(client);
    expect(s!.headers["x-forwarded-proto"]).toBe("http");
    expect(s!.headers["x-forwarded-host"]).toBe("shop");
    expect(app.count()).toBe(1);
  });

  it("Connection: x-verso-hop, authorization on the forward path: the hop still works, neither reaches the app", async () => {
    const a1 = watch(app1);
    const a2 = watch(app2);
    const r = await rawRequest(
      H1,
      p1.port,
      `${GET}x-to: v2\r\nAuthorization: Bearer secret\r\nConnection: x-verso-hop, authorization`,
    );
    const client = r.socket.localAddress;
    r.socket.destroy();
    expect(r.status).toBe(200);
    expect(r.headers["x-verso-version"]).toBe("v2");
    const got = await a2.since();
    expect(got.length).toBe(1);
    const h = got[0]!.headers;
    // One entry: proxy v2 took the hop as valid (else it would append proxy v1's address).
    expect(h["x-forwarded-for"]).toBe(client);
    expect(h["x-verso-hop"]).toBeUndefined();
    expect(h.authorization).toBeUndefined();
    expect(h.connection).not.toMatch(/authorization|x-verso-hop/i);
    expect(await a1.since()).toEqual([]);
  });

  it("forged x-verso-hop in odd casing and repeated: none reaches the app", async () => {
    const a1 = watch(app1);
    const a2 = watch(app2);
    const r = await rawRequest(
      H1,
      p1.port,
      `${GET}X-Verso-Hop: forged\r\nX-VERSO-HOP: v2.9999999999999.AAAA\r\nx-verso-hop: third\r\nConnection: close`,
    );
    expect(r.status).toBe(200);
    expect(r.headers["x-verso-version"]).toBe("v1");
    const got = await a1.since();
    expect(got.length).toBe(1);
    expect(Object.keys(got[0]!.headers).filter((n) => /verso/i.test(n))).toEqual([]);
    expect(await a2.since()).toEqual([]);
  });
});
