/**
 * The route stream: `GET /v1/routes?namespace=N&app=A` as Server-Sent Events. One hub holds
 * the current table of every app; each subscriber gets the full table on connect (unless its
 * Last-Event-ID already is the current revision) and after every change, plus a heartbeat
 * comment. A slow client never queues tables: it gets the newest one when its socket drains.
 * When the server stops accepting connections, every stream is ended with a clean end of
 * stream, so the proxy (which keeps its table) reconnects to another replica at once.
 */
import { Router, type Request, type Response } from "express";
import type { Logger } from "../../../shared/log.ts";
import type { RoutingTable } from "../../../shared/table.ts";
import { sendError, type StreamRefusalCode } from "../../errorBody.ts";
import type { AuthFailure, Authenticator } from "./tokenReview.ts";

type Listener = (table: RoutingTable) => void;

export interface RouteHub {
  get(namespace: string, app: string): RoutingTable | undefined;
  set(namespace: string, table: RoutingTable): void;
  delete(namespace: string, app: string): void;
  keys(): string[];
  subscribe(namespace: string, app: string, listener: Listener): () => void;
  subscribers(): number;
}

const keyOf = (ns: string, app: string): string => `${ns}/${app}`;

export function createHub(): RouteHub {
  const tables = new Map<string, RoutingTable>();
  const listeners = new Map<string, Set<Listener>>();
  let count = 0;
  return {
    get: (ns, app) => tables.get(keyOf(ns, app)),
    set(ns, table) {
      const k = keyOf(ns, table.app);
      if (tables.get(k) === table) return;
      tables.set(k, table);
      for (const l of listeners.get(k) ?? []) l(table);
    },
    delete: (ns, app) => void tables.delete(keyOf(ns, app)),
    keys: () => [...tables.keys()],
    subscribe(ns, app, listener) {
      const k = keyOf(ns, app);
      let set = listeners.get(k);
      if (!set) listeners.set(k, (set = new Set()));
      set.add(listener);
      count++;
      return () => {
        if (set.delete(listener)) count--;
        if (set.size === 0) listeners.delete(k);
      };
    },
    subscribers: () => count,
  };
}

export const formatEvent = (t: RoutingTable): string =>
  `event: table\nid: ${t.revision}\ndata: ${JSON.stringify(t)}\n\n`;

export interface StreamOptions {
  hub: RouteHub;
  auth: Authenticator;
  log: Logger;
  heartbeatMs?: number;
  /**
   * Aborted when the listener closes: open streams end (a finished response, not a reset)
   * and new ones are refused, so none holds the process until the shutdown grace cuts it.
   */
  closing?: AbortSignal;
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/i;

/**
 * A refusal as every error on this server is answered, `{code, message}`. `reason` (the
 * PascalCase name of the code) is what the stream answered before the shapes were made one;
 * it stays alongside, deprecated, for clients and drills that still read it.
 */
type Reason = AuthFailure["reason"] | "BadQuery" | "WrongNamespace" | "ShuttingDown";
const CODE_OF: Record<Reason, StreamRefusalCode> = {
  BadQuery: "bad_query",
  NoToken: "no_token",
  TokenInvalid: "token_invalid",
  NotServiceAccount: "not_service_account",
  WrongNamespace: "wrong_namespace",
  ReviewUnavailable: "review_unavailable",
  ReviewBusy: "review_busy",
  ShuttingDown: "shutting_down",
};

function fail(res: Response, status: number, reason: Reason, message: string): void {
  sendError(res, status, CODE_OF[reason], message, { reason });
}

export function routesRouter(options: StreamOptions): Router {
  const { hub, auth, log, closing } = options;
  const heartbeatMs = options.heartbeatMs ?? 10_000;
  const open = new Set<() => void>();
  closing?.addEventListener(
    "abort",
    () => {
      log.info("ending route streams: the listener has closed", { streams: open.size });
      for (const end of [...open]) end();
    },
    { once: true },
  );
  const router = Router();
  router.get("/v1/routes", async (req: Request, res: Response) => {
    const namespace = typeof req.query.namespace === "string" ? req.query.namespace : "";
    const app = typeof req.query.app === "string" ? req.query.app : "";
    if (!NAME.test(namespace) || !NAME.test(app)) {
      fail(res, 400, "BadQuery", "use /v1/routes?namespace=<namespace>&app=<app>");
      return;
    }
    const who = await auth.authenticate(req.headers.authorization);
    if (!who.ok) {
      fail(res, who.failure.status, who.failure.reason, who.failure.message);
      return;
    }
    if (who.caller.namespace !== namespace) {
      fail(
        res,
        403,
        "WrongNamespace",
        `service account of namespace ${who.caller.namespace} may only read its own namespace's tables`,
      );
      return;
    }
    if (closing?.aborted) {
      fail(res, 503, "ShuttingDown", "this replica is shutting down: connect to another");
      return;
    }
    // No `connection` header: HTTP/1.1 keeps the connection by default, and a draining server's
    // `Connection: close` must stand so the connection ends with the stream.
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
    });
    res.socket?.setNoDelay(true);
    res.write("retry: 1000\n\n");
    const lastId = req.headers["last-event-id"];
    let sent = typeof lastId === "string" && /^\d+$/.test(lastId) ? Number(lastId) : -1;
    let waiting: RoutingTable | undefined;
    const send = (t: RoutingTable): void => {
      if (t.revision === sent || res.writableEnded) return;
      if (res.writableNeedDrain) {
        waiting = t;
        return;
      }
      sent = t.revision;
      res.write(formatEvent(t));
    };
    res.on("drain", () => {
      const t = waiting;
      waiting = undefined;
      if (t) send(t);
    });
    const current = hub.get(namespace, app);
    if (current) send(current);
    const unsubscribe = hub.subscribe(namespace, app, send);
    const hb = setInterval(() => {
      if (!res.writableNeedDrain) res.write(": hb\n\n");
    }, heartbeatMs);
    hb.unref();
    const close = (): void => {
      clearInterval(hb);
      unsubscribe();
      open.delete(end);
    };
    const end = (): void => {
      close();
      res.end();
    };
    open.add(end);
    res.on("close", close);
    log.debug("route stream opened", { namespace, app, sa: who.caller.serviceAccount });
  });
  return router;
}
