/**
 * The contract between the webhook (which writes the proxy container), the proxy (which reads
 * it) and the local harness (which runs pods as processes). Env in a pod, flags on a laptop:
 * every flag of `npm run sidecar` has one env var here.
 */
export const PROXY_CONTAINER = "verso-proxy";
export const INIT_CONTAINER = "verso-init";

/** Fixed ports inside every injected pod. */
export const PROXY_PORT = {
  /** Inbound traffic (captured or targeted by the Service in `port` mode). */
  inbound: 15006,
  /** Admin: /metrics, /healthz, /ready, /app-health/... (rewritten kubelet probes). */
  admin: 15020,
  /** Inbound h2c/gRPC (each call routed on its own), when the pod has a gRPC port. */
  grpc: 15007,
} as const;

/** The named port of the proxy's inbound listener (Services target it in `port` capture mode). */
export const PROXY_PORT_NAME = "verso-http";
export const ADMIN_PORT_NAME = "verso-admin";
/** The named port of the proxy's gRPC listener (`port` capture mode targets it). */
export const GRPC_PORT_NAME = "verso-grpc";

/** Projected service-account token the proxy shows the controller (audience `verso`). */
export const TOKEN_AUDIENCE = "verso";
export const TOKEN_MOUNT_DIR = "/var/run/secrets/verso";
export const TOKEN_PATH = `${TOKEN_MOUNT_DIR}/token`;

/**
 * The proxy's runtime settings, injected as container env so the image, `make demo` and
 * bench/proxy.ts run the same process. The proxy runs on Bun: `--smol` (given through
 * BUN_OPTIONS, Bun's env for its own flags) makes JavaScriptCore collect more eagerly, which
 * measured 4 MB lower at saturation for the same req/s (docs/routing.md, "Memory").
 */
export const PROXY_RUNTIME_ENV: Readonly<Record<string, string>> = {
  BUN_OPTIONS: "--smol",
};

export const ENV = {
  /** host:port the proxy accepts inbound traffic on, e.g. `0.0.0.0:15006`. */
  listen: "VERSO_LISTEN",
  /** host:port of the local app, e.g. `127.0.0.1:8080`. */
  app: "VERSO_APP",
  /** host:port of the admin server, e.g. `0.0.0.0:15020`. */
  admin: "VERSO_ADMIN",
  appName: "VERSO_APP_NAME",
  version: "VERSO_VERSION",
  /** Routing table file; when set the proxy does not subscribe to the controller. */
  routes: "VERSO_ROUTES",
  /** Base URL of the controller's route stream, e.g. `https://verso-webhook.verso-system.svc`. */
  controllerUrl: "VERSO_CONTROLLER_URL",
  /** CA bundle to verify the controller's certificate. */
  controllerCa: "VERSO_CONTROLLER_CA",
  /**
   * The same CA bundle as PEM text. The webhook injects this one: a pod cannot mount the
   * controller namespace's Secret, so the CA travels inline. VERSO_CONTROLLER_CA wins if both.
   */
  controllerCaPem: "VERSO_CONTROLLER_CA_PEM",
  tokenFile: "VERSO_TOKEN_FILE",
  namespace: "VERSO_NAMESPACE",
  podName: "VERSO_POD_NAME",
  podIp: "VERSO_POD_IP",
  logLevel: "VERSO_LOG_LEVEL",
  /** `iptables` or `port`. */
  capture: "VERSO_CAPTURE",
  /** Comma-separated app ports the init step redirects to the proxy (iptables mode). */
  capturePorts: "VERSO_CAPTURE_PORTS",
  /** host:port of the proxy's h2c/gRPC listener, e.g. `0.0.0.0:15007`; unset: no gRPC. */
  grpcListen: "VERSO_GRPC_LISTEN",
  /** host:port of the local app's gRPC port, e.g. `127.0.0.1:9090`. */
  grpcApp: "VERSO_GRPC_APP",
  /** Comma-separated gRPC app ports the init step redirects to VERSO_GRPC_LISTEN's port. */
  captureGrpcPorts: "VERSO_CAPTURE_GRPC_PORTS",
  /** JSON: rewritten kubelet probes, see ProbeMap. */
  probes: "VERSO_PROBES",
  /** File holding the HMAC key for hop tokens (overrides the table's key). */
  hopKeyFile: "VERSO_HOP_KEY_FILE",
  /** `false` hides the x-verso-version response header. */
  versionHeader: "VERSO_VERSION_HEADER",
  /** Seconds the proxy waits for in-flight requests after SIGTERM (default 20). */
  drainSeconds: "VERSO_DRAIN_SECONDS",
  /**
   * Seconds the proxy keeps accepting after SIGTERM (default 5), every answer with
   * `Connection: close`, while kube-proxy and the peers' tables let go of the pod.
   */
  drainDelaySeconds: "VERSO_DRAIN_DELAY_SECONDS",
  /**
   * Seconds an upstream socket may stay silent before the request is failed (default 0: no
   * limit, so long polls and quiet event streams live as long as the app keeps them).
   */
  idleTimeoutSeconds: "VERSO_IDLE_TIMEOUT_SECONDS",
  /**
   * Seconds an idle client keep-alive connection is kept open (default 65, at most 255: Bun's
   * limit). A connection with a response in progress is never cut, however quiet.
   */
  clientIdleSeconds: "VERSO_CLIENT_IDLE_SECONDS",
  /** Seconds /ready waits for a first routing table before using the no-release default (10). */
  tableWaitSeconds: "VERSO_TABLE_WAIT_SECONDS",
  /** The pod's blue-green colour (`verso.dev/color`), for the access log; unset: none. */
  color: "VERSO_COLOR",
  /** `true`: one JSON line per request on the proxy's stdout (docs/observability.md). */
  accessLog: "VERSO_ACCESS_LOG",
  /** `true`: the access log's `path` keeps the query string (default: path only). */
  accessLogQuery: "VERSO_ACCESS_LOG_QUERY",
  /**
   * Bytes of access log lines held while stdout is slow (default 1 MiB); beyond it lines are
   * dropped and counted (verso_access_log_dropped_total), never waited for.
   */
  accessLogBufferBytes: "VERSO_ACCESS_LOG_BUFFER_BYTES",
} as const;

/**
 * Kubelet probes rewritten to the proxy's admin port (as Istio does), so a probe always
 * reaches *this* pod's app and is never routed to a peer of another version.
 * Key: admin path, e.g. `/app-health/web/readyz`.
 */
export type ProbeTarget =
  | {
      kind: "http";
      port: number;
      path: string;
      scheme: "HTTP" | "HTTPS";
      headers?: { name: string; value: string }[];
    }
  | { kind: "tcp"; port: number };
export type ProbeMap = Record<string, ProbeTarget>;
export const PROBE_PATH_PREFIX = "/app-health/";
