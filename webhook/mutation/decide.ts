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
 *   verso.dev/protocol names a non-app port        -> skip invalid_annotation
 *   no app name from annotation or labels          -> skip no_app_identity
 *   an app port is 15006 or 15020                  -> skip port_conflict
 *     (or 15007 when the pod has a gRPC port)
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
import { grpcAppPorts, unknownProtocolPorts } from "./protocols.ts";
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
  /** App ports in order, whatever their protocol. */
  ports: number[];
  /**
   * Where the proxy's HTTP listener forwards: the first HTTP app port. A pod whose app ports
   * all speak gRPC gets the first of those (the proxy needs an app address; nothing is
   * redirected to its HTTP listener then).
   */
  routedPort: number;
  /** App ports that speak gRPC/h2c, in order; the first is where the gRPC listener forwards. */
  grpcPorts: number[];
  /** Ports the init step redirects to the proxy's HTTP listener (empty in `port` capture). */
  capturePorts: number[];
  /** Ports the init step redirects to the proxy's gRPC listener (empty in `port` capture). */
  captureGrpcPorts: number[];
  capture: CaptureMode;
  nativeSidecar: boolean;
  logLevel: LogLevel;
  accessLog: boolean;
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

/** Same `annotation="value": hint` form as the tunables' problems. */
function unknownPortProblem(annotations: Record<string, string>, unknown: number[]): string {
  const raw = JSON.stringify(annotations[ANNOTATION.protocol]);
  const what = unknown.length === 1 ? `port ${unknown[0]} is` : `ports ${unknown.join(",")} are`;
  return (
    `${ANNOTATION.protocol}=${raw}: ${what} not an app port ` +
    "(declared TCP containerPorts or verso.dev/ports, minus verso.dev/exclude-ports)"
  );
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

  const candidates = t.ports ?? declaredTcpPorts(pod.spec.containers);
  const ports = appPorts(candidates, t.excludePorts);
  const unknown = unknownProtocolPorts(t.protocols, ports);
  if (unknown.length > 0) {
    return skip(["invalid_annotation"], [unknownPortProblem(annotations, unknown)]);
  }

  const identity = deriveIdentity(pod);
  if (identity.app === undefined) return skip(["no_app_identity"]);

  const grpcPorts = grpcAppPorts(ports, pod.spec.containers, t.protocols);
  const clash = candidates.filter((p) => isProxyPort(p, grpcPorts.length > 0));
  if (clash.length > 0) return skip(["port_conflict"], [`ports ${clash.join(",")}`]);

  const primary = ports[0];
  if (primary === undefined) return skip(["no_ports"]);
  const httpPort = ports.find((p) => !grpcPorts.includes(p));
  const grpcPort = grpcPorts[0];

  // Only the routed port of each listener is captured: the proxy forwards everything a
  // listener accepts to that one port (neither Node nor Bun can read SO_ORIGINAL_DST), so
  // redirecting a second port would deliver its traffic to the wrong app listener. Other
  // ports, a second gRPC port included, stay direct.
  const iptables = t.capture === "iptables";
  const capturePorts = iptables && httpPort !== undefined ? [httpPort] : [];
  const captureGrpcPorts = iptables && grpcPort !== undefined ? [grpcPort] : [];
  // Probes on a captured gRPC port are rewritten too (a tcpSocket probe would otherwise only
  // see the proxy listening); kubelet `grpc:` probes are never rewritten (see probes.ts).
  const probes = planProbes(pod.spec.containers, new Set([...capturePorts, ...captureGrpcPorts]));

  return {
    inject: true,
    plan: {
      identity: { app: identity.app, version: identity.version, color: identity.color },
      ports,
      routedPort: httpPort ?? primary,
      grpcPorts,
      capturePorts,
      captureGrpcPorts,
      capture: t.capture,
      nativeSidecar: t.nativeSidecar,
      logLevel: t.logLevel,
      accessLog: t.accessLog,
      resources: t.resources,
      probeRewrites: probes.rewrites,
      probes: probes.map,
    },
  };
}
