/**
 * Real pods as processes for the sidecar suites: small node:http apps (in the test process)
 * and `bun sidecar/main.ts` proxies (child processes) on their own 127.0.0.x addresses, with a
 * routes file the test rewrites. Ports are chosen free on each address at start.
 */
import http from "node:http";
import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocketServer } from "ws";
import { BUN, SIDECAR_MAIN, REPO_ROOT } from "../harness/paths.ts";
import { freePort, waitFor } from "../harness/ports.ts";
import { startProcess, type ManagedProcess } from "../harness/processes.ts";

export interface App {
  readonly host: string;
  readonly port: number;
  readonly name: string;
  /** Headers of the last request the app saw. */
  lastHeaders: http.IncomingHttpHeaders;
  close(): Promise<void>;
}

/**
 * Routes: `/echo` JSON {version, url, headers}; `/slow?ms=N`; `/upload` counts body bytes;
 * `/sse?n=N` sends N events 100ms apart; `/continue` answers an Expect: 100-continue;
 * websocket on any path echoes messages prefixed with the version.
 */
export async function startApp(host: string, name: string): Promise<App> {
  const port = await freePort(host);
  const app: App = { host, port, name, lastHeaders: {}, close: async () => undefined };
  const server = http.createServer((req, res) => {
    app.lastHeaders = req.headers;
    const url = new URL(req.url ?? "/", "http://x");
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
  server.on("checkContinue", (req, res) => {
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
  wss.on("connection", (ws) => ws.on("message", (m) => ws.send(`${name}:${String(m)}`)));
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
  /** Entry point; sidecar/main.ts (type stripping) unless given, e.g. compiled JS. */
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
    env: { ...process.env, ...opts.env },
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
