/**
 * The controller's route stream (DESIGN.md; the controller implements the same contract):
 *   GET {controllerUrl}/v1/routes?namespace=<ns>&app=<app>
 *   Authorization: Bearer <token, re-read from the token file on every connect>
 *   Accept: text/event-stream; Last-Event-ID: <revision> on reconnect
 * Events `event: table`, `id: <revision>`, `data: <RoutingTable JSON on one line>`; comment
 * heartbeats `: hb` about every 10s. No byte for IDLE_MS means the stream is dead. Reconnects
 * back off exponentially with full jitter up to MAX_BACKOFF_MS; the last good table stays in
 * force meanwhile, and before the first one every request is served where it lands.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { Logger } from "../../shared/log.ts";
import { parseRoutingTableJson } from "../../shared/table.ts";
import { SseParser } from "./sse.ts";
import type { TableStore } from "./store.ts";

export const IDLE_MS = 30_000;
export const MIN_BACKOFF_MS = 250;
export const MAX_BACKOFF_MS = 10_000;

export interface StreamOptions {
  controllerUrl: string;
  namespace: string;
  app: string;
  tokenFile: string | undefined;
  /** PEM bundle trusted for the controller's certificate (https). */
  ca: string | undefined;
  store: TableStore;
  log: Logger;
  /** Overridable for tests. */
  idleMs?: number;
}

export interface StreamSource {
  close(): void;
  /** Connection attempts so far (observability for tests and /ready detail). */
  attempts(): number;
}

export function backoffMs(failures: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.min(failures, 16));
  // Full jitter, but never below the floor: a fleet of proxies must not reconnect in lockstep.
  return MIN_BACKOFF_MS + random() * (ceiling - MIN_BACKOFF_MS);
}

export function subscribeRoutes(opts: StreamOptions): StreamSource {
  const { store, log } = opts;
  const idleMs = opts.idleMs ?? IDLE_MS;
  const url = new URL("/v1/routes", opts.controllerUrl);
  url.searchParams.set("namespace", opts.namespace);
  url.searchParams.set("app", opts.app);
  const mod = url.protocol === "https:" ? https : http;
  let closed = false;
  let failures = 0;
  let attempts = 0;
  let lastId: string | undefined;
  let current: http.ClientRequest | undefined;
  let retryTimer: NodeJS.Timeout | undefined;

  const retry = (why: string, fields: Record<string, unknown> = {}): void => {
    if (closed) return;
    const wait = backoffMs(failures++);
    log.warn("route stream down; keeping the last good table and reconnecting", {
      why,
      inMs: Math.round(wait),
      revision: store.current?.revision ?? null,
      ...fields,
    });
    retryTimer = setTimeout(connect, wait);
  };

  function connect(): void {
    if (closed) return;
    attempts++;
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (opts.tokenFile) {
      try {
        headers.authorization = `Bearer ${readFileSync(opts.tokenFile, "utf8").trim()}`;
      } catch (error) {
        return retry("cannot read token file", { tokenFile: opts.tokenFile, error });
      }
    }
    if (lastId !== undefined) headers["last-event-id"] = lastId;
    const req = mod.request(url, {
      method: "GET",
      headers,
      agent: false,
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    });
    current = req;
    let done = false;
    const end = (why: string, fields?: Record<string, unknown>): void => {
      if (done) return;
      done = true;
      req.destroy();
      retry(why, fields);
    };
    req.setTimeout(idleMs, () => end("no bytes for too long (dead stream)", { idleMs }));
    req.once("error", (error) => end("connection failed", { error }));
    req.once("response", (res) => {
      const status = res.statusCode ?? 0;
      if (status === 401 || status === 403) {
        res.resume();
        log.error(
          "controller refused the proxy's credentials: check the projected service-account token (audience verso) and the controller's TokenReview access",
          { status, tokenFile: opts.tokenFile },
        );
        return end("unauthorized", { status });
      }
      if (status !== 200) {
        res.resume();
        return end("unexpected status", { status });
      }
      log.info("route stream connected", { url: url.href, lastEventId: lastId ?? null });
      const parser = new SseParser();
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        let events;
        try {
          events = parser.push(chunk);
        } catch {
          return end("malformed event stream");
        }
        for (const ev of events) {
          if (ev.event !== "table") continue;
          const parsed = parseRoutingTableJson(ev.data);
          if (!parsed.ok) {
            log.error("malformed table from controller; keeping the last good table", {
              problem: parsed.error,
            });
            continue;
          }
          const result = store.apply(parsed.value, true);
          if (result.applied) {
            failures = 0;
            if (ev.id !== undefined) lastId = ev.id;
            log.info("routing table applied", { revision: parsed.value.revision });
          } else {
            log.warn("table from controller ignored", {
              reason: result.reason,
              revision: parsed.value.revision,
            });
          }
        }
      });
      res.once("end", () => end("stream ended"));
      res.once("error", (error) => end("stream error", { error }));
    });
    req.end();
  }

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(retryTimer);
      current?.destroy();
    },
    attempts: () => attempts,
  };
}
