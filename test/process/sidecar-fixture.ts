/**
 * Real pods as processes for the sidecar suites: small node:http apps (in the test process)
 * and `bun sidecar/main.ts` proxies (child processes) on their own 127.0.0.x addresses, with a
 * routes file the test rewrites. Ports are chosen free on each address at start.
 */
import http from "node:http";
import net from "node:net";
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocketServer, type WebSocket as WsSocket } from "ws";
import { PROXY_RUNTIME_ENV } from "../../shared/pod-env.ts";
import { BUN, SIDECAR_MAIN, REPO_ROOT } from "../harness/paths.ts";
import { freePort, waitFor } from "../harness/ports.ts";
import { startProcess, type ManagedProcess } from "../harness/processes.ts";

export interface App {
  readonly host: string;
  readonly port: number;
  readonly name: string;
  /** Headers of the last request the app saw. */
  lastHeaders: http.IncomingHttpHeaders;
  /** Requests the app saw, upgrades and Expect: 100-continue ones included. */
  requests: number;
  readonly server: http.Server;
  readonly wss: WebSocketServer;
  close(): Promise<void>;
}

/** Extra routes for one test file, by exact pathname; they win over the built-in ones. */
export interface AppRoutes {
  http?: Record<string, http.RequestListener>;
  /** Websocket handlers by pathname (instead of the echo). */
  ws?: Record<string, (ws: WsSocket, req: http.IncomingMessage) => void>;
}

/**
 * Routes: `/echo` JSON {version, url, headers}; `/slow?ms=N`; `/upload` counts body bytes;
 * `/sse?n=N` sends N events 100ms apart; `/continue` answers an Expect: 100-continue;
 * websocket on any path echoes messages prefixed with the version.
 */
export async function startApp(host: string, name: string, routes: AppRoutes = {}): Promise<App> {
  const port = await freePort(host);
  const counted = new WeakSet<http.IncomingMessage>();
  const count = (req: http.IncomingMessage): void => {
    if (counted.has(req)) return;
    counted.add(req);
    app.requests++;
  };
  const server = http.createServer((req, res) => {
    count(req);
    app.lastHeaders = req.headers;
    const url = new URL(req.url ?? "/", "http://x");
    const route = routes.http?.[url.pathname];
    if (route) {
      route(req, res);
      return;
    }
    if (url.pathname === "/slow") {
      setTimeout(() => res.end(name), Number(url.searchParams.get("ms") ?? 1000));
      return;
    }
    if (url.pathname === "/sse") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      let i = 0;
      const n = Number(url.searchParams.get("n") ?? 3);
      const tick = setInterval(() => {
        res.write(`data: ${i++} ${Date.now()}\n\n`);
        if (i >= n) {
          clearInterval(tick);
          res.end();
        }
      }, 100);
      return;
    }
    let bytes = 0;
    req.on("data", (c: Buffer) => (bytes += c.length));
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ version: name, url: req.url, bytes, headers: req.headers }));
    });
  });
  server.on("upgrade", (req: http.IncomingMessage) => count(req));
  server.on("checkContinue", (req, res) => {
    count(req);
    if (req.headers["x-reject"]) {
      res.writeHead(417);
      res.end();
      req.destroy();
      return;
    }
    res.writeContinue();
    server.emit("request", req, res);
  });
  const wss = new WebSocketServer({ server });
  const app: App = {
    host,
    port,
    name,
    lastHeaders: {},
    requests: 0,
    server,
    wss,
    close: async () => undefined,
  };
  wss.on("connection", (ws, req) => {
    const route = routes.ws?.[new URL(req.url ?? "/", "http://x").pathname];
    if (route) route(ws, req);
    else ws.on("message", (m) => ws.send(`${name}:${String(m)}`));
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((r) => server.listen(port, host, r));
  app.close = () =>
    new Promise<void>((r) => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      server.close(() => r());
    });
  return app;
}

export interface Proxy {
  readonly host: string;
  readonly port: number;
  readonly adminPort: number;
  readonly version: string;
  readonly url: string;
  readonly proc: ManagedProcess;
  metrics(): Promise<string>;
}

export function makeDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Atomic rewrite (rename into place), as an operator's tooling or a ConfigMap update does. */
export function writeRoutes(file: string, table: object): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(table));
  renameSync(`${file}.tmp`, file);
}

