/**
 * decide(pod, namespace, config): inject, with a plan, or skip, with every reason that applies.
 * Pure: no I/O, no clock, no env.
 *
 *   namespace is kube-system or the webhook's own   -> skip protected_namespace
 *   annotation or label verso.dev/inject: "false"  -> skip opted_out
 *   spec.hostNetwork                               -> skip host_network
 *   istio-proxy/linkerd-proxy (or their init) in pod -> skip other_mesh
 *   verso-proxy already in the pod (re-invocation) -> skip already_injected
 *   (any of the above: stop here, all that apply are reported)
 *   a verso.dev/ tunable does not parse            -> skip invalid_annotation
 *   no app name from annotation or labels          -> skip no_app_identity
 *   an app port is 15006 or 15020                  -> skip port_conflict
 *   no app port left after exclusions              -> skip no_ports
 *   otherwise                                      -> inject
 */
import { ANNOTATION } from "../../shared/annotations.ts";
import type { LogLevel } from "../../shared/log.ts";
import { INIT_CONTAINER, PROXY_CONTAINER, type ProbeMap } from "../../shared/pod-env.ts";
import type { CaptureMode, InjectConfig, ProxyResources } from "./config.ts";
import { deriveIdentity } from "./identity.ts";
import type { Pod } from "./pod.ts";
import { appPorts, declaredTcpPorts, isProxyPort } from "./ports.ts";
import { planProbes, type ProbeRewrite } from "./probes.ts";
import type { ReasonCode } from "./reasons.ts";
import { parseTunables } from "./tunables.ts";

export const PROTECTED_NAMESPACES: readonly string[] = ["kube-system"];
export const OTHER_MESH_CONTAINERS: readonly string[] = [
  "istio-proxy",
  "istio-init",
  "istio-validation",
  "linkerd-proxy",
  "linkerd-init",
];

export interface Plan {
  identity: { app: string; version: string; color: string | undefined };
  /** App ports in order; the first is the one the proxy routes to. */
  ports: number[];
  /** Ports the init step redirects to the proxy (empty in `port` capture). */
  capturePorts: number[];
  capture: CaptureMode;
  nativeSidecar: boolean;
  logLevel: LogLevel;
  resources: ProxyResources;
  probeRewrites: ProbeRewrite[];
  probes: ProbeMap;
}

export type Decision =
  { inject: true; plan: Plan } | { inject: false; reasons: ReasonCode[]; details: string[] };

const skip = (reasons: ReasonCode[], details: string[] = []): Decision => ({
  inject: false,
  reasons,
  details,
});

function containerNames(pod: Pod): string[] {
  return [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].map((c) => c.name);
}

export function decide(pod: Pod, namespace: string, config: InjectConfig): Decision {
  const annotations = pod.metadata?.annotations ?? {};
  const names = containerNames(pod);

  const gates: ReasonCode[] = [];
  if (PROTECTED_NAMESPACES.includes(namespace) || namespace === config.namespace) {
    gates.push("protected_namespace");
  }
  const optOut = annotations[ANNOTATION.inject] ?? pod.metadata?.labels?.[ANNOTATION.inject];
  if (optOut?.trim().toLowerCase() === "false") gates.push("opted_out");
  if (pod.spec.hostNetwork === true) gates.push("host_network");
  if (names.some((n) => OTHER_MESH_CONTAINERS.includes(n))) gates.push("other_mesh");
  if (names.includes(PROXY_CONTAINER) || names.includes(INIT_CONTAINER)) {
    gates.push("already_injected");
  }
  if (gates.length > 0) return skip(gates);

  const tunables = parseTunables(annotations, config);
  if (!tunables.ok) return skip(["invalid_annotation"], tunables.error);
  const t = tunables.value;

  const identity = deriveIdentity(pod);
  if (identity.app === undefined) return skip(["no_app_identity"]);

  const candidates = t.ports ?? declaredTcpPorts(pod.spec.containers);
  const clash = candidates.filter(isProxyPort);
  if (clash.length > 0) return skip(["port_conflict"], [`ports ${clash.join(",")}`]);

  const ports = appPorts(candidates, t.excludePorts);
  const primary = ports[0];
  if (primary === undefined) return skip(["no_ports"]);

  // Only the routed port is captured: the proxy forwards everything it accepts to that one
  // port (Node cannot read SO_ORIGINAL_DST), so redirecting a second port would deliver its
  // traffic to the wrong listener. Other ports stay direct.
  const capturePorts = t.capture === "iptables" ? [primary] : [];
  const probes = planProbes(pod.spec.containers, new Set(capturePorts));

  return {
    inject: true,
    plan: {
      identity: { app: identity.app, version: identity.version, color: identity.color },
      ports,
      capturePorts,
      capture: t.capture,
      nativeSidecar: t.nativeSidecar,
      logLevel: t.logLevel,
      resources: t.resources,
      probeRewrites: probes.rewrites,
      probes: probes.map,
    },
  };
}
