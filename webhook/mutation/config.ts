/** What the mutation needs from the webhook's Config (flags/env, parsed once in main). */
import type { LogLevel } from "../../shared/log.ts";

export type CaptureMode = "iptables" | "port";

export interface ResourceList {
  readonly cpu: string;
  readonly memory: string;
}

export interface ProxyResources {
  readonly requests: ResourceList;
  readonly limits: ResourceList;
}

export interface InjectConfig {
  readonly proxyImage: string;
  readonly capture: CaptureMode;
  readonly nativeSidecar: boolean;
  /** Where proxies reach the controller's route stream. */
  readonly controllerUrl: string;
  /** PEM of the CA that signed the controller's certificate, injected inline; none: unset. */
  readonly controllerCaPem: string | undefined;
  /** The webhook's own namespace: never injected. */
  readonly namespace: string;
  readonly proxyLogLevel: LogLevel;
  /** Proxies write an access log unless a pod says otherwise (verso.dev/access-log). */
  readonly proxyAccessLog: boolean;
  readonly resources: ProxyResources;
}

export const DEFAULT_RESOURCES: ProxyResources = Object.freeze({
  // Measured on Bun (docs/routing.md, "Memory"): ~33 MB idle, ~46 MB saturated (HTTP), 62 MB
  // with four 100 MB uploads at once, 65-69 MB with gRPC at full load; the limit has room.
  requests: Object.freeze({ cpu: "50m", memory: "48Mi" }),
  limits: Object.freeze({ cpu: "500m", memory: "128Mi" }),
});

export const DEFAULT_INJECT: InjectConfig = Object.freeze({
  proxyImage: "verso/sidecar:0.1.0",
  capture: "iptables",
  nativeSidecar: true,
  controllerUrl: "https://verso-webhook.verso-system.svc:443",
  controllerCaPem: undefined,
  namespace: "verso-system",
  proxyLogLevel: "info",
  proxyAccessLog: false,
  resources: DEFAULT_RESOURCES,
});

export const isCaptureMode = (v: string): v is CaptureMode => v === "iptables" || v === "port";

/** Kubernetes resource quantity (the common forms: 100m, 0.5, 64Mi, 1G, 1e3). */
export const isQuantity = (v: string): boolean =>
  /^[+]?(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+)?$/.test(v);
