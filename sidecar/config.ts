/**
 * Flags and env, parsed once into a frozen Config (flags win over env). Every flag has the env
 * var named in shared/pod-env.ts, which is what the webhook writes into pods.
 */
import { err, ok, type Result } from "../shared/errors.ts";
import { isLogLevel, type LogLevel } from "../shared/log.ts";
import { splitHostPort } from "../shared/net.ts";
import { ENV, PROXY_PORT, TOKEN_PATH, type ProbeMap } from "../shared/pod-env.ts";
import { parseProbeMap } from "./admin/probes.ts";

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface Config {
  readonly listen: HostPort;
  readonly app: HostPort;
  readonly admin: HostPort;
  /** h2c/gRPC listener and the app's gRPC port; both unset: no gRPC. */
  readonly grpc: { listen: HostPort; app: HostPort } | undefined;
  readonly appName: string;
  readonly version: string;
  /** Set: file mode. Unset: subscribe to the controller. */
  readonly routes: string | undefined;
  readonly controllerUrl: string | undefined;
  /** CA file path (wins) ... */
  readonly controllerCa: string | undefined;
  /** ... or the PEM itself, as the webhook injects it (VERSO_CONTROLLER_CA_PEM). */
  readonly controllerCaPem: string | undefined;
  readonly tokenFile: string;
  readonly namespace: string | undefined;
  readonly hopKeyFile: string | undefined;
  readonly versionHeader: boolean;
  readonly logLevel: LogLevel;
  readonly drainSeconds: number;
  readonly drainDelaySeconds: number;
  readonly idleTimeoutSeconds: number;
  readonly clientIdleSeconds: number;
  readonly tableWaitSeconds: number;
  readonly probes: ProbeMap;
  /** The pod's blue-green colour (verso.dev/color), written on access log lines. */
  readonly color: string | undefined;
  /** Undefined: no access log (the default). */
  readonly accessLog: AccessLogConfig | undefined;
}

export interface AccessLogConfig {
  /** Keep the query string in the logged path. */
  readonly includeQuery: boolean;
  /** Characters of lines held while stdout is slow; beyond it lines are dropped and counted. */
  readonly bufferBytes: number;
}

/** 1 MiB: ~3,000 lines, a few seconds of a busy pod's traffic while stdout is stalled. */
export const ACCESS_LOG_BUFFER_BYTES = 1024 * 1024;

/** flag name -> env name; the flag wins. */
const FLAGS = {
  listen: ENV.listen,
  app: ENV.app,
  admin: ENV.admin,
  "grpc-listen": ENV.grpcListen,
  "grpc-app": ENV.grpcApp,
  "app-name": ENV.appName,
  version: ENV.version,
  routes: ENV.routes,
  "controller-url": ENV.controllerUrl,
  "controller-ca": ENV.controllerCa,
  "controller-ca-pem": ENV.controllerCaPem,
  "token-file": ENV.tokenFile,
  namespace: ENV.namespace,
  "hop-key-file": ENV.hopKeyFile,
  "version-header": ENV.versionHeader,
  "log-level": ENV.logLevel,
  "drain-seconds": ENV.drainSeconds,
  "drain-delay-seconds": ENV.drainDelaySeconds,
  "idle-timeout-seconds": ENV.idleTimeoutSeconds,
  "client-idle-seconds": ENV.clientIdleSeconds,
  "table-wait-seconds": ENV.tableWaitSeconds,
  probes: ENV.probes,
  color: ENV.color,
  "access-log": ENV.accessLog,
  "access-log-query": ENV.accessLogQuery,
  "access-log-buffer-bytes": ENV.accessLogBufferBytes,
} as const;
type Flag = keyof typeof FLAGS;

export const USAGE = `usage: npm run sidecar -- --app-name NAME --version V [--routes FILE | --controller-url URL --namespace NS]
  ${Object.entries(FLAGS)
    .map(([f, e]) => `--${f} (${e})`)
    .join("\n  ")}`;

/**
 * `--flag value` and `--flag=value`, every flag a string, unknown flags and positionals refused.
 * Hand-written rather than node:util's parseArgs: on Bun, node:util alone costs ~1 MB of RSS
 * in every pod for a loop this size (docs/routing.md, "Memory").
 */
export function readFlags(argv: readonly string[]): Result<Record<string, string>> {
  const values: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) return err(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (!Object.hasOwn(FLAGS, name)) return err(`unknown option --${name}`);
    if (eq !== -1) values[name] = arg.slice(eq + 1);
    else if (i + 1 < argv.length) values[name] = argv[++i]!;
    else return err(`--${name} needs a value`);
  }
  return ok(values);
}

function seconds(name: string, text: string | undefined, dflt: number): Result<number> {
  if (text === undefined || text === "") return ok(dflt);
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) return err(`--${name}: must be a number of seconds >= 0`);
  return ok(n);
}

function addr(name: string, text: string | undefined, dflt: string): Result<HostPort> {
  const hp = splitHostPort(text ?? dflt);
  return hp ? ok(hp) : err(`--${name}: ${JSON.stringify(text)} is not host:port`);
}

function bool(name: string, text: string | undefined, dflt: boolean): Result<boolean> {
  if (text === undefined) return ok(dflt);
  const t = text.toLowerCase();
  if (t !== "true" && t !== "false") return err(`--${name}: use true or false`);
  return ok(t === "true");
}

