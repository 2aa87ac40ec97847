/**
 * The webhook process: flags -> frozen Config -> server -> (controller) -> wait for a signal.
 *
 *   npm run webhook -- --listen 127.0.0.1:9443 --tls-cert cert.pem --tls-key key.pem [--no-controller]
 */
import { createLogger } from "../shared/log.ts";
import { startServer } from "./admission/server.ts";
import { createRegistry } from "./admission/metrics.ts";
import { parseConfig, USAGE } from "./config.ts";
import type { Controller } from "./controller/io/controller.ts";

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return;
  }
  const parsed = parseConfig(argv, process.env);
  if (!parsed.ok) {
    process.stderr.write(`verso-webhook: ${parsed.error}\n`);
    process.exit(2);
  }
  const config = parsed.value;
  const logger = createLogger("webhook", config.logLevel);
  // Once, at start: the old spelling keeps working, and the log says what to write instead.
  for (const deprecation of config.deprecations) logger.warn(deprecation);
  const registry = createRegistry();
  const server = await startServer(config, { logger, registry });

  let controller: Controller | undefined;
  if (config.controller) {
    // Loaded only when wanted: admission alone never loads the Kubernetes client. Resolves to
    // undefined (and logs why) when no cluster is reachable: admission goes on alone.
    const { startControllerIn } = await import("./controller/index.ts");
    controller = await startControllerIn({
      options: config.controllerOptions,
      namespace: config.inject.namespace,
      logger,
      registry,
      mount: server.mount,
      addReadinessCheck: server.addReadinessCheck,
      onListenerClose: server.onListenerClose,
    });
  } else {
    logger.info("--no-controller: serving admission only");
  }

  let stopping = false;
  const shutdown = (signal: string, drainDelayMs: number): void => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    // The Lease goes at once, so a peer leads during the drain. The watches go on until the
    // server has closed: this replica streams tables until its listener closes, and they must
    // stay current meanwhile.
    void Promise.allSettled([controller?.resign(), server.close(drainDelayMs)])
      .then(() => controller?.stop())
      .catch((error: unknown) => logger.warn("controller stop failed", { error }))
      .finally(() => process.exit(0));
  };
  // SIGTERM is the kubelet's: drain first, as endpoints take a moment to drop this pod. SIGINT
  // is a person at a terminal, with nobody routing to this process but them.
  process.on("SIGTERM", () => shutdown("SIGTERM", config.drainDelayMs));
  process.on("SIGINT", () => shutdown("SIGINT", 0));
}

main().catch((e: unknown) => {
  createLogger("webhook").error("webhook failed to start", { err: e });
  process.exit(1);
});
