/**
 * The inbound listener, the hot path, on Bun.serve + fetch (2x node:http on Bun, measured in
 * docs/routing.md). Per request: verify and strip the hop token, decide, then send to the
 * local app or to a peer and stream the answer back. Bodies stream both ways with
 * backpressure (fetch pulls the request body as the upstream takes it; the response body is
 * pulled as the client takes it); nothing is buffered.
 *
 * Every Bun default that breaks a proxy is set here on purpose, with a regression test each
 * (test/process/sidecar-bun.test.ts): no body size limit, no idle cut of a quiet response,
 * no redirect following, no decompression, no invented User-Agent.
 */
import type { Server, WebSocketHandler } from "bun";
import type { Logger } from "../../shared/log.ts";
import type { AccessLog } from "../access-log/access-log.ts";
import type { TableStore } from "../config/store.ts";
import {
  codeClass,
  methodClass,
  type ProxyMetrics,
  type UpstreamErrorKind,
} from "../metrics/metrics.ts";
import type { CompiledTable, Peer } from "../routing/compile.ts";
import type { CutOff } from "../routing/cutoff.ts";
import {
  decide,
  viewOf,
  withoutHopKey,
  type Decision,
  type RouteReason,
} from "../routing/decide.ts";
import { HOP_HEADER } from "../routing/hop.ts";
import { malformed, stripHopByHop, toUpstream, VERSION_HEADER } from "./headers.ts";
import { PeerPool } from "./peers.ts";
import { errorKind, planRetry, type RetryPlan } from "./retry.ts";
import { createWebSocketRelay, type RelayData } from "./websocket.ts";

export interface Target {
  readonly host: string;
  readonly port: number;
}

/** Bodies up to this size with a known length are relayed as one buffer (see `relay`). */
export const SMALL_BODY_BYTES = 64 * 1024;

export interface ProxyOptions {
  listen: Target;
  app: Target;
  version: string;
  versionHeader: boolean;
  /** Upstream idle limit (no byte either way); 0: none, so quiet long polls and SSE live on. */
  idleTimeoutMs: number;
  /**
   * Seconds an idle client keep-alive connection is kept (Bun's default, 10 s, would also cut
   * a quiet response; a response in progress is exempt, see `exchange`). The default, 65 s,
   * outlives the 60 s idle timeouts of common load balancers, so they close first, never us
   * mid-reuse.
   */
  clientIdleSeconds: number;
  store: TableStore;
  metrics: ProxyMetrics;
  log: Logger;
  /** Injected for tests; Math.random in production. */
  roll?: () => number;
  /** Undefined: no access log, and nothing is built for one per request. */
  accessLog?: AccessLog;
  /**
   * The pod's fast cut-off, shared with the gRPC listener: a release failing over HTTP is cut
   * for gRPC calls too, and the other way round (one streak per proxy, one metric). main.ts
   * feeds it every table.
   */
  cut: CutOff;
}

export interface Proxy {
  readonly server: Server<RelayData>;
  inFlight(): number;
  /** Every response from now on closes its connection (`Connection: close`). */
  startDrain(): void;
  /** Stop accepting; keep-alive connections close after their current response. */
  stopListening(): void;
  /** A new table is in force: forget the state of peers it no longer lists. */
  tableChanged(table: CompiledTable): void;
}

/** One request's state across attempts. */
interface Exchange {
  readonly req: Request;
  readonly method: string;
  /** Path and query, as the client sent them. */
  readonly target: string;
  readonly headers: Headers;
  readonly bodyless: boolean;
  readonly t0: number;
  readonly forwardedIn: boolean;
  /** Gives the client connection its keep-alive idle limit back (see `exchange`). */
  readonly restore: () => void;
  resetRetried: boolean;
  /** This pod's app refused it and it went to another pod of this version (once). */
  failedOver: boolean;
  // For the access log (plain fields, so nothing is allocated for it when it is off):
  /** Why it went where it went; `app-gone` once failed over. */
  route: RouteReason;
  /** The peer that answered (or failed to); undefined: this pod's app. */
  peer: Peer | undefined;
  /** The version wanted but without a peer that answered: served here instead. */
  fallback: string | undefined;
  /** Response body bytes relayed to the client. */
  sent: number;
}

/**
 * The value of the hop header on a response from a peer whose app refused a forwarded
 * request: nothing reached that app, so the sender tries its next peer. The header is
 * hop-by-hop (headers.ts): no client ever sees it.
 */
const APP_GONE = "app-gone";

