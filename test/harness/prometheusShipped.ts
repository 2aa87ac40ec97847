/**
 * A real Prometheus run with what deploy/observability/ ships: the jobs and relabelling of
 * scrape-configs.yaml and the alerts of rules.yaml. Debian's Prometheus is built without
 * Kubernetes service discovery, so each job's kubernetes_sd_configs is swapped for a file_sd
 * whose target groups carry the `__meta_kubernetes_*` labels Kubernetes discovery would put
 * on a pod's container port: the shipped relabel_configs run unchanged on them.
 * The process tier feeds it hand-written pods (test/process/observability.test.ts), the real
 * node the API's pod list (node/prometheus.ts).
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { DEPLOY_DIR } from "./paths.ts";
import { launchPrometheus, writeAtomically, type PrometheusServer } from "./prometheus.ts";

export const OBSERVABILITY = join(DEPLOY_DIR, "observability");
export const SCRAPE_CONFIGS = join(OBSERVABILITY, "scrape-configs.yaml");
export const RULES = join(OBSERVABILITY, "rules.yaml");

/** What Kubernetes pod discovery says about one container port of one pod. */
export interface PodPort {
  address: string;
  namespace: string;
  pod: string;
  portName: string;
  labels?: Record<string, string>;
  phase?: string;
  container?: string;
  /** An init container's port (a native sidecar's, such as the proxy's). */
  init?: boolean;
}

/** Kubernetes discovery's meta labels for a pod port (label names sanitised as it does). */
export function discovered(p: PodPort): { targets: string[]; labels: Record<string, string> } {
  const labels: Record<string, string> = {
    __meta_kubernetes_namespace: p.namespace,
    __meta_kubernetes_pod_name: p.pod,
    __meta_kubernetes_pod_phase: p.phase ?? "Running",
    __meta_kubernetes_pod_container_port_name: p.portName,
  };
  if (p.container !== undefined) labels.__meta_kubernetes_pod_container_name = p.container;
  if (p.init !== undefined) labels.__meta_kubernetes_pod_container_init = String(p.init);
  for (const [k, v] of Object.entries(p.labels ?? {})) {
    labels[`__meta_kubernetes_pod_label_${k.replace(/[^a-zA-Z0-9_]/g, "_")}`] = v;
  }
  return { targets: [p.address], labels };
}

interface ScrapeConfig {
  job_name: string;
  kubernetes_sd_configs?: unknown;
  file_sd_configs?: unknown;
  scrape_interval?: string;
  [field: string]: unknown;
}

/**
 * The shipped scrape config with file discovery (one `<job>.json` per job in `dir`) instead of
 * Kubernetes discovery, every `intervalSeconds`, and the shipped rules loaded.
 */
export function fileSdConfig(dir: string, intervalSeconds: number): Record<string, unknown> {
  const shipped = parse(readFileSync(SCRAPE_CONFIGS, "utf8")) as { scrape_configs: ScrapeConfig[] };
  const interval = `${intervalSeconds}s`;
  return {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: [RULES],
    scrape_configs: shipped.scrape_configs.map(({ kubernetes_sd_configs: _, ...job }) => ({
      ...job,
      scrape_interval: interval,
      file_sd_configs: [{ files: [join(dir, `${job.job_name}.json`)], refresh_interval: "1s" }],
    })),
  };
}

/** The shipped jobs' names, in the order of scrape-configs.yaml. */
export function shippedJobs(): string[] {
  const shipped = parse(readFileSync(SCRAPE_CONFIGS, "utf8")) as { scrape_configs: ScrapeConfig[] };
  return shipped.scrape_configs.map((job) => job.job_name);
}

export interface Target {
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
  scrapePool: string;
  health: string;
  lastError: string;
}

export interface Rule {
  name: string;
  type: "alerting" | "recording";
  health: string;
  lastError?: string;
  state?: string;
}

export interface Alert {
  labels: Record<string, string>;
  state: "pending" | "firing";
}

export interface ShippedPrometheus extends PrometheusServer {
  /** Rewrites one job's discovered pods (atomically). */
  setPods(job: string, pods: PodPort[]): void;
  targets(): Promise<{ activeTargets: Target[]; droppedTargets: Target[] }>;
  rules(): Promise<Rule[]>;
  alerts(): Promise<Alert[]>;
}

/**
 * Starts it with `pods` per job (a job left out discovers nothing until setPods), scraping
 * every `intervalSeconds` (default 1), listening on `host` (default 127.0.0.1).
 */
export async function startShippedPrometheus(opts: {
  pods: Record<string, PodPort[]>;
  intervalSeconds?: number;
  host?: string;
}): Promise<ShippedPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), "verso-observability-"));
  const setPods = (job: string, pods: PodPort[]): void =>
    writeAtomically(join(dir, `${job}.json`), JSON.stringify(pods.map(discovered)));
  for (const job of shippedJobs()) setPods(job, opts.pods[job] ?? []);
  const server = await launchPrometheus({
    dir,
    config: fileSdConfig(dir, opts.intervalSeconds ?? 1),
    ...(opts.host !== undefined && { host: opts.host }),
  });
  return {
    ...server,
    setPods,
    targets: () => server.api("/api/v1/targets?state=any"),
    async rules() {
      const data = await server.api<{ groups: { rules: Rule[] }[] }>("/api/v1/rules");
      return data.groups.flatMap((g) => g.rules);
    },
    async alerts() {
      return (await server.api<{ alerts: Alert[] }>("/api/v1/alerts")).alerts;
    },
  };
}
