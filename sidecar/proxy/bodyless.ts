/**
 * The fast path: requests without a body (GET, HEAD, most DELETEs: nearly all traffic) go
 * upstream through undici's dispatcher, which in bench/proxy.ts costs about half the CPU per
 * request of node:http's client. Requests with a body or `Expect: 100-continue` take the
 * node:http path in upstream.ts, which pipes the body only once connected (so a refused peer
 * can be retried) and relays the upstream's 100 Continue.
 *
 * Uses undici's dispatch handler in its raw form (Buffer header pairs, boolean backpressure):
 * undici drives that form internally, so nothing is converted per request.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Agent, Dispatcher } from "undici";
// The Agent alone, not undici's index: the index also loads fetch, WebSocket, the cache and the
// mocks, +11 MB RSS in every pod for code the proxy never runs (measured, docs/routing.md).
import UndiciAgent from "undici/lib/dispatcher/agent.js";
import { connectionTokens, HOP_BY_HOP } from "./headers.ts";
import { CONNECT_TIMEOUT_MS, type Target, writeHead } from "./upstream.ts";

export interface BodylessHooks {
  /** Adjust response headers (names lowercase) before they are written. */
  onHead(headers: OutgoingHttpHeaders): void;
  /**
   * Only before a response arrived; later failures destroy the client response instead.
   * `sent`: the request was written to a connected socket, so the upstream may have acted on it.
   */
  onError(error: Error, sent: boolean): void;
}

export function createDispatcher(): Agent {
  return new UndiciAgent({
    connect: { timeout: CONNECT_TIMEOUT_MS },
    pipelining: 1,
    keepAliveTimeout: 4_000,
  });
}

export function dispatchBodyless(
  dispatcher: Dispatcher,
  req: IncomingMessage,
  res: ServerResponse,
  target: Target & { origin: string },
  headers: OutgoingHttpHeaders,
  idleTimeoutMs: number,
  hooks: BodylessHooks,
): void {
  let started = false;
  let abort: ((err?: Error) => void) | undefined;
  const onClose = (): void => {
    if (!res.writableFinished && abort) abort(new Error("client closed"));
  };
  res.once("close", onClose);
  dispatcher.dispatch(
    {
      origin: target.origin,
      path: req.url ?? "/",
      method: (req.method ?? "GET") as Dispatcher.HttpMethod,
      headers: headers as Record<string, string | string[]>,
      body: null,
      headersTimeout: idleTimeoutMs,
      bodyTimeout: idleTimeoutMs,
    },
    {
      onConnect(a: (err?: Error) => void) {
        abort = a;
      },
      onHeaders(status: number, raw: Buffer[], resume: () => void, message: string) {
        started = true;
        const out: OutgoingHttpHeaders = {};
        let named: string | undefined;
        for (let i = 0; i + 1 < raw.length; i += 2) {
          const name = raw[i]!.toString("latin1").toLowerCase();
          if (HOP_BY_HOP.has(name)) {
            if (name === "connection") {
              const v = raw[i + 1]!.toString("latin1");
              named = named === undefined ? v : `${named},${v}`;
            }
            continue;
          }
          const value = raw[i + 1]!.toString("latin1");
          const prior = out[name];
          if (prior === undefined) out[name] = value;
          else out[name] = Array.isArray(prior) ? [...prior, value] : [String(prior), value];
        }
        const tokens = connectionTokens(named);
        if (tokens) for (const t of tokens) delete out[t];
        hooks.onHead(out);
        writeHead(res, status, message, out);
        res.on("drain", resume);
        return true;
      },
      onData(chunk: Buffer) {
        return res.write(chunk);
      },
      onComplete() {
        res.end();
      },
      onError(error: Error) {
        res.off("close", onClose);
        if (started) res.destroy();
        else hooks.onError(error, abort !== undefined);
      },
    } as unknown as Dispatcher.DispatchHandler,
  );
}