/** `/path?query` of Bun's request URL, without building a URL object. */
function pathAndQuery(url: string): string {
  // Bun gives the bare origin-form target ("/a/b?q") when the Host does not make a URL (no
  // Host on HTTP/1.0, an empty one, `Host: a b`): searching it for the scheme's "//" dropped
  // the first segment, so `/a/b` reached the app as `/b` and `/echo` as `/`
  // (test/process/sidecar-hostile.test.ts).
  if (url.charCodeAt(0) === 47 /* "/" */) return url;
  const slash = url.indexOf("/", url.indexOf("//") + 2);
  return slash === -1 ? "/" : url.slice(slash);
}

/** The answer to a peer whose forwarded request this pod's app refused (see APP_GONE). */
function appGone(x: Exchange): Response {
  x.restore();
  return new Response("verso proxy: app-gone\n", {
    status: 503,
    headers: { "content-type": "text/plain", "x-verso-error": "app-gone", [HOP_HEADER]: APP_GONE },
  });
}

const errorText = (code: string): string => `verso proxy: ${code}\n`;

function failure(x: Exchange | undefined, status: 502 | 504, code: string): Response {
  x?.restore();
  return new Response(errorText(code), {
    status,
    headers: { "content-type": "text/plain", "x-verso-error": code },
  });
}