export async function startProxy(opts: {
  host: string;
  app: App;
  version: string;
  routes?: string;
  dir: string;
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  port?: number;
  waitReady?: boolean;
  /** Entry point; sidecar/main.ts unless given, e.g. the image's bundle (harness/compiled.ts). */
  main?: string;
}): Promise<Proxy> {
  const port = opts.port ?? (await freePort(opts.host));
  const adminPort = await freePort(opts.host);
  const args = [
    opts.main ?? SIDECAR_MAIN,
    "--listen",
    `${opts.host}:${port}`,
    "--app",
    `${opts.app.host}:${opts.app.port}`,
    "--admin",
    `${opts.host}:${adminPort}`,
    "--app-name",
    "shop",
    "--version",
    opts.version,
    ...(opts.routes ? ["--routes", opts.routes] : []),
    "--log-level",
    "info",
    ...(opts.extraArgs ?? []),
  ];
  const proc = startProcess({
    name: `proxy-${opts.version}`,
    command: BUN,
    args,
    cwd: REPO_ROOT,
    // The env the webhook injects into every proxy container, so the proxy runs as in a pod.
    env: { ...process.env, ...PROXY_RUNTIME_ENV, ...opts.env },
    logFile: join(opts.dir, `proxy-${opts.version}-${port}.log`),
  });
  const admin = `http://${opts.host}:${adminPort}`;
  const path = opts.waitReady === false ? "/healthz" : "/ready";
  await waitFor(
    `proxy ${opts.version} ${path} (log ${proc.logFile})`,
    async () => ((await fetch(admin + path)).ok ? true : undefined),
    15_000,
    100,
  );
  return {
    host: opts.host,
    port,
    adminPort,
    version: opts.version,
    url: `http://${opts.host}:${port}`,
    proc,
    metrics: async () => (await fetch(`${admin}/metrics`)).text(),
  };
}

/**
 * Proxies v1 and v2 in front of `apps` (on their hosts) sharing the routes file `routes`, whose
 * table sends requests with `x-to: v2` to v2 and everything else to v1 (a canary at weight 0).
 * Their ports are picked before either starts, since each proxy's table needs the other's.
 */
export async function startCanaryPair(opts: {
  apps: readonly [App, App];
  routes: string;
  dir: string;
  hopKey: string;
  /** Passed to both proxies. */
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
}): Promise<[Proxy, Proxy]> {
  const [app1, app2] = opts.apps;
  const [port1, port2] = await Promise.all([freePort(app1.host), freePort(app2.host)]);
  writeRoutes(opts.routes, {
    app: "shop",
    revision: 1,
    release: {
      version: "v2",
      strategy: "canary",
      weight: 0,
      match: [{ header: "x-to", value: "v2" }],
    },
    endpoints: { v1: [`${app1.host}:${port1}`], v2: [`${app2.host}:${port2}`] },
    hopKey: opts.hopKey,
  });
  const common = { routes: opts.routes, dir: opts.dir, extraArgs: opts.extraArgs, env: opts.env };
  return Promise.all([
    startProxy({ ...common, host: app1.host, app: app1, version: "v1", port: port1 }),
    startProxy({ ...common, host: app2.host, app: app2, version: "v2", port: port2 }),
  ]);
}

