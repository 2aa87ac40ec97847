/**
 * The proxy: flags/env -> frozen Config -> wire the table store, metrics, the inbound proxy,
 * the admin server and the table source (file or controller stream) -> listen. SIGTERM drains.
 * Runs on Bun (`bun sidecar/main.ts`); the listeners are Bun.serve.
 */
import { readFileSync } from "node:fs";
import { createLogger } from "../shared/log.ts";
import { parseConfig, USAGE, type Config } from "./config.ts";
import { createAccessLog } from "./access-log/access-log.ts";
import { stdoutSink } from "./access-log/stdout-sink.ts";
import { createAdminServer } from "./admin/server.ts";
import { watchRoutesFile } from "./config/file-source.ts";
import { subscribeRoutes } from "./config/stream-source.ts";
import { TableStore } from "./config/store.ts";
import { createMetrics } from "./metrics/metrics.ts";
import { createProxy, type Proxy } from "./proxy/server.ts";
import { createCutOff } from "./routing/cutoff.ts";
import type { Server } from "bun";

function readHopKey(cfg: Config): Buffer | undefined {
  if (!cfg.hopKeyFile) return undefined;
  const key = readFileSync(cfg.hopKeyFile);
  // A mounted Secret often ends with a newline someone typed; it is not part of the key.
  const trimmed = Buffer.from(key.toString("latin1").trim(), "latin1");
  if (trimmed.length < 16)
    throw new Error(`--hop-key-file: ${cfg.hopKeyFile} holds fewer than 16 bytes`);
  return trimmed;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const parsed = parseConfig(argv, process.env);
  if (!parsed.ok) {
    process.stderr.write(`verso-proxy: ${parsed.error}\n`);
    process.exit(2);
  }
  const cfg = parsed.value;
  const log = createLogger("verso-proxy", cfg.logLevel);
  const startedAt = Date.now();
  const metrics = createMetrics(cfg.appName, cfg.version, {
    accessLog: cfg.accessLog !== undefined,
  });
  const accessLog = cfg.accessLog
    ? createAccessLog({
        app: cfg.appName,
        version: cfg.version,
        color: cfg.color,
        includeQuery: cfg.accessLog.includeQuery,
        capacity: cfg.accessLog.bufferBytes,
        sink: stdoutSink(),
        onDrop: (lines) => metrics.accessLogDropped(lines),
      })
    : undefined;
  let fileKey: Buffer | undefined;
  try {
    fileKey = readHopKey(cfg);
  } catch (error) {
    log.error("cannot read the hop key file", { error });
    process.exit(2);
  }
  const cut = createCutOff(metrics, log);
  // `proxy` is assigned below, before any table can arrive (sources start after it).
  const store = new TableStore({
    app: cfg.appName,
    version: cfg.version,
    fileKey,
    allowDerivedKey: cfg.routes !== undefined,
    log,
    onChange: (t) => {
      metrics.setRevision(t.revision);
      cut.onTable(t);
      proxy.tableChanged(t);
      grpc?.tableChanged(store.grpc);
    },
  });
  let proxy: Proxy;
  let admin: Server<undefined>;
  // node:http2 costs its megabytes only in pods that have a gRPC port.
  const grpc = cfg.grpc
    ? (await import("./grpc/server.ts")).createGrpcProxy({
        listen: cfg.grpc.listen,
        app: cfg.grpc.app,
        version: cfg.version,
        versionHeader: cfg.versionHeader,
        store,
        metrics,
        log,
        cut,
      })
    : undefined;
  grpc?.server.once("error", (error: Error) => {
    log.error("cannot listen (grpc)", { error });
    process.exit(1);
  });
  let draining = false;
  try {
    proxy = createProxy({
      listen: cfg.listen,
      app: cfg.app,
      version: cfg.version,
      versionHeader: cfg.versionHeader,
      idleTimeoutMs: cfg.idleTimeoutSeconds * 1000,
      clientIdleSeconds: cfg.clientIdleSeconds,
      store,
      metrics,
      log,
      accessLog,
      cut,
    });
    admin = createAdminServer({
      listen: cfg.admin,
      app: cfg.app,
      store,
      metrics,
      probes: cfg.probes,
      tableWaitMs: cfg.tableWaitSeconds * 1000,
      startedAt,
      isDraining: () => draining,
    });
  } catch (error) {
    log.error("cannot listen", { error });
    process.exit(1);
  }
  const source = cfg.routes
    ? watchRoutesFile(cfg.routes, store, log)
    : subscribeRoutes({
        controllerUrl: cfg.controllerUrl!,
        namespace: cfg.namespace!,
        app: cfg.appName,
        tokenFile: cfg.tokenFile,
        ca: cfg.controllerCa ? readFileSync(cfg.controllerCa, "utf8") : cfg.controllerCaPem,
        store,
        log,
      });
  log.info("proxy listening", {
    listen: `${cfg.listen.host}:${proxy.server.port}`,
    app: `${cfg.app.host}:${cfg.app.port}`,
    admin: `${cfg.admin.host}:${admin.port}`,
    grpc: cfg.grpc
      ? {
          listen: `${cfg.grpc.listen.host}:${cfg.grpc.listen.port}`,
          app: `${cfg.grpc.app.host}:${cfg.grpc.app.port}`,
        }
      : null,
    appName: cfg.appName,
    version: cfg.version,
    accessLog: cfg.accessLog !== undefined,
    runtime: `bun ${Bun.version}`,
    source: cfg.routes ? { file: cfg.routes } : { controller: cfg.controllerUrl },
  });

  const drain = (signal: string): void => {
    if (draining) return;
    draining = true;
    const inFlight = (): number => proxy.inFlight() + (grpc?.inFlight() ?? 0);
    log.info("draining", { signal, inFlight: inFlight(), graceSeconds: cfg.drainSeconds });
    // /ready turns 503 and every answer closes its connection, but the listener stays open
    // for the drain delay: a client routed here by a rule not yet withdrawn is still served
    // (by a peer of this version when the app has gone, server.ts "app-gone").
    proxy.startDrain();
    const listening = Date.now() + cfg.drainDelaySeconds * 1000;
    const deadline = listening + cfg.drainSeconds * 1000;
    let open = true;
    const tick = setInterval(() => {
      const now = Date.now();
      if (open && now < listening) return;
      if (open) {
        open = false;
        proxy.stopListening();
        grpc?.startDrain();
        source.close();
      }
      const left = inFlight();
      if (left === 0 || now >= deadline) {
        clearInterval(tick);
        if (left > 0)
          log.warn("drain deadline reached; exiting with requests in flight", { inFlight: left });
        else log.info("drained");
        void admin.stop(true);
        // The last requests' lines, if stdout takes them within a second: exiting drops them.
        void (accessLog?.drain(1000) ?? Promise.resolve(true)).then(() => process.exit(0));
      }
    }, 100);
  };
  process.once("SIGTERM", () => drain("SIGTERM"));
  process.once("SIGINT", () => drain("SIGINT"));
}

void main();
