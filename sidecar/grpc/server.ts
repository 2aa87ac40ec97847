/**
 * The h2c/gRPC listener (`--grpc-listen`): every call (HTTP/2 stream) is routed on its own,
 * with the same decision as an HTTP request (hop token, `match` on metadata and on the
 * `/package.Service/Method` path, sticky key, weight split), so a canary gets its share of
 * calls even when the client holds one connection for ever (kube-proxy balances gRPC by
 * connection, which is why replica-ratio canaries are wrong for gRPC).
 *
 * node:http2 on Bun; each call streams both ways with HTTP/2 flow control (a side that cannot
 * take more pauses the other), trailers pass through, a trailers-only answer stays one, and
 * resets propagate both ways. Upstream sessions: one per origin (sessions.ts).
 *
 * Retries: the first REPLAY_BYTES of a call's request are kept until the upstream answers, so
 * a call whose upstream refused the connection, refused the stream, or was cut by a GOAWAY
 * before processing it goes to the next peer (or the local app) with every byte. Larger
 * requests are not replayed. `grpc.health.v1.Health` is always answered here: it is the
 * kubelet asking about this pod.
 *
 * Fast cut-off: a call's end counts for the version that served it (a 5xx-class gRPC status,
 * see status.ts, or no answer at all, is a failure; a call the client cancelled, or whose
 * deadline passed, is neither: the caller's clock, not the release, ended it, and the client's
 * own reset at the deadline races our DEADLINE_EXCEEDED; a hung release is the analysis' p99),
 * in the same streak as the HTTP listener's, so a release failing either way is cut for both.
 */
import http2 from "node:http2";
import type { Logger } from "../../shared/log.ts";
import type { TableStore } from "../config/store.ts";
import type { ProxyMetrics } from "../metrics/metrics.ts";
import type { CompiledTable, Peer } from "../routing/compile.ts";
import type { CutOff } from "../routing/cutoff.ts";
import { decide, viewOf, withoutHopKey, type Decision } from "../routing/decide.ts";
import { HOP_HEADER } from "../routing/hop.ts";
import { PeerPool } from "../proxy/peers.ts";
import { VERSION_HEADER } from "../proxy/headers.ts";
import { SessionPool } from "./sessions.ts";
import { deadlineTimerMs, GRPC, grpcCode, grpcCodeClass, trailersOnly } from "./status.ts";

export interface GrpcProxyOptions {
  listen: { host: string; port: number };
  app: { host: string; port: number };
  version: string;
  versionHeader: boolean;
  store: TableStore;
  metrics: ProxyMetrics;
  log: Logger;
  /** The pod's fast cut-off, shared with the HTTP listener (proxy/server.ts). */
  cut: CutOff;
  roll?: () => number;
}

export interface GrpcProxy {
  readonly server: http2.Http2Server;
  inFlight(): number;
  startDrain(): void;
  tableChanged(table: CompiledTable | undefined): void;
}

/** Request bytes kept for a replay (unary calls and small streams fit). */
export const REPLAY_BYTES = 64 * 1024;
const HEALTH_PREFIX = "/grpc.health.v1.Health/";
const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** Headers HTTP/2 forbids (RFC 9113 8.2.2) and the hop token: never relayed. */
const NOT_RELAYED: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  HOP_HEADER,
]);

function relayable(
  h: http2.IncomingHttpHeaders,
  keep: ReadonlySet<string>,
): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const name in h) {
    if (NOT_RELAYED.has(name) || (name.startsWith(":") && !keep.has(name))) continue;
    out[name] = h[name];
  }
  return out;
}
const REQUEST_PSEUDO = new Set([":method", ":path", ":authority", ":scheme"]);
const RESPONSE_PSEUDO = new Set([":status"]);

const CONNECT_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
]);

/**
 * Failures the upstream cannot have acted on, so the call may go elsewhere: the connection was
 * refused (the stream was pending, never sent: ERR_HTTP2_STREAM_CANCEL caused by the connect
 * error, on Node and Bun alike), the stream was refused (REFUSED_STREAM), or a GOAWAY cut it
 * before the server took it. Undefined: it may have been processed.
 */
