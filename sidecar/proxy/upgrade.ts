/**
 * Upgrades (websocket and others): route like any request, open a dedicated connection to the
 * local app or a peer, relay the 101 and then splice the two sockets. A refused peer is
 * retried on the next one, then the local app (counted as a fallback).
 */
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { VersoError } from "../../shared/errors.ts";
import type { TableStore } from "../config/store.ts";
import type { Peer } from "../routing/compile.ts";
import type { Decision } from "../routing/decide.ts";
import { HOP_HEADER } from "../routing/hop.ts";
import { codeClass, methodClass, type ProxyMetrics } from "../metrics/metrics.ts";
import { requestHeaders, takeHopToken, VERSION_HEADER } from "./headers.ts";
import type { PeerPool } from "./peers.ts";
import { CONNECT_TIMEOUT_MS, errorKind, type Target, upstreamRequest } from "./upstream.ts";

export interface UpgradeDeps {
  app: Target;
  version: string;
  versionHeader: boolean;
  store: TableStore;
  pool: PeerPool;
  metrics: ProxyMetrics;
  /** The proxy's routing step (server.ts): the same decision a plain request would get. */
  route: (req: IncomingMessage, hopValid: boolean) => Decision;
}

function head(status: number, message: string, raw: string[], extra?: [string, string]): string {
  let text = `HTTP/1.1 ${status} ${message}\r\n`;
  for (let i = 0; i + 1 < raw.length; i += 2) text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  if (extra) text += `${extra[0]}: ${extra[1]}\r\n`;
  return text + "\r\n";
}

export function handleUpgrade(
  req: IncomingMessage,
  socket: Socket,
  first: Buffer,
  deps: UpgradeDeps,
) {
  const t0 = performance.now();
  const hopValid = takeHopToken(req.headers, deps.store.hop, Date.now());
  const headers = requestHeaders(req.headers, {
    remoteAddress: hopValid ? undefined : socket.remoteAddress,
    upgrade: true,
  });
  const d = deps.route(req, hopValid);
  socket.on("error", () => socket.destroy());
  const tried = new Set<string>();

  const count = (status: number): void =>
    deps.metrics.served(
      methodClass(req.method),
      codeClass(status),
      hopValid ? "forwarded" : "local",
      (performance.now() - t0) / 1000,
    );

  const connect = (): void => {
    let peer: Peer | undefined;
    if ("forward" in d) {
      peer = deps.pool.pick(d.peers, Date.now(), tried);
      if (peer) {
        headers[HOP_HEADER] = deps.store.hop.sign(peer.version, Date.now());
        deps.metrics.forwarded(peer.version);
      } else {
        deps.metrics.fellBack(d.forward);
        delete headers[HOP_HEADER];
      }
    } else if (d.fallback !== undefined) {
      deps.metrics.fellBack(d.fallback);
    }
    const target: Target = peer ?? deps.app;
    const up = upstreamRequest(req, target, headers, false, CONNECT_TIMEOUT_MS);
    up.once("upgrade", (upRes, upSocket: Socket, upHead: Buffer) => {
      up.setTimeout(0);
      upSocket.setTimeout(0);
      const extra: [string, string] | undefined =
        !peer && deps.versionHeader ? [VERSION_HEADER, deps.version] : undefined;
      socket.write(
        head(
          upRes.statusCode ?? 101,
          upRes.statusMessage ?? "Switching Protocols",
          upRes.rawHeaders,
          extra,
        ),
      );
      if (!peer) count(upRes.statusCode ?? 101);
      if (upHead.length > 0) socket.write(upHead);
      if (first.length > 0) upSocket.write(first);
      upSocket.on("error", () => socket.destroy());
      socket.on("close", () => upSocket.destroy());
      upSocket.on("close", () => socket.destroy());
      upSocket.pipe(socket).pipe(upSocket);
    });
    up.once("response", (upRes) => {
      // The upstream declined the upgrade: relay its answer and close.
      socket.write(head(upRes.statusCode ?? 502, upRes.statusMessage ?? "", upRes.rawHeaders));
      if (!peer) count(upRes.statusCode ?? 502);
      upRes.pipe(socket);
    });
    up.on("timeout", () => up.destroy(new VersoError("EIDLETIMEOUT", "upgrade timeout")));
    up.once("error", (error) => {
      const kind = errorKind(error, peer ? "peer" : "app");
      deps.metrics.upstreamError(kind);
      if (peer && kind === "peer-connect") {
        deps.pool.markDown(peer.addr, Date.now());
        tried.add(peer.addr);
        return connect();
      }
      if (!socket.destroyed) socket.end("HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\n\r\n");
    });
    socket.once("close", () => up.destroy());
    up.end();
  };
  connect();
}
