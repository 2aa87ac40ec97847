/**
 * App ports, in order; the first is the routed (primary) port.
 *
 *   verso.dev/ports set   -> those ports, in the order written
 *   otherwise             -> declared containerPorts with protocol TCP (or none), in container order
 *   then                  -> minus verso.dev/exclude-ports, duplicates removed
 */
import { PROXY_PORT } from "../../shared/pod-env.ts";
import type { Container } from "./pod.ts";

export function declaredTcpPorts(containers: readonly Container[]): number[] {
  const out: number[] = [];
  for (const c of containers) {
    for (const p of c.ports ?? []) {
      const proto = p.protocol ?? "TCP";
      if (proto === "TCP" && !out.includes(p.containerPort)) out.push(p.containerPort);
    }
  }
  return out;
}

/** `candidates`: verso.dev/ports when set, else declaredTcpPorts. */
export function appPorts(candidates: readonly number[], exclude: ReadonlySet<number>): number[] {
  return [...new Set(candidates)].filter((p) => !exclude.has(p));
}

/**
 * A port the proxy itself listens on. 15007 only counts when the pod has a gRPC port: only
 * then does the proxy open its gRPC listener, and pods that declared 15007 before gRPC
 * support existed keep being injected.
 */
export const isProxyPort = (p: number, grpc = false): boolean =>
  p === PROXY_PORT.inbound || p === PROXY_PORT.admin || (grpc && p === PROXY_PORT.grpc);

/** A probe's port: a number, or a name resolved against the probed container's ports. */
export function resolvePort(container: Container, port: number | string): number | undefined {
  if (typeof port === "number") return port;
  if (/^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}
