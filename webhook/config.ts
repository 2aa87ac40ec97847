/**
 * The webhook's Config: flags, else env (`VERSO_WEBHOOK_<FLAG>` in SCREAMING_SNAKE, e.g.
 * VERSO_WEBHOOK_PROXY_IMAGE), else the default. Parsed once in main, frozen, passed down.
 */
import { parseArgs } from "node:util";
import { err, ok, type Result } from "../shared/errors.ts";
import { isLogLevel, type LogLevel } from "../shared/log.ts";
import { splitHostPort } from "../shared/net.ts";
import { parseFlagDuration, parseRenamedMsFlag, type FlagDuration } from "./flagDuration.ts";
import { DEFAULT_INJECT, type InjectConfig, isCaptureMode, isQuantity } from "./mutation/config.ts";
import {
  CONTROLLER_FLAGS,
  CONTROLLER_USAGE,
  parseControllerOptions,
  type ControllerOptions,
} from "./controller/options.ts";

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface WebhookConfig {
  readonly listen: { readonly host: string; readonly port: number };
  /** Undefined: make a self-signed pair in `selfSignedDir` for local use. */
  readonly tls: TlsFiles | undefined;
  readonly selfSignedDir: string;
  /** Run the controller in this process (`--no-controller` turns it off). */
  readonly controller: boolean;
  readonly logLevel: LogLevel;
  readonly maxBodyBytes: number;
  /** CA bundle file injected into proxies as VERSO_CONTROLLER_CA_PEM (read once at start). */
  readonly controllerCaFile: string | undefined;
  /** Fallback poll for certificate changes, for filesystems where fs.watch misses events. */
  readonly tlsPollMs: number;
  /** After SIGTERM: how long to answer /readyz 503 while still serving, before closing. */
  readonly drainDelayMs: number;
  readonly inject: InjectConfig;
  /** The controller's own flags (webhook/controller/index.ts). */
  readonly controllerOptions: ControllerOptions;
  /** Old flag spellings that were used, each with its new one: logged once at start. */
  readonly deprecations: readonly string[];
}

export const DEFAULT_LISTEN = "127.0.0.1:9443";
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

