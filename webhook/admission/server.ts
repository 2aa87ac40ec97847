/**
 * The HTTPS edge, and the one place that catches: time limits (408), body cap (413), content
 * type (415), nesting depth and JSON (400), AdmissionReview shape (400), then admit(). Which
 * failures answer what:
 *
 *   the request is not a usable AdmissionReview -> 4xx + {code, message}: the apiserver treats
 *     it as a webhook failure and applies failurePolicy (Ignore: the pod is created uninjected)
 *   a body refused unread (415, or 413 by its length) is still read off and dropped, never
 *     kept, so the client reads its answer and the connection stays usable (closing with
 *     bytes unread would reset it and lose the answer); an endless one is cut at 20 s (408)
 *   admit() throws (a bug)                      -> 200 allowed:true + warning, counted in
 *     verso_webhook_admission_errors_total: a Verso bug must never block pod creation
 *   anything else unexpected                    -> 500 + {code: internal_error}
 */
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { SecureContextOptions } from "node:tls";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import express, {
  type ErrorRequestHandler,
  type Request,
  type RequestHandler,
  type Response,
} from "express";
import type { Registry } from "prom-client";
import { VersoError } from "../../shared/errors.ts";
import { createLogger, type Logger } from "../../shared/log.ts";
import type { TlsFiles, WebhookConfig } from "../config.ts";
import type { InjectConfig } from "../mutation/config.ts";
import { admit as defaultAdmit } from "./admit.ts";
import { clientErrorAnswer, rawAnswer } from "./clientErrors.ts";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "./depth.ts";
import { createAdmissionMetrics, createRegistry, type AdmissionMetrics } from "./metrics.ts";
import { parseAdmissionReview, toReview, type RejectCode } from "./review.ts";
import { sendError } from "../errorBody.ts";
import { readPair, watchPair, writeSelfSigned, type TlsPair } from "./tls.ts";

export interface ServerDeps {
  logger?: Logger;
  registry?: Registry;
  /** Replaceable so a test can make the mutation throw; production uses admit(). */
  admit?: typeof defaultAdmit;
}

export interface WebhookServer {
  readonly address: { host: string; port: number };
  /** https://host:port */
  readonly url: string;
  /** The serving pair in use (the self-signed one when no files were given). */
  readonly tls: TlsFiles;
  readonly registry: Registry;
  /** Extra routes (the controller's /v1/routes stream), served before the 404 fallback. */
  mount(path: string, handler: RequestHandler | express.Router): void;
  /** /readyz answers 503 while any check returns false. */
  addReadinessCheck(name: string, check: () => boolean): void;
  /**
   * `hook` runs when the listener closes (at once if it already has): the place to end
   * answers that never end by themselves (the route streams), which would otherwise hold the
   * exit until the grace cuts them.
   */
  onListenerClose(hook: () => void): void;
  reloadTls(): Promise<boolean>;
  /**
   * Drain, then stop. At once: /readyz 503 and `Connection: close` on every answer, while new
   * connections are still accepted for `drainDelayMs` (the time it takes the endpoint removal
   * to reach the apiserver and kube-proxy, and the kubelet to see the 503). Then the listener
   * closes, the onListenerClose hooks run, idle connections are closed, and requests in flight
   * get up to 5 s.
   */
  close(drainDelayMs?: number): Promise<void>;
}

// Longer than Go's idle-connection timeout (90s) used by the apiserver's webhook client, so the
// client, not us, closes idle connections; otherwise a request racing our close fails and
// failurePolicy Ignore would admit that pod uninjected.
const KEEP_ALIVE_MS = 120_000;
/** After the listener closes: how long requests in flight may take before they are cut. */
const GRACE_MS = 5_000;
// The apiserver writes a review at once and gives up after timeoutSeconds (5 s shipped, 30 s
// at most): a request still arriving after these is a slow client holding a socket, not a
// review anyone waits for. Checked every second (Node's default is 30 s, which would let a
// slow head live up to 40 s instead of 10).
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 20_000;
const TIMEOUT_CHECK_MS = 1_000;
const TOO_DEEP = "WEBHOOK_JSON_TOO_DEEP";

function rejectWith(
  res: Response,
  status: number,
  code: RejectCode,
  message: string,
  metrics: AdmissionMetrics,
  logger: Logger,
): void {
  metrics.requests.inc({ outcome: "rejected", reason: code });
  logger.warn("admission request rejected", { code, status, reason: message });
  sendError(res, status, code, message);
}

/** application/json, in UTF-8 (RFC 8259 8.1: JSON between systems is UTF-8; no other charset). */
function isUtf8Json(req: Request): boolean {
  if (!req.is("application/json")) return false;
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(req.get("content-type") ?? "")?.[1];
  return charset === undefined || /^utf-?8$/i.test(charset);
}