function parseAccessLog(
  on: string | undefined,
  query: string | undefined,
  buffer: string | undefined,
): Result<AccessLogConfig | undefined> {
  const enabled = bool("access-log", on, false);
  const includeQuery = bool("access-log-query", query, false);
  if (!enabled.ok) return enabled;
  if (!includeQuery.ok) return includeQuery;
  const bufferBytes = buffer === undefined ? ACCESS_LOG_BUFFER_BYTES : Number(buffer);
  // Below a few lines' worth every burst would drop; the cap keeps a typo from eating the pod.
  if (!Number.isInteger(bufferBytes) || bufferBytes < 1024 || bufferBytes > 64 * 1024 * 1024)
    return err(`--access-log-buffer-bytes: use a whole number from 1024 to 67108864`);
  if (!enabled.value) return ok(undefined);
  return ok({ includeQuery: includeQuery.value, bufferBytes });
}

/** Both or neither: a gRPC listener needs the app port it forwards to. */
function parseGrpc(listen: string | undefined, app: string | undefined): Result<Config["grpc"]> {
  if (listen === undefined && app === undefined) return ok(undefined);
  if (listen === undefined || app === undefined)
    return err("--grpc-listen and --grpc-app go together (the listener and the app's gRPC port)");
  const l = addr("grpc-listen", listen, listen);
  const a = addr("grpc-app", app, app);
  if (!l.ok) return l;
  if (!a.ok) return a;
  return ok({ listen: l.value, app: a.value });
}

export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Result<Config> {
  const parsed = readFlags(argv);
  if (!parsed.ok) return err(`${parsed.error}\n${USAGE}`);
  const values = parsed.value;
  const get = (f: Flag): string | undefined => {
    const v = values[f] ?? env[FLAGS[f]];
    return v === "" ? undefined : v;
  };
  const listen = addr("listen", get("listen"), `0.0.0.0:${PROXY_PORT.inbound}`);
  const app = addr("app", get("app"), "127.0.0.1:8080");
  const admin = addr("admin", get("admin"), `0.0.0.0:${PROXY_PORT.admin}`);
  if (!listen.ok) return listen;
  if (!app.ok) return app;
  if (!admin.ok) return admin;
  const grpc = parseGrpc(get("grpc-listen"), get("grpc-app"));
  if (!grpc.ok) return grpc;
  const appName = get("app-name");
  const version = get("version");
  if (!appName) return err(`--app-name (or ${ENV.appName}) is required`);
  if (!version) return err(`--version (or ${ENV.version}) is required`);
  const routes = get("routes");
  const controllerUrl = get("controller-url");
  const namespace = get("namespace");
  if (!routes) {
    if (!controllerUrl) return err(`either --routes FILE or --controller-url URL is required`);
    if (!/^https?:\/\//.test(controllerUrl))
      return err(`--controller-url: use http:// or https://`);
    if (!namespace)
      return err(`--namespace (or ${ENV.namespace}) is required with --controller-url`);
  }
  const vh = (get("version-header") ?? "true").toLowerCase();
  if (vh !== "true" && vh !== "false") return err(`--version-header: use true or false`);
  const level = get("log-level") ?? "info";
  if (!isLogLevel(level))
    return err(`--log-level: unsupported ${level}, use debug, info, warn or error`);
  const drain = seconds("drain-seconds", get("drain-seconds"), 20);
  // With a native sidecar the kubelet signals the proxy once the app has exited, while the
  // endpoint may still be in kube-proxy's rules and in peers' tables for a second or two.
  const drainDelay = seconds("drain-delay-seconds", get("drain-delay-seconds"), 5);
  // 0: no upstream idle limit, so a long poll or a quiet event stream is never cut by us.
  const idle = seconds("idle-timeout-seconds", get("idle-timeout-seconds"), 0);
  const wait = seconds("table-wait-seconds", get("table-wait-seconds"), 10);
  const clientIdle = seconds("client-idle-seconds", get("client-idle-seconds"), 65);
  if (!clientIdle.ok) return clientIdle;
  // Bun.serve's idleTimeout is a whole number of seconds, 1..255 (0 would never close).
  if (!Number.isInteger(clientIdle.value) || clientIdle.value < 1 || clientIdle.value > 255)
    return err(`--client-idle-seconds: use a whole number from 1 to 255`);
  if (!drain.ok) return drain;
  if (!drainDelay.ok) return drainDelay;
  if (!idle.ok) return idle;
  if (!wait.ok) return wait;
  const probes = parseProbeMap(get("probes"));
  if (!probes.ok) return probes;
  const accessLog = parseAccessLog(
    get("access-log"),
    get("access-log-query"),
    get("access-log-buffer-bytes"),
  );
  if (!accessLog.ok) return accessLog;
  return ok(
    Object.freeze({
      listen: listen.value,
      app: app.value,
      admin: admin.value,
      grpc: grpc.value,
      appName,
      version,
      routes,
      controllerUrl,
      controllerCa: get("controller-ca"),
      controllerCaPem: get("controller-ca-pem"),
      tokenFile: get("token-file") ?? TOKEN_PATH,
      namespace,
      hopKeyFile: get("hop-key-file"),
      versionHeader: vh === "true",
      logLevel: level,
      drainSeconds: drain.value,
      drainDelaySeconds: drainDelay.value,
      idleTimeoutSeconds: idle.value,
      clientIdleSeconds: clientIdle.value,
      tableWaitSeconds: wait.value,
      probes: probes.value,
      color: get("color"),
      accessLog: accessLog.value,
    }),
  );
}
