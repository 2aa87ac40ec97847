/**
 * WebSocket upgrades: routed like any request, then relayed message by message between
 * Bun.serve's server socket (the client) and a Bun WebSocket client (the local app or a peer).
 *
 * Two things a naive relay gets wrong, measured on Bun 1.4: a slow reader silently loses data
 * (nothing pauses the fast side), and forwarding close code 1006 throws, leaking the other
 * connection. So each side is paused while the other is backed up, and close codes that may
 * not be sent (1005, 1006, 1015) are mapped. Other `Upgrade:` protocols cannot pass through
 * Bun.serve (it parses the bytes after the head as a new request) and get a clear 501.
 */
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import type { Logger } from "../../shared/log.ts";
import type { TableStore } from "../config/store.ts";
import { codeClass, methodClass, type ProxyMetrics } from "../metrics/metrics.ts";
import type { Decision } from "../routing/decide.ts";
import { HOP_HEADER } from "../routing/hop.ts";
import { toUpstream, VERSION_HEADER } from "./headers.ts";
import type { PeerPool } from "./peers.ts";
import { errorKind, planRetry } from "./retry.ts";

export interface RelayData {
  readonly upstream: WebSocket;
  /** Client -> upstream bytes waiting in the upstream socket above this: pause the client. */
  watch: ReturnType<typeof setInterval> | undefined;
}

export interface RelayDeps {
  app: { host: string; port: number };
  version: string;
  versionHeader: boolean;
  store: TableStore;
  pool: PeerPool;
  metrics: ProxyMetrics;
  log: Logger;
}

/** Pause the sending side once this much is queued towards a slow reader. */
export const HIGH_WATER_BYTES = 1 << 20;
/** How often a paused client is checked for an upstream that drained (no drain event there). */
const DRAIN_POLL_MS = 5;
/** A handshake the upstream does not complete within this long is a failed attempt. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/** The handshake's own headers: Bun's client writes them anew for the upstream hop. */
const HANDSHAKE = ["sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions"];

/**
 * A close code one side may pass on to the other. 1005 (no code), 1006 (abnormal) and 1015
 * (TLS) are reported, never sent (RFC 6455 7.4.1): an abnormal end becomes 1001 "going away".
 */
export function relayCloseCode(code: number): number | undefined {
  if (code === 1005) return undefined;
  if (code === 1006 || code === 1015) return 1001;
  if (code === 1000 || (code >= 1001 && code <= 1014) || (code >= 3000 && code <= 4999)) {
    return code;
  }
  return 1001;
}

function closeWith(close: (code?: number, reason?: string) => void, code: number, reason: string) {
  const mapped = relayCloseCode(code);
  try {
    if (mapped === undefined) close();
    else close(mapped, mapped === code ? reason : "");
  } catch {
    // Already closing: nothing left to relay.
  }
}

type Opened = { ok: true; ws: WebSocket } | { ok: false; error: unknown };

/** Open the upstream socket, paused so nothing arrives before the client side is upgraded. */
function openUpstream(url: string, headers: Headers, protocols: string[]): Promise<Opened> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, {
      headers,
      protocols,
      perMessageDeflate: false,
    } as unknown as string[]);
    ws.binaryType = "arraybuffer";
    ws.pause();
    const timer = setTimeout(() => {
      ws.terminate();
      resolve({ ok: false, error: Object.assign(new Error("handshake"), { code: "ETIMEDOUT" }) });
    }, HANDSHAKE_TIMEOUT_MS);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve({ ok: true, ws });
    };
    ws.onerror = (event) => {
      clearTimeout(timer);
      resolve({ ok: false, error: (event as ErrorEvent).error ?? event });
    };
  });
}

export type WebSocketRelay = ((
  req: Request,
  srv: Server<RelayData>,
  d: Decision,
  target: string,
  clientIp: string | undefined,
  hopValid: boolean,
) => Promise<Response | undefined>) & {
  handler: WebSocketHandler<RelayData>;
  /** Drain: close every relayed socket with 1001 "going away" (each side gets a close frame). */
  closeAll(): void;
};

