/**
 * The controller's route stream (docs/routing.md, "The controller stream"; the controller implements the same contract):
 *   GET {controllerUrl}/v1/routes?namespace=<ns>&app=<app>
 *   Authorization: Bearer <token, re-read from the token file on every connect>
 *   Accept: text/event-stream; Last-Event-ID: <revision> on reconnect
 * Events `event: table`, `id: <revision>`, `data: <RoutingTable JSON on one line>`; comment
 * heartbeats `: hb` about every 10s. No byte for IDLE_MS means the stream is dead. Reconnects
 * back off exponentially with full jitter up to MAX_BACKOFF_MS; the last good table stays in
 * force meanwhile, and before the first one every request is served where it lands.
 */
import { readFileSync } from "node:fs";
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
  let closed = false;
  let failures = 0;
  let attempts = 0;
  let lastId: string | undefined;
  let current: AbortController | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** When the current stream answered 200 (undefined while not connected). */
  let upSince: number | undefined;

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

  const onEvents = (parser: SseParser, chunk: string): void => {
    for (const ev of parser.push(chunk)) {
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
        if (ev.id !== undefined) lastId = ev.id;
        log.info("routing table applied", { revision: parsed.value.revision });
      } else {
        log.warn("table from controller ignored", {
          reason: result.reason,
          revision: parsed.value.revision,
        });
      }
    }
  };

  /** One connection, read until it ends; resolves with why it ended (undefined: closed). */
  async function stream(abort: AbortController): Promise<[string, Record<string, unknown>?]> {
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (opts.tokenFile) {
      try {
        headers.authorization = `Bearer ${readFileSync(opts.tokenFile, "utf8").trim()}`;
      } catch (error) {
        return ["cannot read token file", { tokenFile: opts.tokenFile, error }];
      }
    }
    if (lastId !== undefined) headers["last-event-id"] = lastId;
    // No byte for idleMs (heartbeats included) means a dead stream: abort and reconnect.
    let idle = setTimeout(() => abort.abort(), idleMs);
    const alive = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => abort.abort(), idleMs);
    };
    try {
      const res = await fetch(url, {
        headers,
        signal: abort.signal,
        // Bun's fetch: trust the controller's CA; its own idle timer is ours (idleMs) instead.
        ...(opts.ca !== undefined ? { tls: { ca: opts.ca } } : {}),
        timeout: false,
      } as RequestInit);
      const status = res.status;
      if (status === 401 || status === 403) {
        await res.body?.cancel();
        log.error(
          "controller refused the proxy's credentials: check the projected service-account token (audience verso) and the controller's TokenReview access",
          { status, tokenFile: opts.tokenFile },
        );
        return ["unauthorized", { status }];
      }
      if (status !== 200 || res.body === null) {
        await res.body?.cancel();
        return ["unexpected status", { status }];
      }
      alive();
      upSince = Date.now();
      log.info("route stream connected", { url: url.href, lastEventId: lastId ?? null });
      const parser = new SseParser();
      const decoder = new TextDecoder();
      for await (const chunk of res.body) {
        alive();
        try {
          onEvents(parser, decoder.decode(chunk, { stream: true }));
        } catch {
          return ["malformed event stream"];
        }
      }
      return ["stream ended"];
    } catch (error) {
      if (abort.signal.aborted) return ["no bytes for too long (dead stream)", { idleMs }];
      return ["connection failed", { error }];
    } finally {
      clearTimeout(idle);
    }
  }

  function connect(): void {
    if (closed) return;
    attempts++;
    const abort = new AbortController();
    current = abort;
    void stream(abort).then(([why, fields]) => {
      // The backoff starts over only after a stream that stayed up: a controller that sends a
      // table and then drops every connection is not reconnected to every 250 ms for ever.
      if (upSince !== undefined && Date.now() - upSince >= MAX_BACKOFF_MS) failures = 0;
      upSince = undefined;
      if (!closed) retry(why, fields);
    });
  }

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(retryTimer);
      current?.abort();
    },
    attempts: () => attempts,
  };
}
