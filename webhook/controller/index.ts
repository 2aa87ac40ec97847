/**
 * The controller's entry from webhook/main.ts (its flags are in options.ts): `startControllerIn`
 * plugs the route stream into the HTTPS server and starts the watches, or resolves to undefined
 * (and says why) when no cluster is reachable, so the process serves admission alone.
 */
import { VersoError } from "../../shared/errors.ts";
import { KubeConfig, VersionApi } from "@kubernetes/client-node";
import type { Registry } from "prom-client";
import { Gauge } from "prom-client";
import type { RequestHandler, Router } from "express";
import type { Logger } from "../../shared/log.ts";
import { startController as start, type Controller } from "./io/controller.ts";
import { systemClock } from "./io/clock.ts";
import { applyConnectTimeout } from "./io/connectTimeout.ts";
import { createKubeApi } from "./io/kube.ts";
import { createNotifier } from "./io/notify.ts";
import { createReleaseMetrics } from "./io/releaseMetrics.ts";
import { createBuiltinSource } from "./io/metrics/builtin.ts";
import { createPrometheusSource } from "./io/metrics/prometheus.ts";
import { createHub, routesRouter } from "./io/stream.ts";
import { createAuthenticator } from "./io/tokenReview.ts";
import type { ControllerOptions } from "./options.ts";

/**
 * How long opening a connection to the apiserver may take (TCP and TLS): generous for a
 * handshake, short next to the SYN retransmissions it cuts off (io/connectTimeout.ts).
 */
const CONNECT_TIMEOUT_MS = 5_000;

export interface ControllerHost {
  options: ControllerOptions;
  /** The controller's own namespace (Lease, hop-key Secret). */
  namespace: string;
  logger: Logger;
  registry: Registry;
  mount(path: string, handler: RequestHandler | Router): void;
  addReadinessCheck(name: string, check: () => boolean): void;
  /** Runs `hook` when the server stops accepting connections (after its drain delay). */
  onListenerClose(hook: () => void): void;
}

export async function startControllerIn(host: ControllerHost): Promise<Controller | undefined> {
  const { options, logger: log } = host;
  // Registered before anything is awaited: /readyz must not answer 200 in the moment between
  // the server's start and the controller's (a proxy, or a test, would find no /v1/routes).
  let synced = false;
  host.addReadinessCheck("controller", () => synced);
  const kc = new KubeConfig();
  try {
    if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
    else kc.loadFromDefault();
    applyConnectTimeout(kc, CONNECT_TIMEOUT_MS);
    await Promise.race([
      kc.makeApiClient(VersionApi).getCode(),
      new Promise((_r, reject) =>
        setTimeout(
          () =>
            reject(new VersoError("CONTROLLER_NO_CLUSTER", "no answer from the apiserver in 5s")),
          5_000,
        ).unref(),
      ),
    ]);
  } catch (error) {
    log.warn("no cluster reachable: the controller is off, serving admission only", { error });
    synced = true; // readiness must not wait for a controller that is not coming
    return undefined;
  }
  const kube = createKubeApi(kc, options.identity);
  const hub = createHub();
  const auth = createAuthenticator((token, audiences) => kube.review(token, audiences));
  const metrics =
    options.metricsSource === "prometheus" && options.prometheusUrl
      ? createPrometheusSource(options.prometheusUrl)
      : createBuiltinSource(log);
  let controller: Controller;
  try {
    controller = await start({
      kc,
      kube,
      log,
      namespace: host.namespace,
      identity: options.identity,
      metrics,
      scaleDownDelayMs: options.scaleDownDelayMs,
      hub,
      notifier:
        options.notifyUrls.length > 0 || options.notifySlackUrl
          ? createNotifier({
              log,
              clock: systemClock,
              urls: options.notifyUrls,
              slackUrl: options.notifySlackUrl,
            })
          : undefined,
      releaseMetrics: createReleaseMetrics(host.registry),
    });
  } catch (error) {
    log.error("controller failed to start: serving admission only", { error });
    synced = true; // readiness must not wait for a controller that is not coming
    return undefined;
  }
  // Mounted once the first tables exist: before that a proxy gets 404 and retries. The streams
  // end when the listener closes: until then (the drain delay) they are served and kept current.
  const closing = new AbortController();
  host.onListenerClose(() => closing.abort());
  host.mount("/", routesRouter({ hub, auth, log, closing: closing.signal }));
  synced = true;
  new Gauge({
    name: "verso_controller_route_subscribers",
    help: "Open route streams on this replica.",
    registers: [host.registry],
    collect() {
      this.set(hub.subscribers());
    },
  });
  new Gauge({
    name: "verso_controller_review_cache_entries",
    help: "TokenReview answers cached for route-stream callers (bounded; see docs/controller.md).",
    registers: [host.registry],
    collect() {
      this.set(auth.cached());
    },
  });
  new Gauge({
    name: "verso_pods_not_injected",
    help: "Pods of a tracked app in an opted-in namespace running without the Verso proxy (created while the webhook was unavailable): outside the release until restarted.",
    labelNames: ["namespace", "app"],
    registers: [host.registry],
    collect() {
      // Rebuilt on every scrape from the watches' caches: an app deleted since has no series.
      this.reset();
      for (const c of controller.notInjected()) {
        this.set({ namespace: c.namespace, app: c.app }, c.pods);
      }
    },
  });
  new Gauge({
    name: "verso_controller_leader",
    help: "1 when this replica holds the controller Lease.",
    registers: [host.registry],
    collect() {
      this.set(controller.isLeader() ? 1 : 0);
    },
  });
  log.info("controller started", {
    identity: options.identity,
    metrics: metrics.name,
    namespace: host.namespace,
  });
  return controller;
}
