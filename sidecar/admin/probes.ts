/**
 * Rewritten kubelet probes: `/app-health/<container>/<livez|readyz|startupz>` performs the
 * original probe (VERSO_PROBES) against this pod's app, so a probe never reaches a peer.
 * Semantics follow the kubelet: HTTP 200-399 is success, a TCP connect is success.
 */
import type { ProbeMap, ProbeTarget } from "../../shared/pod-env.ts";
import { err, ok, type Result } from "../../shared/errors.ts";

export const PROBE_TIMEOUT_MS = 5_000;

export type ProbeOutcome = { ok: true; status?: number } | { ok: false; reason: string };

export function parseProbeMap(text: string | undefined): Result<ProbeMap> {
  if (text === undefined || text.trim() === "") return ok({});
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    return err(`VERSO_PROBES: not JSON: ${(cause as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return err("VERSO_PROBES: must be an object of admin path -> probe");
  }
  const out: ProbeMap = {};
  for (const [path, v] of Object.entries(raw as Record<string, unknown>)) {
    const p = v as Partial<ProbeTarget> & Record<string, unknown>;
    if (typeof p !== "object" || p === null || typeof p.port !== "number") {
      return err(`VERSO_PROBES[${path}]: needs kind and a numeric port`);
    }
    if (p.kind === "tcp") out[path] = { kind: "tcp", port: p.port };
    else if (p.kind === "http" && typeof p.path === "string") {
      out[path] = {
        kind: "http",
        port: p.port,
        path: p.path,
        scheme: p.scheme === "HTTPS" ? "HTTPS" : "HTTP",
        ...(Array.isArray(p.headers)
          ? { headers: p.headers as { name: string; value: string }[] }
          : {}),
      };
    } else return err(`VERSO_PROBES[${path}]: kind must be "http" (with path) or "tcp"`);
  }
  return ok(out);
}

/**
 * A TCP connect, closed at once: the kubelet's tcpSocket probe, and /ready's app check.
 * Bun.connect, not node:net: node:net alone costs ~3 MB of RSS on Bun (docs/routing.md).
 */
export async function tcpConnects(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<ProbeOutcome>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, reason: "timeout" }), timeoutMs);
  });
  const connect = Bun.connect({ hostname: host, port, socket: { data() {} } }).then(
    (socket): ProbeOutcome => {
      socket.end();
      return { ok: true };
    },
    (e: unknown): ProbeOutcome => ({ ok: false, reason: (e as { code?: string }).code ?? "error" }),
  );
  try {
    return await Promise.race([connect, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function runProbe(host: string, probe: ProbeTarget): Promise<ProbeOutcome> {
  if (probe.kind === "tcp") return tcpConnects(host, probe.port, PROBE_TIMEOUT_MS);
  const headers: Record<string, string> = { "user-agent": "kube-probe/verso" };
  for (const h of probe.headers ?? []) headers[h.name] = h.value;
  const scheme = probe.scheme === "HTTPS" ? "https" : "http";
  const hostPart = host.includes(":") ? `[${host}]` : host;
  try {
    const res = await fetch(`${scheme}://${hostPart}:${probe.port}${probe.path}`, {
      headers,
      redirect: "manual",
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
      // The kubelet does not verify the app's certificate either (Bun's fetch option).
      tls: { rejectUnauthorized: false },
    } as RequestInit);
    await res.body?.cancel();
    const status = res.status;
    return status >= 200 && status < 400
      ? { ok: true, status }
      : { ok: false, reason: `status ${status}` };
  } catch (e) {
    const name = (e as { name?: string }).name;
    if (name === "TimeoutError") return { ok: false, reason: "timeout" };
    return { ok: false, reason: (e as { code?: string }).code ?? "error" };
  }
}
