/**
 * Readiness probes run against the pod IP, as a kubelet would: httpGet (2xx/3xx = success)
 * and tcpSocket; exec probes cannot run here and count as success (documented limit).
 * A container without a readiness probe is ready once its first declared port accepts
 * connections (or at once when it declares none).
 */
import { request } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Container, Probe } from "./podTypes.ts";
import { portAccepts } from "./ports.ts";

/** A named port resolves in the probed container only, as the kubelet does. */
function resolvePort(port: number | string, container: Container): number | undefined {
  if (typeof port === "number") return port;
  if (/^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

function httpProbe(
  host: string,
  port: number,
  probe: NonNullable<Probe["httpGet"]>,
  timeoutMs: number,
): Promise<boolean> {
  const https = (probe.scheme ?? "HTTP").toUpperCase() === "HTTPS";
  const headers: Record<string, string> = { "user-agent": "kube-probe/verso-harness" };
  for (const h of probe.httpHeaders ?? []) headers[h.name] = h.value;
  return new Promise((resolve) => {
    const options = {
      host,
      port,
      path: probe.path ?? "/",
      method: "GET",
      headers,
      timeout: timeoutMs,
      rejectUnauthorized: false,
    };
    const req = (https ? httpsRequest : request)(options, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve(status >= 200 && status < 400);
    });
    req.once("timeout", () => req.destroy());
    req.once("error", () => resolve(false));
    req.end();
  });
}

/** One probe attempt. */
export async function runProbe(
  probe: Probe,
  podIP: string,
  container: Container,
): Promise<boolean> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet) {
    const port = resolvePort(probe.httpGet.port, container);
    if (port === undefined) return false;
    return httpProbe(probe.httpGet.host ?? podIP, port, probe.httpGet, timeoutMs);
  }
  if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port, container);
    if (port === undefined) return false;
    return portAccepts(probe.tcpSocket.host ?? podIP, port, timeoutMs);
  }
  return true;
}

/** Readiness of a running container when it has no readiness probe. */
export async function defaultReady(container: Container, podIP: string): Promise<boolean> {
  const port = container.ports?.[0]?.containerPort;
  if (port === undefined) return true;
  return portAccepts(podIP, port, 500);
}
