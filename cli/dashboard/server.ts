/**
 * The dashboard's HTTP server, in the CLI process, on 127.0.0.1 only: the page and its
 * static files (no CDN), server-sent events with live data (hub.ts), and the buttons' writes,
 * which run the same code as the commands (commands/act.ts) with the user's kubeconfig. A
 * refusal from the API server (RBAC) comes back with its message.
 *
 *   GET  /                                    the page (CSRF token inside)
 *   GET  /static/{app.js,style.css}
 *   GET  /api/stream[?namespace=NS&app=APP]   text/event-stream: `list` or `release` events
 *   POST /api/releases/NS/APP/ACTION          promote | promote-full | pause | resume | abort
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { VersoError } from "../../shared/errors.ts";
import type { ActionCommand } from "../actions.ts";
import { perform } from "../commands/act.ts";
import type { Kube } from "../kube.ts";
import { CSRF_HEADER, guard } from "./guard.ts";
import { createHub, type Hub } from "./hub.ts";

export interface DashboardOptions {
  kube: Kube;
  /** The list page's scope: a namespace, or undefined for every namespace (-A). */
  namespace: string | undefined;
  port: number;
  intervalMs: number;
  metrics: boolean;
  log?: (line: string) => void;
}

export interface Dashboard {
  url: string;
  port: number;
  close(): Promise<void>;
}

const ACTIONS: Record<string, { command: ActionCommand; full?: boolean }> = {
  promote: { command: "promote" },
  "promote-full": { command: "promote", full: true },
  pause: { command: "pause" },
  resume: { command: "resume" },
  abort: { command: "abort" },
};

const STATIC: Record<string, { file: string; type: string }> = {
  "/static/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/static/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
};

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

const staticFile = (name: string): string =>
  readFileSync(new URL(`./static/${name}`, import.meta.url), "utf8");

const HTTP_STATUS: Record<string, number> = {
  CLI_FORBIDDEN: 403,
  CLI_UNAUTHORIZED: 401,
  CLI_UNKNOWN_APP: 404,
  CLI_NO_RELEASE: 404,
  CLI_NOT_FOUND: 404,
  CLI_CONFLICT: 409,
  CLI_UNREACHABLE: 502,
};

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const token = randomBytes(24).toString("base64url");
  const hub: Hub = createHub({
    kube: options.kube,
    intervalMs: options.intervalMs,
    metrics: options.metrics,
  });
  let port = options.port;

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { ...SECURITY_HEADERS, "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const verdict = guard(
      {
        method: req.method ?? "GET",
        host: header("host"),
        origin: header("origin"),
        token: header(CSRF_HEADER),
      },
      port,
      token,
    );
    if (!verdict.ok) return json(res, verdict.status, verdict);
    const url = new URL(req.url ?? "/", `http://127.0.0.1:${port}`);

    if (req.method === "GET" && url.pathname === "/") {
      const page = staticFile("index.html")
        .replace("{{CSRF}}", token)
        .replace("{{SCOPE}}", options.namespace ?? "");
      res.writeHead(200, { ...SECURITY_HEADERS, "content-type": "text/html; charset=utf-8" });
      res.end(page);
      return;
    }
    const asset = STATIC[url.pathname];
    if (req.method === "GET" && asset) {
      res.writeHead(200, { ...SECURITY_HEADERS, "content-type": asset.type });
      res.end(staticFile(asset.file));
      return;
    }
    if (req.method === "GET" && url.pathname === "/api/stream") {
      const namespace = url.searchParams.get("namespace") || undefined;
      const app = url.searchParams.get("app") || undefined;
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        "content-type": "text/event-stream",
        connection: "keep-alive",
      });
      res.write("retry: 2000\n\n");
      const send = (event: string, data: unknown): void => {
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      const leave =
        app && namespace
          ? hub.release(namespace, app, send)
          : hub.list(namespace ?? options.namespace, send);
      const heartbeat = setInterval(() => res.write(": hb\n\n"), 15_000);
      req.on("close", () => {
        clearInterval(heartbeat);
        leave();
      });
      return;
    }
    const action = /^\/api\/releases\/([^/]+)\/([^/]+)\/([a-z-]+)$/.exec(url.pathname);
    if (req.method === "POST" && action) {
      const [, ns, app, name] = action as unknown as [string, string, string, string];
      const what = ACTIONS[name];
      if (!what) return json(res, 404, { code: "CLI_UNSUPPORTED", message: `no action ${name}` });
      try {
        const plan = await perform({
          kube: options.kube,
          namespace: decodeURIComponent(ns),
          app: decodeURIComponent(app),
          command: what.command,
          full: what.full ?? false,
          now: Date.now,
        });
        options.log?.(`${name} ${ns}/${app}: ${plan.summary}`);
        return json(res, 200, { summary: plan.summary, writes: plan.writes });
      } catch (error) {
        if (!(error instanceof VersoError)) throw error;
        return json(res, HTTP_STATUS[error.code] ?? 400, {
          code: error.code,
          message: error.message,
        });
      }
    }
    json(res, 404, { code: "CLI_NOT_FOUND", message: `nothing at ${req.method} ${url.pathname}` });
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      options.log?.(`dashboard: ${String(error)}`);
      if (!res.headersSent) json(res, 500, { code: "CLI_INTERNAL", message: String(error) });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        new VersoError(
          "CLI_PORT",
          error.code === "EADDRINUSE"
            ? `port ${options.port} on 127.0.0.1 is taken: pick another with --port`
            : `cannot listen on 127.0.0.1:${options.port}: ${error.message}`,
          { cause: error },
        ),
      ),
    );
    server.listen(options.port, "127.0.0.1", resolve);
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: async () => {
      hub.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
