/**
 * The inbound listener, the hot path. Per request: verify and strip the hop token, decide,
 * then pipe to the local app or to a peer. Bodies stream both ways (pipe() gives backpressure:
 * a slow client pauses the upstream, memory stays bounded); nothing is buffered.
 */
import http, {
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from "node:http";
import type { Socket } from "node:net";
import type { Logger } from "../../shared/log.ts";
import type { CompiledTable, Peer } from "../routing/compile.ts";
import { decide, type Decision } from "../routing/decide.ts";
import { HOP_HEADER } from "../routing/hop.ts";
import type { TableStore } from "../config/store.ts";
import { codeClass, methodClass, type ProxyMetrics } from "../metrics/metrics.ts";
import { requestHeaders, responseHeaders, takeHopToken, VERSION_HEADER } from "./headers.ts";
import { PeerPool } from "./peers.ts";
import { attempt, errorKind, type Target, writeHead } from "./upstream.ts";
import { createDispatcher, dispatchBodyless } from "./bodyless.ts";
import { handleUpgrade } from "./upgrade.ts";

export interface ProxyOptions {
  app: Target;
  version: string;
  versionHeader: boolean;
  idleTimeoutMs: number;
  store: TableStore;
  metrics: ProxyMetrics;
  log: Logger;
  /** Injected for tests; Math.random in production. */
  roll?: () => number;
}

export interface Proxy {
  readonly server: http.Server;
  inFlight(): number;
  /** Stop accepting; keep-alive connections close after their current response. */
  startDrain(): void;
  /** A new table is in force: forget the state of peers it no longer lists. */
  tableChanged(table: CompiledTable): void;
}

/** One request's state across attempts. */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly headers: OutgoingHttpHeaders;
  readonly t0: number;
  readonly forwardedIn: boolean;
  /** No body and no Expect: the undici fast path (bodyless.ts). */
  readonly fast: boolean;
  /** Set once the request is served by this pod's app: only then is it counted here. */
  local: boolean;
  tried: Set<string> | undefined;
  resetRetried: boolean;
}

type HeadHook = (h: OutgoingHttpHeaders) => void;

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/**
 * undici parses responses with llhttp compiled to WebAssembly; a Node started with `--jitless`
 * (or `--lite-mode`, a hardening some clusters apply) has no WebAssembly and every undici
 * request would fail. Then everything takes the node:http path, at about twice the CPU.
 */
const UNDICI_USABLE = "WebAssembly" in globalThis;

