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
import http from "node:http";
import type { ProbeMap } from "../../shared/pod-env.ts";
import { PROBE_PATH_PREFIX } from "../../shared/pod-env.ts";
import type { TableStore } from "../config/store.ts";
import type { ProxyMetrics } from "../metrics/metrics.ts";
import type { Target } from "../proxy/upstream.ts";
import { runProbe, tcpConnects } from "./probes.ts";

export interface AdminOptions {
  app: Target;
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

export function createAdminServer(opts: AdminOptions): http.Server {
  const json = (res: http.ServerResponse, status: number, body: object): void => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body) + "\n");
  };
  return http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (path === "/healthz") return json(res, 200, { alive: true });
    if (path === "/metrics") {
      opts.metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": opts.metrics.registry.contentType });
          res.end(text);
        },
        () => json(res, 500, { error: "metrics" }),
      );
      return;
    }
    if (path === "/ready") {
      void readiness(opts).then((r) => json(res, r.ready ? 200 : 503, r.detail));
      return;
    }
    if (path.startsWith(PROBE_PATH_PREFIX)) {
      const probe = opts.probes[path];
      if (!probe) return json(res, 404, { error: "no such probe", path });
      void runProbe(opts.app.host, probe).then((r) =>
        json(res, r.ok ? 200 : 503, r.ok ? { ok: true } : { ok: false, reason: r.reason }),
      );
      return;
    }
    json(res, 404, { error: "not found" });
  });
}