/** GET through a keep-alive agent; resolves status, served version and body. */
export function get(
  url: string,
  headers: Record<string, string> = {},
  agent?: http.Agent,
): Promise<{
  status: number;
  version: string | undefined;
  body: string;
  headers: http.IncomingHttpHeaders;
}> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: agent ?? false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          version: res.headers["x-verso-version"] as string | undefined,
          body,
          headers: res.headers,
        }),
      );
      res.on("error", reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout ${url}`)));
    req.on("error", reject);
  });
}

/** A process's resident set in bytes, `field` VmRSS (now) or VmHWM (peak) of /proc/<pid>/status. */
export function rssOf(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(
    readFileSync(`/proc/${pid}/status`, "utf8"),
  );
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * The peak resident set of processes over a stretch of a test. The kernel's own peak (VmHWM)
 * is reset at the start (`clear_refs` 5, Linux >= 4.0) so it covers only this stretch and
 * misses nothing between samples; VmRSS is sampled every 20 ms as well, in case the reset is
 * not permitted.
 */
export function trackPeakRss(pids: readonly number[]): { stop(): number[] } {
  const exact = pids.map((pid) => {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, "5");
      return true;
    } catch {
      return false;
    }
  });
  const peaks = pids.map((pid) => rssOf(pid));
  const sampleAll = (): void =>
    pids.forEach((pid, i) => {
      try {
        peaks[i] = Math.max(peaks[i]!, rssOf(pid));
      } catch {
        // Exited: its last sample stands.
      }
    });
  const timer = setInterval(sampleAll, 20);
  return {
    stop() {
      clearInterval(timer);
      sampleAll();
      return pids.map((pid, i) =>
        exact[i] ? Math.max(peaks[i]!, rssOf(pid, "VmHWM")) : peaks[i]!,
      );
    },
  };
}

export interface RawResponse {
  /** Interim (1xx) statuses, in order. */
  readonly interim: number[];
  readonly status: number;
  /** Lowercased names; repeated headers joined with ", ". */
  readonly headers: Record<string, string>;
  /** The body as it came on the wire, de-chunked (never decompressed). */
  readonly body: Buffer;
  /** Date.now() when the response was complete. */
  readonly at: number;
  /** Still open unless the response said `connection: close` or the server closed it. */
  readonly socket: net.Socket;
  /** Date.now() at the server's close of the connection (or its end of stream). */
  readonly closed: Promise<number>;
}

/**
 * One HTTP/1.1 exchange on a raw TCP socket, so nothing adds, removes or decodes anything:
 * `head` is sent as is (request line and headers, without the final blank line). With `body`
 * and `expect: 100-continue` in the head, the body is sent only after a 100 (and never when
 * the final response comes first); otherwise right after the head.
 */
export function rawRequest(
  host: string,
  port: number,
  head: string,
  body?: Buffer,
  timeoutMs = 15_000,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const waitFor100 = body !== undefined && /^expect:\s*100-continue/im.test(head);
    const interim: number[] = [];
    let buf = Buffer.alloc(0);
    let final: { status: number; headers: Record<string, string>; at: number } | undefined;
    let settled = false;
    const closed = new Promise<number>((r) => {
      socket.once("close", () => r(Date.now()));
      socket.once("end", () => r(Date.now()));
    });
    const timer = setTimeout(() => fail(new Error(`raw request timed out: ${head}`)), timeoutMs);
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const done = (bodyBytes: Buffer, rest: number): void => {
      settled = true;
      clearTimeout(timer);
      socket.removeListener("data", onData);
      buf = buf.subarray(rest);
      resolve({
        interim,
        status: final!.status,
        headers: final!.headers,
        body: bodyBytes,
        at: Date.now(),
        socket,
        closed,
      });
    };
    /** The body per its framing, or undefined while incomplete; `ended`: the peer closed. */
    const tryBody = (ended: boolean): void => {
      const h = final!.headers;
      const from = final!.at;
      if (h["transfer-encoding"]?.toLowerCase().includes("chunked")) {
        const parts: Buffer[] = [];
        let at = from;
        for (;;) {
          const eol = buf.indexOf("\r\n", at);
          if (eol === -1) return;
          const size = parseInt(buf.subarray(at, eol).toString("latin1"), 16);
          if (buf.length < eol + 2 + size + 2) return;
          if (size === 0) {
            // No trailers expected from these servers: the blank line ends the message.
            return done(Buffer.concat(parts), eol + 4);
          }
          parts.push(buf.subarray(eol + 2, eol + 2 + size));
          at = eol + 2 + size + 2;
        }
      }
      if (h["content-length"] !== undefined) {
        const n = Number(h["content-length"]);
        if (buf.length >= from + n) done(buf.subarray(from, from + n), from + n);
        return;
      }
      if (final!.status === 204 || final!.status === 304) return done(Buffer.alloc(0), from);
      if (ended) done(buf.subarray(from), buf.length);
    };
    const parse = (ended: boolean): void => {
      while (final === undefined) {
        const end = buf.indexOf("\r\n\r\n");
        if (end === -1) return;
        const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
        const status = Number(lines[0]!.split(" ")[1]);
        if (status >= 100 && status < 200) {
          interim.push(status);
          buf = buf.subarray(end + 4);
          if (status === 100 && waitFor100) socket.write(body);
          continue;
        }
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(":");
          const name = line.slice(0, colon).trim().toLowerCase();
          const value = line.slice(colon + 1).trim();
          headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
        }
        final = { status, headers, at: end + 4 };
      }
      tryBody(ended);
    };
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      parse(false);
    };
    socket.on("data", onData);
    socket.once("end", () => {
      if (!settled) parse(true);
      if (!settled) fail(new Error(`connection closed before a complete response: ${head}`));
    });
    socket.once("error", fail);
    socket.once("connect", () => {
      socket.write(`${head}\r\n\r\n`);
      if (body !== undefined && !waitFor100) socket.write(body);
    });
  });
}

/**
 * ESTABLISHED TCP connections involving `host:port`, from /proc/net/tcp (this network
 * namespace): `toIt` the connecting ends (e.g. a proxy's sockets to its app), `atIt` the
 * accepted ends (the app's).
 */
export function establishedWith(host: string, port: number): { toIt: number; atIt: number } {
  // Addresses are the u32 in host byte order, in hex: 127.0.7.4 reads 0407007F on x86/arm64.
  const ip = host
    .split(".")
    .map((n) => Number(n).toString(16).padStart(2, "0"))
    .reverse()
    .join("")
    .toUpperCase();
  const addr = `${ip}:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let toIt = 0;
  let atIt = 0;
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const [, local, remote, state] = line.trim().split(/\s+/);
    if (state !== "01") continue;
    if (remote === addr) toIt++;
    if (local === addr) atIt++;
  }
  return { toIt, atIt };
}