export function createProxy(opts: ProxyOptions): Proxy {
  const { store, metrics, log } = opts;
  const roll = opts.roll ?? Math.random;
  const appAgent = new http.Agent({ keepAlive: true, scheduling: "lifo", maxFreeSockets: 256 });
  const appTarget = { ...opts.app, origin: `http://${opts.app.host}:${opts.app.port}` };
  const dispatcher = createDispatcher();
  const localHead: HeadHook = (h) => {
    if (opts.versionHeader) h[VERSION_HEADER] = opts.version;
    if (draining) h.connection = "close";
  };
  const peerHead: HeadHook = (h) => {
    if (draining) h.connection = "close";
  };
  const peerAgent = new http.Agent({ keepAlive: true, scheduling: "lifo", maxFreeSockets: 256 });
  const pool = new PeerPool();
  let active = 0;
  let draining = false;
  let warnedNoKey = false;

  function relay(x: Exchange, upRes: IncomingMessage, onHead: HeadHook): void {
    const out = responseHeaders(upRes.headers);
    onHead(out);
    const res = x.res;
    writeHead(res, upRes.statusCode ?? 502, upRes.statusMessage, out);
    upRes.pipe(res);
    upRes.once("error", () => res.destroy());
    upRes.once("aborted", () => res.destroy());
  }

  /** One attempt at the local app or a peer: undici when bodyless, else node:http. */
  function send(
    x: Exchange,
    target: Target & { origin: string },
    local: boolean,
    onError: (error: Error, bodySent: boolean, reused: boolean) => void,
  ): void {
    const onHead = local ? localHead : peerHead;
    if (x.fast) {
      dispatchBodyless(dispatcher, x.req, x.res, target, x.headers, opts.idleTimeoutMs, {
        onHead,
        onError: (error, sent) => onError(error, sent, false),
      });
      return;
    }
    attempt(x.req, x.res, target, x.headers, local ? appAgent : peerAgent, opts.idleTimeoutMs, {
      onResponse: (upRes) => relay(x, upRes, onHead),
      onError,
    });
  }

  function fail(res: ServerResponse, status: number, code: string): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(status, { "content-type": "text/plain", "x-verso-error": code });
    res.end(`verso proxy: ${code}\n`);
  }

  function serveLocal(x: Exchange, retried: boolean): void {
    x.local = true;
    const onError = (error: Error, bodySent: boolean, reused: boolean): void => {
      const kind = errorKind(error, "app");
      metrics.upstreamError(kind);
      // A pooled socket the app closed just as we reused it: safe to replay once.
      const replay = x.fast
        ? kind === "app-reset" && IDEMPOTENT.has(x.req.method ?? "")
        : reused && !bodySent;
      if (!retried && replay) return serveLocal(x, true);
      if (log.enabled("debug")) log.debug("app request failed", { kind, error });
      fail(x.res, kind === "app-timeout" ? 504 : 502, kind);
    };
    send(x, appTarget, true, onError);
  }

  function forward(x: Exchange, d: Extract<Decision, { forward: string }>): void {
    const now = Date.now();
    const peer: Peer | undefined = pool.pick(d.peers, now, x.tried);
    if (!peer) {
      metrics.fellBack(d.forward);
      // A failed attempt left the token signed for that peer: it is not the app's to see.
      delete x.headers[HOP_HEADER];
      return serveLocal(x, false);
    }
    if (x.tried) metrics.retried(peer.version);
    metrics.forwarded(peer.version);
    x.headers[HOP_HEADER] = store.hop.sign(peer.version, now);
    pool.acquire(peer.addr);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      pool.release(peer.addr);
    };
    x.res.once("close", release);
    const onError = (error: Error, bodySent: boolean, reused: boolean): void => {
      release();
      const kind = errorKind(error, "peer");
      metrics.upstreamError(kind);
      const safe = !bodySent || (IDEMPOTENT.has(x.req.method ?? "") && bodyless(x.req));
      // A reset on a pooled connection is usually the peer closing an idle keep-alive socket
      // as we reused it: keep that peer eligible for one more pick (the pool may still choose
      // another) before treating it as down.
      const firstReset = kind === "peer-reset" && !x.resetRetried;
      if (kind === "peer-reset") x.resetRetried = true;
      if (kind === "peer-connect" || (kind === "peer-reset" && !firstReset && !reused)) {
        pool.markDown(peer.addr, Date.now());
      }
      if (safe && kind !== "peer-timeout" && !x.res.headersSent) {
        if (!firstReset) (x.tried ??= new Set()).add(peer.addr);
        return forward(x, d);
      }
      fail(x.res, kind === "peer-timeout" ? 504 : 502, kind);
    };
    send(x, peer, false, onError);
  }

  /** decide(), except that without a hop key nothing can be forwarded: serve here instead. */
  function route(req: IncomingMessage, hopValid: boolean): Decision {
    const d = decide(
      { url: req.url ?? "/", headers: req.headers, hopValid },
      store.current,
      opts.version,
      roll,
    );
    if (!("forward" in d) || store.hop.hasKey()) return d;
    if (!warnedNoKey) {
      warnedNoKey = true;
      log.error(
        "no hop key: serving locally instead of forwarding; set --hop-key-file or the table's hopKey",
      );
    }
    return { serve: "local", reason: d.reason, fallback: d.forward };
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    active++;
    const hopValid = takeHopToken(req.headers, store.hop, Date.now());
    const x: Exchange = {
      req,
      res,
      headers: requestHeaders(req.headers, {
        remoteAddress: hopValid ? undefined : req.socket.remoteAddress,
        upgrade: false,
      }),
      t0: performance.now(),
      forwardedIn: hopValid,
      fast: UNDICI_USABLE && req.headers.expect === undefined && bodyless(req),
      local: false,
      tried: undefined,
      resetRetried: false,
    };
    res.once("close", () => {
      active--;
      if (!x.local) return;
      const seconds = (performance.now() - x.t0) / 1000;
      const source = x.forwardedIn ? "forwarded" : "local";
      metrics.served(methodClass(req.method), codeClass(res.statusCode), source, seconds);
    });
    const d = route(req, hopValid);
    if ("forward" in d) return forward(x, d);
    if (d.fallback !== undefined) metrics.fellBack(d.fallback);
    serveLocal(x, false);
  }

  const server = http.createServer({ requestTimeout: 0, keepAliveTimeout: 65_000 }, onRequest);
  server.headersTimeout = 66_000;
  // Expect: 100-continue goes end to end: the upstream decides, we relay its 100.
  server.on("checkContinue", onRequest);
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) =>
    handleUpgrade(req, socket, head, {
      app: opts.app,
      version: opts.version,
      versionHeader: opts.versionHeader,
      store,
      pool,
      metrics,
      route,
    }),
  );
  server.on("clientError", (_err, socket: Socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    else socket.destroy();
  });

  return {
    server,
    inFlight: () => active,
    tableChanged(table) {
      const addrs = new Set<string>();
      for (const list of table.peers.values()) for (const p of list) addrs.add(p.addr);
      pool.retain(addrs);
    },
    startDrain() {
      draining = true;
      server.close();
      server.closeIdleConnections();
    },
  };
}

function bodyless(req: IncomingMessage): boolean {
  const len = req.headers["content-length"];
  return req.headers["transfer-encoding"] === undefined && (len === undefined || len === "0");
}
