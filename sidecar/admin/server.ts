/**
 * The admin port: /metrics, /healthz (the process is alive), /ready, and the rewritten
 * kubelet probes under /app-health/.
 *
 * /ready is 200 when all hold: not draining; the app's port accepts a TCP connection; and a
 * routing table is loaded, or `tableWaitMs` has passed since start without one (then the proxy
 * serves the no-release default: every request where it lands). The wait keeps a new release
 * pod out of the Service until it knows the split, without letting a controller outage block
 * every rollout forever.
 */
import type { Server } from "bun";
import type { ProbeMap } from "../../shared/pod-env.ts";
import { PROBE_PATH_PREFIX } from "../../shared/pod-env.ts";
import type { TableStore } from "../config/store.ts";
import { METRICS_CONTENT_TYPE, type ProxyMetrics } from "../metrics/metrics.ts";
import { runProbe, tcpConnects } from "./probes.ts";

export interface AdminOptions {
  listen: { host: string; port: number };
  app: { host: string; port: number };
  store: TableStore;
  metrics: ProxyMetrics;
  probes: ProbeMap;
  tableWaitMs: number;
  startedAt: number;
  isDraining: () => boolean;
}

export async function readiness(opts: AdminOptions): Promise<{ ready: boolean; detail: object }> {
  const draining = opts.isDraining();
  const app = (await tcpConnects(opts.app.host, opts.app.port, 1_000)).ok;
  const table = opts.store.current?.revision ?? null;
  const waited = Date.now() - opts.startedAt >= opts.tableWaitMs;
  const routing = table !== null ? "table" : waited ? "no-release-default" : "waiting-for-table";
  const ready = !draining && app && routing !== "waiting-for-table";
  return { ready, detail: { ready, draining, appAccepting: app, routing, revision: table } };
}

const json = (status: number, body: object): Response =>
  new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });

async function answer(opts: AdminOptions, req: Request): Promise<Response> {
  const url = new URL(req.url);
  const path = url.pathname;
  if (path === "/healthz") return json(200, { alive: true });
  if (path === "/metrics") {
    return new Response(opts.metrics.render(), {
      headers: { "content-type": METRICS_CONTENT_TYPE },
    });
  }
  if (path === "/ready") {
    const r = await readiness(opts);
    return json(r.ready ? 200 : 503, r.detail);
  }
  if (path.startsWith(PROBE_PATH_PREFIX)) {
    const probe = opts.probes[path];
    if (!probe) return json(404, { error: "no such probe", path });
    const r = await runProbe(opts.app.host, probe);
    return json(r.ok ? 200 : 503, r.ok ? { ok: true } : { ok: false, reason: r.reason });
  }
  return json(404, { error: "not found" });
}

export function createAdminServer(opts: AdminOptions): Server<undefined> {
  return Bun.serve({
    hostname: opts.listen.host,
    port: opts.listen.port,
    fetch: (req) => answer(opts, req),
  });
}