/** body-parser's `verify`: runs on the raw bytes before JSON.parse (see depth.ts). */
function refuseDeepJson(_req: unknown, _res: unknown, body: Buffer): void {
  if (nestsDeeperThan(body, MAX_JSON_DEPTH)) {
    throw new VersoError(TOO_DEEP, `JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
}

const BODY_ERRORS: Record<string, [number, RejectCode]> = {
  "entity.too.large": [413, "body_too_large"],
  "entity.parse.failed": [400, "malformed_json"],
  "encoding.unsupported": [415, "unsupported_media_type"],
  "charset.unsupported": [415, "unsupported_media_type"],
  "request.aborted": [400, "bad_request"],
  "request.size.invalid": [400, "bad_request"],
};

// One builder for the first context and every reload, so a rotation cannot lower the floor.
const secureOptions = (pair: TlsPair): SecureContextOptions => ({
  cert: pair.cert,
  key: pair.key,
  minVersion: "TLSv1.2",
});

/** Read once at start: the CA outlives serving certificates by years (restart to change it). */
async function withControllerCa(config: WebhookConfig): Promise<InjectConfig> {
  if (!config.controllerCaFile) return config.inject;
  let pem: string;
  try {
    pem = await readFile(config.controllerCaFile, "utf8");
  } catch (cause) {
    throw new VersoError(
      "WEBHOOK_CA_READ",
      `cannot read --controller-ca ${config.controllerCaFile}`,
      {
        cause,
      },
    );
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new VersoError(
      "WEBHOOK_CA_INVALID",
      `--controller-ca ${config.controllerCaFile}: no PEM certificate`,
    );
  }
  return Object.freeze({ ...config.inject, controllerCaPem: pem });
}

export async function startServer(
  config: WebhookConfig,
  deps: ServerDeps = {},
): Promise<WebhookServer> {
  const logger = deps.logger ?? createLogger("webhook", config.logLevel);
  const registry = deps.registry ?? createRegistry();
  const metrics = createAdmissionMetrics(registry);
  const admit = deps.admit ?? defaultAdmit;
  const inject = await withControllerCa(config);

  let files = config.tls;
  if (!files) {
    files = await writeSelfSigned(config.selfSignedDir, [config.listen.host]);
    logger.info("no --tls-cert/--tls-key: wrote a self-signed pair for local use", { ...files });
  }
  const pair = await readPair(files);

  const readiness = new Map<string, () => boolean>();
  let draining = false;
  const extra = express.Router();

  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  // A keep-alive client (the apiserver) sends its next request on a connection it already has,
  // past any endpoint change: while draining, each answer tells it to open a new one, which
  // lands on another replica. Answers still pending when the drain starts say so too, so their
  // connections end with them and do not hold the exit until the grace runs out; one whose
  // headers are already out (a route stream) can no longer say so, and its connection is ended
  // once it finishes instead of idling in keep-alive.
  const pending = new Set<Response>();
  app.use((_req, res, next) => {
    if (draining) res.setHeader("Connection", "close");
    else {
      pending.add(res);
      res.once("close", () => pending.delete(res));
    }
    next();
  });
  const startDraining = (): void => {
    draining = true;
    for (const res of pending) {
      if (!res.headersSent) res.setHeader("Connection", "close");
      else {
        // Taken now: the server detaches the socket from the answer before "finish" listeners run.
        const socket = res.socket;
        if (socket) res.once("finish", () => socket.destroySoon());
      }
    }
    pending.clear();
  };
  const closeHooks: (() => void)[] = [];
  let listenerClosed = false;
  const runCloseHook = (hook: () => void): void => {
    try {
      hook();
    } catch (error) {
      logger.error("listener-close hook failed", { err: error });
    }
  };

  app.get("/healthz", (_req, res) => {
    res.type("text/plain").send("ok\n");
  });
  app.get("/readyz", (_req, res) => {
    const failing = draining
      ? ["draining"]
      : [...readiness].filter(([, ok]) => !ok()).map(([n]) => n);
    // The kubelet reads only the status; a person or a client reads why, in the one shape.
    if (failing.length > 0) sendError(res, 503, "not_ready", `not ready: ${failing.join(", ")}`);
    else res.type("text/plain").send("ok\n");
  });
  app.get("/metrics", async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });

  const requireJson: RequestHandler = (req, res, next) => {
    if (isUtf8Json(req)) return next();
    const got = req.get("content-type") ?? "none";
    rejectWith(
      res,
      415,
      "unsupported_media_type",
      `content-type ${got}: use application/json (UTF-8)`,
      metrics,
      logger,
    );
  };

  app.post(
    "/mutate",
    requireJson,
    // inflate: false: the apiserver never compresses a review, so no decompressor need face
    // untrusted bytes (a gzip body gets 415 encoding.unsupported).
    express.json({
      limit: config.maxBodyBytes,
      strict: true,
      inflate: false,
      verify: refuseDeepJson,
    }),
    (req, res) => {
      const started = performance.now();
      const parsed = parseAdmissionReview(req.body);
      if (!parsed.ok) {
        rejectWith(res, 400, parsed.error.code, parsed.error.message, metrics, logger);
        return;
      }
      const request = parsed.value;
      try {
        const a = admit(request, inject);
        const reason = a.reasons[0] ?? "none";
        metrics.requests.inc({ outcome: a.outcome, reason });
        for (const r of a.reasons) metrics.skips.inc({ reason: r });
        // One line per pod decision: pod creation is not a hot path, and a skipped pod must
        // be explainable from the logs alone.
        logger.info(a.outcome === "injected" ? "pod injected" : "pod not injected", {
          uid: request.uid,
          namespace: a.namespace,
          pod: a.podName,
          reasons: a.reasons,
          ...(a.details.length > 0 ? { details: a.details } : {}),
          dryRun: request.dryRun,
        });
        res.json(toReview(a.response));
        metrics.duration.observe({ outcome: a.outcome }, (performance.now() - started) / 1000);
      } catch (e) {
        const code = e instanceof VersoError ? e.code : "internal_error";
        metrics.errors.inc({ code });
        metrics.requests.inc({ outcome: "error", reason: "internal_error" });
        logger.error("mutation failed, admitting the pod without the proxy", {
          uid: request.uid,
          err: e,
        });
        res.json(
          toReview({
            uid: request.uid,
            allowed: true,
            warnings: [
              `verso: proxy not injected (internal_error): ${code}; see the webhook's logs`,
            ],
          }),
        );
        metrics.duration.observe({ outcome: "error" }, (performance.now() - started) / 1000);
      }
    },
  );

  app.use(extra);
  app.use((req, res) => {
    sendError(res, 404, "not_found", `${req.method} ${req.path}: no such endpoint`);
  });
  const onError: ErrorRequestHandler = (e, req, res, _next) => {
    // Nobody to answer: the client went away mid-body, or the clientError handler below has
    // answered (a timeout) and closed the socket, and the body reader's "aborted" is its echo.
    if (req.socket.destroyed) return;
    if (e instanceof VersoError && e.code === TOO_DEEP) {
      rejectWith(res, 400, "too_deep", e.message, metrics, logger);
      return;
    }
    const type = typeof e === "object" && e !== null ? (e as { type?: unknown }).type : undefined;
    const mapped = typeof type === "string" ? BODY_ERRORS[type] : undefined;
    if (mapped) {
      rejectWith(res, mapped[0], mapped[1], String((e as Error).message), metrics, logger);
      return;
    }
    logger.error("unhandled error at the edge", { err: e });
    metrics.errors.inc({ code: "internal_error" });
    if (!res.headersSent) sendError(res, 500, "internal_error", "internal error");
  };
  app.use(onError);

  const server: Server = createServer(
    { ...secureOptions(pair), connectionsCheckingInterval: TIMEOUT_CHECK_MS },
    app,
  );
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.on("tlsClientError", (e) => logger.debug("tls handshake failed", { err: e }));
  server.on("clientError", (e: NodeJS.ErrnoException, socket: Socket) => {
    const answer = clientErrorAnswer(e.code, {
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    });
    // The same check Node's default handler makes: answer only if no answer has begun.
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (answer && socket.writable && !inFlight?.headersSent) {
      metrics.requests.inc({ outcome: "rejected", reason: answer.code });
      logger.warn("request refused below the router", { code: answer.code, err: e.code });
      socket.end(rawAnswer(answer));
    }
    socket.destroySoon();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const host = config.listen.host;
  const address = { host, port: bound.port };

  const reloader = watchPair(files, pair, (p) => server.setSecureContext(secureOptions(p)), {
    pollMs: config.tlsPollMs,
    logger,
  });
  const url = `https://${host.includes(":") ? `[${host}]` : host}:${bound.port}`;
  logger.info("webhook serving", { url });

  let closing: Promise<void> | undefined;
  return {
    address,
    url,
    tls: files,
    registry,
    mount: (path, handler) => {
      extra.use(path, handler);
    },
    addReadinessCheck: (name, check) => {
      readiness.set(name, check);
    },
    onListenerClose: (hook) => {
      if (listenerClosed) runCloseHook(hook);
      else closeHooks.push(hook);
    },
    reloadTls: () => reloader.reload(),
    close: (drainDelayMs = 0) => {
      closing ??= (async () => {
        startDraining();
        if (drainDelayMs > 0) {
          logger.info("draining: /readyz answers 503, still serving", { drainDelayMs });
          await sleep(drainDelayMs);
        }
        reloader.stop();
        logger.info("no longer accepting connections", { graceMs: GRACE_MS });
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => {
            logger.warn("grace over: cutting the connections still open", { graceMs: GRACE_MS });
            server.closeAllConnections();
          }, GRACE_MS);
          force.unref();
          server.close(() => {
            clearTimeout(force);
            resolve();
          });
          listenerClosed = true;
          for (const hook of closeHooks.splice(0)) runCloseHook(hook);
          server.closeIdleConnections();
        });
      })();
      return closing;
    },
  };
}