const OPTIONS = {
  listen: { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "self-signed-dir": { type: "string" },
  "no-controller": { type: "boolean" },
  "log-level": { type: "string" },
  "proxy-image": { type: "string" },
  capture: { type: "string" },
  "native-sidecar": { type: "string" },
  "controller-url": { type: "string" },
  "controller-ca": { type: "string" },
  namespace: { type: "string" },
  "proxy-log-level": { type: "string" },
  "proxy-access-log": { type: "string" },
  "proxy-cpu": { type: "string" },
  "proxy-memory": { type: "string" },
  "proxy-cpu-limit": { type: "string" },
  "proxy-memory-limit": { type: "string" },
  "tls-poll-interval": { type: "string" },
  /** Deprecated: --tls-poll-interval (a duration). */
  "tls-poll-interval-ms": { type: "string" },
  "drain-delay": { type: "string" },
  ...CONTROLLER_FLAGS,
} as const;

type Flag = keyof typeof OPTIONS;
type Env = Readonly<Record<string, string | undefined>>;

export const envName = (flag: string): string =>
  `VERSO_WEBHOOK_${flag.replace(/-/g, "_").toUpperCase()}`;

export function parseConfig(argv: readonly string[], env: Env): Result<WebhookConfig> {
  let values: Partial<Record<Flag, string | boolean>>;
  try {
    values = parseArgs({
      args: [...argv],
      options: OPTIONS,
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (cause) {
    return err(`${(cause as Error).message} (run with --help for the flags)`);
  }
  const get = (flag: Flag): string | undefined => {
    const v = values[flag];
    if (typeof v === "string") return v;
    const e = env[envName(flag)];
    return e === undefined || e === "" ? undefined : e;
  };

  const listenText = get("listen") ?? DEFAULT_LISTEN;
  const listen = splitHostPort(listenText);
  if (!listen) return err(`--listen ${listenText}: use host:port, e.g. 127.0.0.1:9443`);

  const certFile = get("tls-cert");
  const keyFile = get("tls-key");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    return err(
      "--tls-cert and --tls-key go together: give both, or neither for a self-signed pair",
    );
  }

  const logLevel = get("log-level") ?? "info";
  if (!isLogLevel(logLevel)) return err(`--log-level ${logLevel}: use debug, info, warn or error`);
  const proxyLogLevel = get("proxy-log-level") ?? DEFAULT_INJECT.proxyLogLevel;
  if (!isLogLevel(proxyLogLevel)) {
    return err(`--proxy-log-level ${proxyLogLevel}: use debug, info, warn or error`);
  }
  const accessLogText = get("proxy-access-log") ?? String(DEFAULT_INJECT.proxyAccessLog);
  if (accessLogText !== "true" && accessLogText !== "false") {
    return err(`--proxy-access-log ${accessLogText}: use true or false`);
  }
  const capture = get("capture") ?? DEFAULT_INJECT.capture;
  if (!isCaptureMode(capture)) return err(`--capture ${capture}: use iptables or port`);
  const nativeText = get("native-sidecar") ?? String(DEFAULT_INJECT.nativeSidecar);
  if (nativeText !== "true" && nativeText !== "false") {
    return err(`--native-sidecar ${nativeText}: use true or false`);
  }
  const controllerUrl = get("controller-url") ?? DEFAULT_INJECT.controllerUrl;
  if (!/^https?:\/\/[^\s/]+/.test(controllerUrl)) {
    return err(
      `--controller-url ${controllerUrl}: use a URL such as https://verso-webhook.verso-system.svc:443`,
    );
  }

  const quantities: Record<string, string> = {};
  const defaults = DEFAULT_INJECT.resources;
  const pairs: [Flag, string][] = [
    ["proxy-cpu", defaults.requests.cpu],
    ["proxy-memory", defaults.requests.memory],
    ["proxy-cpu-limit", defaults.limits.cpu],
    ["proxy-memory-limit", defaults.limits.memory],
  ];
  for (const [flag, fallback] of pairs) {
    const q = get(flag) ?? fallback;
    if (!isQuantity(q))
      return err(`--${flag} ${q}: use a Kubernetes quantity such as 100m or 64Mi`);
    quantities[flag] = q;
  }

  const deprecations: string[] = [];
  const duration = (parsed: Result<FlagDuration>): Result<number> => {
    if (!parsed.ok) return parsed;
    if (parsed.value.deprecation) deprecations.push(parsed.value.deprecation);
    return ok(parsed.value.ms);
  };

  const pollText = get("tls-poll-interval");
  const pollMsText = get("tls-poll-interval-ms");
  if (pollText !== undefined && pollMsText !== undefined) {
    return err("--tls-poll-interval-ms is the old name of --tls-poll-interval: give only one");
  }
  const tlsPoll = duration(
    pollMsText !== undefined
      ? parseRenamedMsFlag("tls-poll-interval-ms", "tls-poll-interval", pollMsText)
      : parseFlagDuration("tls-poll-interval", pollText ?? "10s"),
  );
  if (!tlsPoll.ok) return tlsPoll;
  if (tlsPoll.value < 100) {
    return err(`--tls-poll-interval ${tlsPoll.value}ms: use at least 100ms`);
  }

  const drainDelay = duration(parseFlagDuration("drain-delay", get("drain-delay") ?? "5s"));
  if (!drainDelay.ok) return drainDelay;

  const inject: InjectConfig = Object.freeze({
    proxyImage: get("proxy-image") ?? DEFAULT_INJECT.proxyImage,
    capture,
    nativeSidecar: nativeText === "true",
    controllerUrl,
    controllerCaPem: undefined,
    namespace: get("namespace") ?? env.POD_NAMESPACE ?? DEFAULT_INJECT.namespace,
    proxyLogLevel,
    proxyAccessLog: accessLogText === "true",
    resources: Object.freeze({
      requests: Object.freeze({
        cpu: quantities["proxy-cpu"]!,
        memory: quantities["proxy-memory"]!,
      }),
      limits: Object.freeze({
        cpu: quantities["proxy-cpu-limit"]!,
        memory: quantities["proxy-memory-limit"]!,
      }),
    }),
  });

  const controllerOptions = parseControllerOptions(get, env, (d) => deprecations.push(d));
  if (!controllerOptions.ok) return controllerOptions;

  return ok(
    Object.freeze({
      listen: Object.freeze(listen),
      tls: certFile && keyFile ? Object.freeze({ certFile, keyFile }) : undefined,
      selfSignedDir: get("self-signed-dir") ?? ".verso/tls",
      controller: values["no-controller"] !== true && env[envName("no-controller")] !== "true",
      logLevel,
      maxBodyBytes: MAX_BODY_BYTES,
      tlsPollMs: tlsPoll.value,
      drainDelayMs: drainDelay.value,
      controllerCaFile: get("controller-ca"),
      inject,
      controllerOptions: controllerOptions.value,
      deprecations: Object.freeze(deprecations),
    }),
  );
}

export const USAGE = `npm run webhook -- [flags]   (each flag also reads env ${envName("<flag>")})
  DUR is a duration: 500ms, 5s, 10m, 1h30m (a bare number of seconds, or --tls-poll-interval-ms,
  still works but is deprecated and logged as such at start)
  --listen host:port            HTTPS address (default ${DEFAULT_LISTEN})
  --tls-cert FILE --tls-key FILE serving pair, re-read on change; omit both for self-signed
  --self-signed-dir DIR         where the self-signed pair is written (default .verso/tls)
  --no-controller               admission only
  --log-level LEVEL             debug|info|warn|error (default info)
  --proxy-image IMAGE           injected proxy image (default ${DEFAULT_INJECT.proxyImage})
  --capture MODE                iptables|port (default iptables)
  --native-sidecar BOOL         true: init container with restartPolicy Always (default true)
  --controller-url URL          how proxies reach the controller (default ${DEFAULT_INJECT.controllerUrl})
  --controller-ca FILE          CA of the controller's certificate, given to proxies inline
                                (cert-manager's ca.crt in the serving Secret)
  --namespace NS                own namespace, never injected (default $POD_NAMESPACE or verso-system)
  --proxy-log-level LEVEL       proxies' default log level (default info)
  --proxy-access-log BOOL       proxies write a JSON access log line per request on stdout
                                (default false; a pod's verso.dev/access-log wins)
  --drain-delay DUR             after SIGTERM, answer /readyz 503 but keep serving for DUR, then
                                stop accepting (default 5s; 0: stop at once)
  --tls-poll-interval DUR       also poll the serving pair for changes every DUR, for file
                                systems where change events are missed (default 10s, at least 100ms)
  --proxy-cpu Q --proxy-memory Q --proxy-cpu-limit Q --proxy-memory-limit Q
                                proxy resources (default 50m/48Mi requests, 500m/128Mi limits)
${CONTROLLER_USAGE}`;