function unprocessed(
  error: unknown,
  rstCode: number | undefined,
): "connect" | "refused" | undefined {
  const e = error as { code?: string; cause?: { code?: string } } | undefined;
  if (CONNECT_CODES.has(e?.code ?? "") || CONNECT_CODES.has(e?.cause?.code ?? "")) return "connect";
  if (e?.code === "ERR_HTTP2_STREAM_CANCEL" || e?.code === "ERR_HTTP2_GOAWAY_SESSION")
    return "refused";
  if (rstCode === NGHTTP2_REFUSED_STREAM) return "refused";
  return undefined;
}

export function createGrpcProxy(opts: GrpcProxyOptions): GrpcProxy {
  const { store, metrics, log, cut } = opts;
  const roll = opts.roll ?? Math.random;
  const appOrigin = `http://${opts.app.host}:${opts.app.port}`;
  const sessions = new SessionPool();
  const pool = new PeerPool();
  let active = 0;

  function route(
    path: string,
    h: http2.IncomingHttpHeaders,
    hopValid: boolean,
    health: boolean,
  ): Decision {
    if (health) return { serve: "local", reason: "health" };
    const d = decide(viewOf(path, h, hopValid), store.grpc, opts.version, roll, cut.active);
    return store.hop.hasKey() ? d : withoutHopKey(d);
  }

  function onStream(stream: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders): void {
    active++;
    const t0 = performance.now();
    const path = h[":path"] ?? "/";
    const token = h[HOP_HEADER];
    const hopValid = typeof token === "string" && store.hop.verify(token, Date.now());
    const health = path.startsWith(HEALTH_PREFIX);
    const d = route(path, h, hopValid, health);
    const upHeaders = relayable(h, REQUEST_PSEUDO);
    const replay: Buffer[] = [];
    let replayBytes = 0;
    let replayable = true;
    let clientEnded = false;
    let up: http2.ClientHttp2Stream | undefined;
    let local = false;
    /** The version the current attempt went to; undefined for health checks (not the app's). */
    let servedBy: string | undefined;
    let done = false;
    let trailers: http2.OutgoingHttpHeaders | undefined;
    const tried = new Set<string>();
    let appRetries = 0;

    const finish = (code: number | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      if (code !== undefined && servedBy !== undefined)
        cut.record(servedBy, grpcCodeClass(code) === "5xx");
      // Counted where served; a call the client cancelled is nobody's error (as for HTTP).
      if (local && code !== undefined) {
        const source = hopValid ? "forwarded" : "local";
        metrics.served("POST", grpcCodeClass(code), source, (performance.now() - t0) / 1000);
      }
    };
    const answer = (code: number, message: string): void => {
      if (!stream.headersSent && !stream.closed)
        stream.respond(trailersOnly(code, message), { endStream: true });
      else if (!stream.closed) {
        trailers = { "grpc-status": String(code), "grpc-message": message };
        stream.end();
      }
      finish(code);
    };

    const timeoutMs = deadlineTimerMs(h["grpc-timeout"]);
    // The proxy never waits past the caller's deadline: the upstream is cancelled and the
    // caller told DEADLINE_EXCEEDED (the app's own clock may be later than ours).
    const deadline =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            servedBy = undefined;
            up?.close(NGHTTP2_CANCEL);
            answer(GRPC.DEADLINE_EXCEEDED, "deadline exceeded (verso proxy)");
          }, timeoutMs);

    stream.on("data", (chunk: Buffer) => {
      if (replayable) {
        replayBytes += chunk.length;
        if (replayBytes <= REPLAY_BYTES) replay.push(chunk);
        else {
          replayable = false;
          replay.length = 0;
        }
      }
      if (up && !up.write(chunk)) {
        stream.pause();
        up.once("drain", () => stream.resume());
      }
    });
    stream.on("end", () => {
      clientEnded = true;
      up?.end();
    });
    stream.on("close", () => {
      active--;
      if (!done) {
        up?.close(NGHTTP2_CANCEL);
        finish(undefined);
      }
    });
    stream.on("error", () => undefined);

    const relayResponse = (u: http2.ClientHttp2Stream, rh: http2.IncomingHttpHeaders): void => {
      const head = relayable(rh, RESPONSE_PSEUDO);
      if (local && opts.versionHeader) head[VERSION_HEADER] = opts.version;
      if (rh["grpc-status"] !== undefined) {
        // Trailers-only: the status is in this one block.
        if (!stream.closed) stream.respond(head, { endStream: true });
        finish(grpcCode(rh["grpc-status"]));
        return;
      }
      stream.respond(head, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers(trailers ?? {}));
      u.on("data", (chunk: Buffer) => {
        if (!stream.write(chunk)) {
          u.pause();
          stream.once("drain", () => u.resume());
        }
      });
      u.on("trailers", (t) => (trailers = relayable(t, new Set())));
      u.on("end", () => {
        trailers ??= { "grpc-status": String(GRPC.UNKNOWN), "grpc-message": "no trailers" };
        stream.end();
        finish(grpcCode(trailers["grpc-status"] as string | undefined));
      });
    };

    const attempt = (): void => {
      let peer: Peer | undefined;
      if ("forward" in d && !local) {
        peer = pool.pick(d.peers, Date.now(), tried);
        if (peer) {
          upHeaders[HOP_HEADER] = store.hop.sign(peer.version, Date.now());
          if (tried.size > 0) metrics.retried(peer.version);
          metrics.forwarded(peer.version);
        } else {
          metrics.fellBack(d.forward);
          delete upHeaders[HOP_HEADER];
        }
      } else if (!("forward" in d) && d.fallback !== undefined && !local) {
        metrics.fellBack(d.fallback);
      }
      local = peer === undefined;
      servedBy = health ? undefined : (peer?.version ?? opts.version);
      let u: http2.ClientHttp2Stream;
      try {
        u = sessions.get(peer?.origin ?? appOrigin).request(upHeaders, { endStream: false });
      } catch (error) {
        return failed(undefined, error, peer);
      }
      up = u;
      for (const chunk of replay) u.write(chunk);
      if (clientEnded) u.end();
      let responded = false;
      u.on("response", (rh) => {
        responded = true;
        // Answered: nothing will be replayed now, so a long stream keeps no copy of its start.
        replayable = false;
        replay.length = 0;
        if (!done) relayResponse(u, rh);
      });
      u.on("error", (error) => {
        if (!responded) failed(u, error, peer);
      });
      u.on("close", () => {
        if (done || up !== u) return;
        if (!responded) return failed(u, undefined, peer);
        // Reset mid-call: pass the reset on; the call failed where it was served.
        stream.close(u.rstCode || NGHTTP2_CANCEL);
        finish(GRPC.UNAVAILABLE);
      });
    };

    const failed = (
      u: http2.ClientHttp2Stream | undefined,
      error: unknown,
      peer: Peer | undefined,
    ): void => {
      if (done || (u !== undefined && up !== u)) return;
      up = undefined;
      const why = unprocessed(error, u?.rstCode);
      const side = peer ? "peer" : "app";
      metrics.upstreamError(why === "connect" ? `${side}-connect` : `${side}-reset`);
      if (why !== undefined && replayable) {
        if (peer) {
          // The peer never answered: a failure of its version, as for HTTP (the retry's own
          // answer is counted where it ends).
          cut.record(peer.version, true);
          if (why === "connect") pool.markDown(peer.addr, Date.now());
          tried.add(peer.addr);
          return attempt();
        }
        // The app's session went away under the call (GOAWAY, max connection age): a fresh
        // session, once or twice; a refused connect is not worth a second knock.
        if (why === "refused" && appRetries++ < 2) return attempt();
      }
      if (log.enabled("debug")) {
        log.debug("grpc upstream failed", { error, rst: u?.rstCode, peer: peer?.addr ?? null });
      }
      answer(GRPC.UNAVAILABLE, `verso proxy: no upstream answered (${side} ${why ?? "reset"})`);
    };

    attempt();
  }

  const server = http2.createServer();
  server.on("stream", onStream);
  server.on("sessionError", () => undefined);
  server.listen(opts.listen.port, opts.listen.host);

  return {
    server,
    inFlight: () => active,
    startDrain() {
      // Stop accepting; open sessions get GOAWAY and their calls finish.
      server.close();
    },
    tableChanged(table) {
      const origins = new Set<string>([appOrigin]);
      const addrs = new Set<string>();
      for (const list of table?.peers.values() ?? []) {
        for (const p of list) {
          origins.add(p.origin);
          addrs.add(p.addr);
        }
      }
      sessions.retain(origins);
      pool.retain(addrs);
    },
  };
}