export function createWebSocketRelay(deps: RelayDeps): WebSocketRelay {
  const { metrics, pool, store } = deps;
  /** Relayed sockets, so a drain can close them instead of waiting them out. */
  const open = new Set<ServerWebSocket<RelayData>>();

  async function upgrade(
    req: Request,
    srv: Server<RelayData>,
    d: Decision,
    target: string,
    clientIp: string | undefined,
    hopValid: boolean,
  ): Promise<Response | undefined> {
    const t0 = performance.now();
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("verso proxy: only websocket upgrades are relayed\n", {
        status: 501,
        headers: { "content-type": "text/plain", "x-verso-error": "upgrade-unsupported" },
      });
    }
    const protocols = (req.headers.get("sec-websocket-protocol") ?? "")
      .split(",")
      .map((p) => p.trim())
      .filter((p) => p !== "");
    // A copy: srv.upgrade() below reads the client's handshake from req.headers.
    const headers = toUpstream(new Headers(req.headers), clientIp);
    for (const name of HANDSHAKE) headers.delete(name);
    headers.delete("sec-websocket-protocol");
    const tried = new Set<string>();
    for (;;) {
      let peer = undefined;
      if ("forward" in d) {
        peer = pool.pick(d.peers, Date.now(), tried);
        if (peer) {
          headers.set(HOP_HEADER, store.hop.sign(peer.version, Date.now()));
          metrics.forwarded(peer.version);
        } else {
          metrics.fellBack(d.forward);
          headers.delete(HOP_HEADER);
        }
      } else if (d.fallback !== undefined) metrics.fellBack(d.fallback);
      const host = peer ?? deps.app;
      const opened = await openUpstream(
        `ws://${host.host}:${host.port}${target}`,
        headers,
        protocols,
      );
      if (!opened.ok) {
        const kind = errorKind(opened.error, peer ? "peer" : "app");
        metrics.upstreamError(kind);
        // The same rule as plain requests (retry.ts): only a refused connection moves on to
        // the next peer; a handshake the upstream answered with a refusal (401, 404...) is its
        // answer, not a dead peer, and the client gets a 502 rather than another version.
        const plan = planRetry({ kind, method: "GET", bodyless: true, resetRetried: true });
        if (peer && plan.do === "next") {
          if (plan.markDown) pool.markDown(peer.addr, Date.now());
          tried.add(peer.addr);
          continue;
        }
        const status = plan.do === "fail" ? plan.status : 502;
        return new Response(
          "verso proxy: the upstream refused or failed the websocket handshake\n",
          {
            status,
            headers: { "content-type": "text/plain", "x-verso-error": kind },
          },
        );
      }
      const ws = opened.ws;
      const extra = new Headers();
      if (ws.protocol) extra.set("sec-websocket-protocol", ws.protocol);
      // Bun's client does not expose the upstream's handshake headers; a peer serves a hop
      // locally, so the version that answers is known here.
      if (deps.versionHeader) extra.set(VERSION_HEADER, peer ? peer.version : deps.version);
      if (!srv.upgrade(req, { data: { upstream: ws, watch: undefined }, headers: extra })) {
        ws.close(1001);
        return new Response("verso proxy: not a valid websocket upgrade\n", { status: 400 });
      }
      if (!peer) {
        const source = hopValid ? "forwarded" : "local";
        metrics.served(methodClass("GET"), codeClass(101), source, (performance.now() - t0) / 1000);
      }
      return undefined;
    }
  }

  const handler: WebSocketHandler<RelayData> = {
    // The relay moves bytes as they are; compressing here would only cost CPU twice.
    perMessageDeflate: false,
    // A quiet websocket is normal; its own pings keep it alive, not our timer.
    idleTimeout: 0,
    open(client) {
      open.add(client);
      const up = client.data.upstream;
      up.onmessage = (event: MessageEvent) => {
        // -1: queued under backpressure; stop reading the upstream until `drain`.
        if (client.send(event.data as string | ArrayBuffer) === -1) up.pause();
      };
      up.onclose = (event: CloseEvent) => {
        stopWatch(client);
        closeWith((c, r) => client.close(c, r), event.code, event.reason);
      };
      up.onerror = () => client.terminate();
      up.resume();
    },
    message(client, message) {
      const up = client.data.upstream;
      up.send(message);
      if (up.bufferedAmount > HIGH_WATER_BYTES && client.data.watch === undefined) {
        client.pause();
        client.data.watch = setInterval(() => {
          if (up.readyState !== WebSocket.OPEN || up.bufferedAmount <= HIGH_WATER_BYTES / 2) {
            stopWatch(client);
            client.resume();
          }
        }, DRAIN_POLL_MS);
      }
    },
    drain(client) {
      client.data.upstream.resume();
    },
    close(client, code, reason) {
      open.delete(client);
      stopWatch(client);
      const up = client.data.upstream;
      if (up.readyState === WebSocket.CLOSED || up.readyState === WebSocket.CLOSING) return;
      closeWith((c, r) => up.close(c, r), code, reason);
    },
  };

  return Object.assign(upgrade, {
    handler,
    closeAll() {
      // The client's close() runs `handler.close`, which closes the upstream side as well.
      for (const client of open) closeWith((c, r) => client.close(c, r), 1001, "proxy draining");
    },
  });
}

function stopWatch(client: ServerWebSocket<RelayData>): void {
  if (client.data.watch !== undefined) clearInterval(client.data.watch);
  client.data.watch = undefined;
}
