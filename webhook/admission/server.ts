/**
 * The HTTPS edge, and the one place that catches: body cap (413), content type (415), JSON
 * (400), AdmissionReview shape (400), then admit(). Which failures answer what:
 *
 *   the request is not a usable AdmissionReview -> 4xx + {code, message}: the apiserver treats
 *     it as a webhook failure and applies failurePolicy (Ignore: the pod is created uninjected)
 *   admit() throws (a bug)                      -> 200 allowed:true + warning, counted in
 *     verso_webhook_admission_errors_total: a Verso bug must never block pod creation
 *   anything else unexpected                    -> 500 + {code: internal_error}
 */
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { SecureContextOptions } from "node:tls";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import express, { type ErrorRequestHandler, type RequestHandler, type Response } from "express";
import type { Registry } from "prom-client";
import { VersoError } from "../../shared/errors.ts";
import { createLogger, type Logger } from "../../shared/log.ts";
import type { TlsFiles, WebhookConfig } from "../config.ts";
import type { InjectConfig } from "../mutation/config.ts";
import { admit as defaultAdmit } from "./admit.ts";
import { createAdmissionMetrics, createRegistry, type AdmissionMetrics } from "./metrics.ts";
import { parseAdmissionReview, toReview, type RejectCode } from "./review.ts";
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
  res.status(status).json({ code, message });
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
    if (failing.length > 0)
      res
        .status(503)
        .type("text/plain")
        .send(`not ready: ${failing.join(", ")}\n`);
    else res.type("text/plain").send("ok\n");
  });
  app.get("/metrics", async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });

  const requireJson: RequestHandler = (req, res, next) => {
    if (req.is("application/json")) return next();
    const got = req.get("content-type") ?? "none";
    rejectWith(
      res,
      415,
      "unsupported_media_type",
      `content-type ${got}: use application/json`,
      metrics,
      logger,
    );
  };

  app.post(
    "/mutate",
    requireJson,
    express.json({ limit: config.maxBodyBytes, strict: true }),
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
    res
      .status(404)
      .json({ code: "not_found", message: `${req.method} ${req.path}: no such endpoint` });
  });
  const onError: ErrorRequestHandler = (e, _req, res, _next) => {
    const type = typeof e === "object" && e !== null ? (e as { type?: unknown }).type : undefined;
    const mapped = typeof type === "string" ? BODY_ERRORS[type] : undefined;
    if (mapped) {
      rejectWith(res, mapped[0], mapped[1], String((e as Error).message), metrics, logger);
      return;
    }
    logger.error("unhandled error at the edge", { err: e });
    metrics.errors.inc({ code: "internal_error" });
    if (!res.headersSent)
      res.status(500).json({ code: "internal_error", message: "internal error" });
  };
  app.use(onError);

  const server: Server = createServer(secureOptions(pair), app);
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  server.on("tlsClientError", (e) => logger.debug("tls handshake failed", { err: e }));

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