export function createProxy(opts: ProxyOptions): Proxy {
  const { store, metrics, log } = opts;
  const roll = opts.roll ?? Math.random;
  const appOrigin = `http://${opts.app.host}:${opts.app.port}`;
  const pool = new PeerPool();
  const access = opts.accessLog;
  // Bun's fetch: `timeout` is its socket idle timer (false: none), redirects are the client's
  // to follow, and a compressed body passes as it came (decompressing would keep the
  // Content-Encoding header over a plain body).
  const fetchTimeout = opts.idleTimeoutMs > 0 ? opts.idleTimeoutMs : false;
  let draining = false;
  let warnedNoKey = false;
  const cut = opts.cut;

  /** decide(), except that without a hop key nothing can be forwarded (withoutHopKey). */
  function route(path: string, headers: Headers, hopValid: boolean): Decision {
    const d = decide(
      viewOf(path, headers, hopValid),
      store.current,
      opts.version,
      roll,
      cut.active,
    );
    if (!("forward" in d) || store.hop.hasKey()) return d;
    if (!warnedNoKey) {
      warnedNoKey = true;
      log.error(
        "no hop key: serving locally instead of forwarding; set --hop-key-file or the table's hopKey",
      );
    }
    return withoutHopKey(d);
  }

  function send(origin: string, x: Exchange): Promise<Response> {
    return fetch(origin + x.target, {
      method: x.method,
      headers: x.headers,
      body: x.bodyless ? null : x.req.body,
      redirect: "manual",
      decompress: false,
      timeout: fetchTimeout,
      signal: x.req.signal,
    } as RequestInit);
  }

  /**
   * The client's response: the upstream's status and headers (hop-by-hop removed) and its
   * body. `done` runs once when the body ended or was abandoned: that is when a request served
   * here is counted, and a peer released.
   *
   * A small body with a known length (<= SMALL_BODY_BYTES, most API answers) is read whole and
   * answered as one buffer: the stream below costs a JS promise per chunk and measured 25-30 %
   * of the proxy's CPU per request (docs/routing.md, "Performance"). Everything else streams,
   * pulled as the client takes it.
   */
  function relay(
    x: Exchange,
    up: Response,
    local: boolean,
    done: () => void,
  ): Response | Promise<Response> {
    const headers = up.headers;
    stripHopByHop(headers);
    if (local && opts.versionHeader) headers.set(VERSION_HEADER, opts.version);
    if (draining) headers.set("connection", "close");
    const { status, statusText } = up;
    let finished = false;
    /**
     * `counted`: the status this version is counted with where it served; undefined when the
     * client went away first (nobody's error, as for every path: nginx would log 499).
     */
    const finish = (counted: number | undefined): void => {
      if (finished) return;
      finished = true;
      if (local && counted !== undefined) countServed(x, counted);
      // A client that went away is logged as nginx logs it: 499.
      if (access !== undefined) logEnd(access, x, counted ?? 499, x.sent);
      x.restore();
      done();
    };
    /** The body broke off: the client left (not counted), or the upstream failed mid-body. */
    const brokeOff = (error: unknown, fallback: number): void => {
      if (x.req.signal.aborted) return finish(undefined);
      metrics.upstreamError(errorKind(error, local ? "app" : "peer"));
      finish(fallback);
    };
    const source = up.body;
    if (source === null) {
      finish(status);
      return new Response(null, { status, statusText, headers });
    }
    const length = headers.get("content-length");
    if (length !== null && Number(length) <= SMALL_BODY_BYTES) {
      return up.bytes().then(
        (body) => {
          x.sent = body.length;
          finish(status);
          return new Response(body, { status, statusText, headers });
        },
        (error: unknown) => {
          // The upstream broke off mid-body, or the client left; either way nothing was sent
          // yet: a clean 502 (a gone client never reads it).
          brokeOff(error, 502);
          return failure(x, 502, local ? "app-reset" : "peer-reset");
        },
      );
    }
    const reader = source.getReader();
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          try {
            const { value, done: end } = await reader.read();
            if (end) {
              c.close();
              finish(status);
            } else {
              x.sent += value.byteLength;
              c.enqueue(value);
            }
          } catch (error) {
            // Headers are out: the client sees a cut body; the app's failure where served.
            brokeOff(error, 502);
            c.error(error);
          }
        },
        cancel(reason) {
          // The client went away mid-body.
          finish(undefined);
          return reader.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
    return new Response(body, { status, statusText, headers });
  }

  /** One access log line for `x`, which ended with `status` after `bytes` of body. */
  function logEnd(log: AccessLog, x: Exchange, status: number, bytes: number): void {
    const durationMs = performance.now() - x.t0;
    log.record({
      // The wall clock at arrival (performance.now() is monotonic, not the time of day).
      startMs: Date.now() - durationMs,
      durationMs,
      route: x.route,
      peer: x.peer,
      fallback: x.fallback,
      method: x.method,
      target: x.target,
      status,
      bytes,
      traceparent: x.req.headers.get("traceparent"),
    });
  }

  /** `res`, the proxy's own answer ending `x` (body `errorText(code)`, or none), logged. */
  function answered(x: Exchange, res: Response, code: string | undefined): Response {
    if (access !== undefined) logEnd(access, x, res.status, code ? errorText(code).length : 0);
    return res;
  }

  function countServed(x: Exchange, status: number): void {
    const seconds = (performance.now() - x.t0) / 1000;
    const source = x.forwardedIn ? "forwarded" : "local";
    metrics.served(methodClass(x.method), codeClass(status), source, seconds);
  }

  /**
   * One failed attempt, counted and classified, with what to do next (retry.ts decides).
   * Undefined when the client went away first (its signal aborted the fetch): nobody to
   * answer, and not the upstream's error, so not counted (nginx would log 499).
   */
  function afterFailure(
    x: Exchange,
    error: unknown,
    side: "app" | "peer",
  ): { kind: UpstreamErrorKind; plan: RetryPlan } | undefined {
    if (x.req.signal.aborted) return undefined;
    const kind = errorKind(error, side);
    metrics.upstreamError(kind);
    const { method, bodyless, resetRetried } = x;
    return { kind, plan: planRetry({ kind, method, bodyless, resetRetried }) };
  }

  async function serveLocal(x: Exchange): Promise<Response> {
    for (;;) {
      try {
        const up = await send(appOrigin, x);
        cut.record(opts.version, up.status >= 500);
        return relay(x, up, true, noop);
      } catch (error) {
        const failed = afterFailure(x, error, "app");
        if (!failed) return answered(x, gone(x), undefined);
        const { kind, plan } = failed;
        if (plan.do === "again") {
          x.resetRetried = true;
          continue;
        }
        if (kind === "app-connect") {
          // Nothing reached the app: it is exiting (its pod terminating, the proxy still
          // listening in its drain delay) or restarting. Its version may serve elsewhere.
          if (x.forwardedIn) return answered(x, appGone(x), APP_GONE);
          const peers = store.current?.peers.get(opts.version);
          if (!x.failedOver && peers !== undefined && peers.length > 0) {
            x.failedOver = true;
            return forward(x, { forward: opts.version, peers, reason: "app-gone" });
          }
        }
        cut.record(opts.version, true);
        if (log.enabled("debug")) log.debug("app request failed", { kind, error });
        // The app failed to answer: that is this version's error, counted where served.
        const status = plan.do === "fail" ? plan.status : 502;
        countServed(x, status);
        return answered(x, failure(x, status, kind), kind);
      }
    }
  }

  async function forward(x: Exchange, d: Extract<Decision, { forward: string }>) {
    let tried: Set<string> | undefined;
    x.route = d.reason;
    for (;;) {
      const now = Date.now();
      const peer: Peer | undefined = pool.pick(d.peers, now, tried);
      if (!peer) break;
      if (tried) metrics.retried(peer.version);
      metrics.forwarded(peer.version);
      x.headers.set(HOP_HEADER, store.hop.sign(peer.version, now));
      pool.acquire(peer.addr);
      try {
        const up = await send(peer.origin, x);
        // The status first: a header lookup on every forwarded answer is not free.
        if (up.status === 503 && x.bodyless && up.headers.get(HOP_HEADER) === APP_GONE) {
          // That pod's app is gone (its proxy said so before the app saw anything): like a
          // refused connection, try the next peer. A body was spent on it: relayed as is.
          pool.release(peer.addr);
          void up.body?.cancel();
          pool.markDown(peer.addr, Date.now());
          (tried ??= new Set()).add(peer.addr);
          continue;
        }
        cut.record(peer.version, up.status >= 500);
        x.peer = peer;
        return relay(x, up, false, () => pool.release(peer.addr));
      } catch (error) {
        pool.release(peer.addr);
        const failed = afterFailure(x, error, "peer");
        if (!failed) {
          x.peer = peer;
          return answered(x, gone(x), undefined);
        }
        cut.record(peer.version, true);
        const { kind, plan } = failed;
        if (plan.do === "fail") {
          x.peer = peer;
          return answered(x, failure(x, plan.status, kind), kind);
        }
        if (plan.do === "again") x.resetRetried = true;
        else {
          if (plan.markDown) pool.markDown(peer.addr, Date.now());
          (tried ??= new Set()).add(peer.addr);
        }
      }
    }
    metrics.fellBack(d.forward);
    x.fallback = d.forward;
    // A failed attempt left the token signed for that peer: it is not the app's to see. The
    // app's own keep-alive race gets its one grace retry whatever happened with the peers.
    x.headers.delete(HOP_HEADER);
    x.resetRetried = false;
    return serveLocal(x);
  }

  const relayWs = createWebSocketRelay({
    app: opts.app,
    version: opts.version,
    versionHeader: opts.versionHeader,
    store,
    pool,
    metrics,
    log,
  });

  async function exchange(req: Request, srv: Server<RelayData>): Promise<Response | undefined> {
    const headers = req.headers;
    const refusal = malformed(headers);
    if (refusal !== undefined) return badRequest(refusal);
    // A response may stay quiet for minutes (SSE, long polls): no idle cut while one is in
    // progress. The keep-alive limit comes back when it ends (`restore`).
    srv.timeout(req, 0);
    const token = headers.get(HOP_HEADER);
    const hopValid = token !== null && store.hop.verify(token, Date.now());
    const target = pathAndQuery(req.url);
    const q = target.indexOf("?");
    const d = route(q === -1 ? target : target.slice(0, q), headers, hopValid);
    const clientIp = hopValid ? undefined : (srv.requestIP(req)?.address ?? undefined);
    if (headers.has("upgrade")) {
      const refused = await relayWs(req, srv, d, target, clientIp, hopValid);
      if (refused) srv.timeout(req, opts.clientIdleSeconds);
      return refused;
    }
    const x: Exchange = {
      req,
      method: req.method,
      target,
      headers: toUpstream(headers, clientIp),
      bodyless: req.body === null,
      t0: performance.now(),
      forwardedIn: hopValid,
      restore: () => srv.timeout(req, opts.clientIdleSeconds),
      resetRetried: false,
      failedOver: false,
      route: d.reason,
      peer: undefined,
      fallback: "forward" in d ? undefined : d.fallback,
      sent: 0,
    };
    if ("forward" in d) return forward(x, d);
    if (d.fallback !== undefined) metrics.fellBack(d.fallback);
    return serveLocal(x);
  }

  const server = Bun.serve<RelayData>({
    hostname: opts.listen.host,
    port: opts.listen.port,
    // Bun's 128 MiB default would answer 413 to a large upload; bodies stream, so no limit.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    idleTimeout: opts.clientIdleSeconds,
    fetch: exchange,
    websocket: relayWs.handler satisfies WebSocketHandler<RelayData>,
    error(error) {
      log.error("request failed in the proxy", { error });
      return failure(undefined, 502, "proxy-error");
    },
  });

  return {
    server,
    inFlight: () => server.pendingRequests + server.pendingWebSockets,
    tableChanged(table) {
      const addrs = new Set<string>();
      for (const list of table.peers.values()) for (const p of list) addrs.add(p.addr);
      pool.retain(addrs);
    },
    startDrain() {
      draining = true;
    },
    stopListening() {
      draining = true;
      // Stop listening; requests in flight finish (main.ts waits for them, then exits).
      // Websockets have no end of their own: close them (1001) rather than wait them out.
      void server.stop(false);
      relayWs.closeAll();
    },
  };
}

function noop(): void {}

/**
 * A 400 for a request Bun.serve accepted but whose headers are not fit to forward (see
 * `malformed`): the client's error, so not counted as served nor as an upstream error, and
 * the connection is closed, as Bun closes it after the 400s it sends itself.
 */
function badRequest(code: string): Response {
  return new Response(`verso proxy: ${code}\n`, {
    status: 400,
    headers: { "content-type": "text/plain", "x-verso-error": code, connection: "close" },
  });
}

/** The answer to a client that has already gone: never written, only returned. */
function gone(x: Exchange): Response {
  x.restore();
  return new Response(null, { status: 499 as number });
}
