/**
 * Kubelet probe rewrite (as Istio does). With iptables capture, a kubelet probe to a captured
 * port would land on the proxy and might be routed to a peer of another version, so a pod
 * could look healthy because its neighbour is. Probes on captured ports are therefore sent to
 * the proxy's admin port at /app-health/<container>/<kind>; the proxy reads the original from
 * VERSO_PROBES and always probes *this* pod's app.
 *
 *   httpGet/tcpSocket on a captured port, no explicit host -> rewritten
 *   other port, host set, exec, grpc, unresolvable name     -> left alone
 */
import {
  PROBE_PATH_PREFIX,
  PROXY_PORT,
  type ProbeMap,
  type ProbeTarget,
} from "../../shared/pod-env.ts";
import type { Container, Probe } from "./pod.ts";
import { resolvePort } from "./ports.ts";

export const PROBE_KINDS = {
  livenessProbe: "livez",
  readinessProbe: "readyz",
  startupProbe: "startupz",
} as const;

export type ProbeField = keyof typeof PROBE_KINDS;

export interface ProbeRewrite {
  container: string;
  field: ProbeField;
  /** The probe as the kubelet will run it. */
  probe: Probe;
}

function targetOf(
  container: Container,
  probe: Probe,
  captured: ReadonlySet<number>,
): ProbeTarget | undefined {
  if (probe.httpGet) {
    const g = probe.httpGet;
    const port = resolvePort(container, g.port);
    if (port === undefined || !captured.has(port) || g.host) return undefined;
    const target: ProbeTarget = {
      kind: "http",
      port,
      path: g.path ?? "/",
      scheme: g.scheme === "HTTPS" ? "HTTPS" : "HTTP",
    };
    if (g.httpHeaders && g.httpHeaders.length > 0) {
      target.headers = g.httpHeaders.map((h) => ({ name: h.name, value: h.value }));
    }
    return target;
  }
  if (probe.tcpSocket) {
    const port = resolvePort(container, probe.tcpSocket.port);
    if (port === undefined || !captured.has(port) || probe.tcpSocket.host) return undefined;
    return { kind: "tcp", port };
  }
  return undefined;
}

export function planProbes(
  containers: readonly Container[],
  captured: ReadonlySet<number>,
): { rewrites: ProbeRewrite[]; map: ProbeMap } {
  const rewrites: ProbeRewrite[] = [];
  const map: ProbeMap = {};
  if (captured.size === 0) return { rewrites, map };
  for (const c of containers) {
    for (const field of Object.keys(PROBE_KINDS) as ProbeField[]) {
      const probe = c[field];
      if (!probe) continue;
      const target = targetOf(c, probe, captured);
      if (!target) continue;
      const path = `${PROBE_PATH_PREFIX}${c.name}/${PROBE_KINDS[field]}`;
      map[path] = target;
      const { httpGet: _h, tcpSocket: _t, ...timing } = probe;
      rewrites.push({
        container: c.name,
        field,
        probe: { ...timing, httpGet: { path, port: PROXY_PORT.admin, scheme: "HTTP" } },
      });
    }
  }
  return { rewrites, map };
}
