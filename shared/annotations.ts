/**
 * The public annotation and label API (prefix `verso.dev/`). Names here are a contract with
 * users: add freely, rename nothing. Reference tables: README "Annotation reference",
 * docs/controller.md (release policy), docs/injection.md (tunables).
 */
export const PREFIX = "verso.dev/";

/** Labels the webhook writes on every injected pod (docs/design.md, "Identity"). */
export const LABEL = {
  app: "verso.dev/app",
  version: "verso.dev/version",
  color: "verso.dev/color",
  /** On a Namespace: opt in to injection. */
  injection: "verso.dev/injection",
} as const;

/** Annotations: identity overrides, injection tunables, release policy, status. */
export const ANNOTATION = {
  // identity
  app: "verso.dev/app",
  version: "verso.dev/version",
  color: "verso.dev/color",
  // injection (pod template)
  inject: "verso.dev/inject",
  injected: "verso.dev/injected",
  capture: "verso.dev/capture",
  ports: "verso.dev/ports",
  excludePorts: "verso.dev/exclude-ports",
  nativeSidecar: "verso.dev/native-sidecar",
  proxyCpu: "verso.dev/proxy-cpu",
  proxyMemory: "verso.dev/proxy-memory",
  proxyCpuLimit: "verso.dev/proxy-cpu-limit",
  proxyMemoryLimit: "verso.dev/proxy-memory-limit",
  logLevel: "verso.dev/log-level",
  /** Protocol per app port: `"9090=grpc,8080=http"` (`grpc`, `h2c`, `http`). */
  protocol: "verso.dev/protocol",
  /** `"true"`: the proxy writes an access log line per request (`--proxy-access-log` default). */
  accessLog: "verso.dev/access-log",
  // release policy (Deployment)
  strategy: "verso.dev/strategy",
  weight: "verso.dev/weight",
  promote: "verso.dev/promote",
  match: "verso.dev/match",
  sticky: "verso.dev/sticky",
  steps: "verso.dev/steps",
  interval: "verso.dev/interval",
  maxErrorRate: "verso.dev/max-error-rate",
  maxP99: "verso.dev/max-p99",
  maxP99Ratio: "verso.dev/max-p99-ratio",
  minRequests: "verso.dev/min-requests",
  progressDeadline: "verso.dev/progress-deadline",
  // capacity guard, levels, low traffic (Deployment)
  maxWeight: "verso.dev/max-weight",
  podShareFactor: "verso.dev/pod-share-factor",
  warnMargin: "verso.dev/warn-margin",
  confidence: "verso.dev/confidence",
  inconclusiveLimit: "verso.dev/inconclusive-limit",
  onInconclusive: "verso.dev/on-inconclusive",
  cutoffFailures: "verso.dev/cutoff-failures",
  // blue-green automation (Deployment)
  autoPromote: "verso.dev/auto-promote",
  postSwitchWindow: "verso.dev/post-switch-window",
  /** Blue-green automation: analysis intervals of the matched traffic the preview must pass. */
  previewAnalysis: "verso.dev/preview-analysis",
  scaleDownDelay: "verso.dev/scale-down-delay",
  // gates and notifications (Deployment); one `verso.dev/webhook-<kind>` per gate kind
  webhookTimeout: "verso.dev/webhook-timeout",
  /**
   * The name of a ConfigMap (the Deployment's namespace) whose `data` declares gates: keys are
   * gate kinds (`pre-rollout: URL`) plus `timeout`; a `verso.dev/webhook-*` annotation wins.
   */
  gatesConfigMap: "verso.dev/gates-configmap",
  notifyUrl: "verso.dev/notify-url",
  // manual control (Deployment)
  paused: "verso.dev/paused",
  abort: "verso.dev/abort",
  // controller output
  status: "verso.dev/status",
} as const;

/** Gate kinds (Flagger's webhook types, plus the blue-green smoke test), in the order they run. */
export const GATE_KINDS = [
  "pre-rollout",
  "smoke-test",
  "rollout",
  "confirm-promotion",
  "post-rollout",
  "rollback",
] as const;
export type GateKind = (typeof GATE_KINDS)[number];

/** `verso.dev/webhook-<kind>`: the URL the controller calls for that gate. */
export const webhookAnnotation = (kind: GateKind): string => `${PREFIX}webhook-${kind}`;

/** Label values: at most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric. */
export function toLabelValue(raw: string): string {
  const cleaned = raw.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 63);
  return cleaned.replace(/^[^A-Za-z0-9]+/, "").replace(/[^A-Za-z0-9]+$/, "");
}
