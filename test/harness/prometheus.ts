/**
 * Prometheus in tests: a real `prometheus` server scraping targets on 127.0.0.1 (the
 * Debian/Ubuntu package, or any binary on PATH or in $VERSO_PROMETHEUS), and a strict reader
 * of the text exposition format for checking what a /metrics endpoint serves.
 *
 * The scrape config is the shape users run the proxies with, minus Kubernetes discovery:
 *
 *   scrape_configs:
 *     - job_name: verso
 *       scrape_interval: 1s            # 15s-30s in a cluster
 *       file_sd_configs: [{ files: [targets.json] }]
 *
 * with targets.json `[{"targets": ["127.0.0.1:port"], "labels": {"namespace": "shop"}}]`.
 * File discovery attaches each group's labels to the scraped series, which is where the
 * `namespace` label the controller's PromQL selects on comes from (kubernetes_sd's
 * relabelling of __meta_kubernetes_namespace does the same in a cluster). Target labels must
 * not reuse a label the proxy exports (app, version): Prometheus would rename the proxy's.
 */
import {
  accessSync,
  constants,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { freePort, waitFor } from "./ports.ts";
import { startProcess, type ManagedProcess } from "./processes.ts";

/** The prometheus binary, or undefined when it is not installed (the caller skips). */
export function prometheusBinary(): string | undefined {
  const candidates = process.env.VERSO_PROMETHEUS
    ? [process.env.VERSO_PROMETHEUS]
    : (process.env.PATH ?? "").split(delimiter).map((dir) => join(dir, "prometheus"));
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export interface TargetGroup {
  targets: string[];
  labels?: Record<string, string>;
}

export interface Sample {
  metric: Record<string, string>;
  value: number;
}

export interface ActiveTarget {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: "up" | "down" | "unknown";
  lastError: string;
  lastScrape: string;
}

export interface Prometheus {
  readonly url: string;
  readonly process: ManagedProcess;
  /** Rewrites the file_sd targets file (atomically: discovery must never read half a file). */
  setTargets(groups: TargetGroup[]): void;
  /** An instant query (`/api/v1/query`), as a vector; a scalar answer comes back as one sample. */
  query(promql: string): Promise<Sample[]>;
  /** `/api/v1/targets`, active targets only. */
  targets(): Promise<ActiveTarget[]>;
  /** Stops the server and removes its data directory. */
  stop(): Promise<void>;
}

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== "success") throw new Error(`${url}: ${body.error ?? res.status}`);
  return body.data;
}

export async function startPrometheus(opts: {
  targets: TargetGroup[];
  scrapeIntervalSeconds?: number;
}): Promise<Prometheus> {
  const binary = prometheusBinary();
  if (!binary) throw new Error("prometheus is not installed (apt-get install prometheus)");
  const dir = mkdtempSync(join(tmpdir(), "verso-prometheus-"));
  const targetsFile = join(dir, "targets.json");
  const setTargets = (groups: TargetGroup[]): void => {
    writeFileSync(`${targetsFile}.tmp`, JSON.stringify(groups));
    renameSync(`${targetsFile}.tmp`, targetsFile);
  };
  setTargets(opts.targets);
  const interval = `${opts.scrapeIntervalSeconds ?? 1}s`;
  // YAML is a superset of JSON: no YAML writer needed.
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval },
    scrape_configs: [
      {
        job_name: "verso",
        file_sd_configs: [{ files: [targetsFile], refresh_interval: "1s" }],
      },
    ],
  };
  writeFileSync(join(dir, "prometheus.yml"), JSON.stringify(config, null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = startProcess({
    name: "prometheus",
    command: binary,
    args: [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    cwd: dir,
    logFile: join(dir, "prometheus.log"),
  });
  const stop = async (): Promise<void> => {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      "prometheus /-/ready",
      async () => {
        if (!proc.running()) throw new Error(`exited:\n${readFileSync(proc.logFile, "utf8")}`);
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) });
        return res.ok ? true : undefined;
      },
      20_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    process: proc,
    setTargets,
    stop,
    async query(promql) {
      const data = await api<{ resultType: string; result: unknown }>(
        `${url}/api/v1/query?query=${encodeURIComponent(promql)}`,
      );
      if (data.resultType === "scalar") {
        return [{ metric: {}, value: Number((data.result as [number, string])[1]) }];
      }
      return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map(
        (r) => ({ metric: r.metric, value: Number(r.value[1]) }),
      );
    },
    async targets() {
      const data = await api<{ activeTargets: ActiveTarget[] }>(`${url}/api/v1/targets`);
      return data.activeTargets;
    },
  };
}

export interface Family {
  type: string;
  help: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,?)/;
const unescape = (s: string): string =>
  s.replace(/\\([\\"n])/g, (_, c: string) => (c === "n" ? "\n" : c));

/**
 * Text exposition 0.0.4, strictly: every sample belongs to a family declared by a preceding
 * TYPE (histogram samples by their _bucket/_sum/_count suffix), label values unescaped, no
 * series twice, values as Go's ParseFloat reads them. Throws on anything else.
 */
export function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  for (const [i, line] of text.slice(0, -1).split("\n").entries()) {
    const fail = (why: string): never => {
      throw new Error(`line ${i + 1}: ${why}: ${JSON.stringify(line)}`);
    };
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      const f = families.get(name) ?? { type: "untyped", help: "", samples: [] };
      if (kind === "HELP") f.help = unescape(rest);
      else if (f.samples.length > 0 || !/^(counter|gauge|histogram|summary|untyped)$/.test(rest))
        fail("misplaced or unknown TYPE");
      else f.type = rest;
      families.set(name, f);
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const name = NAME.exec(line)?.[0] ?? fail("no metric name");
    let rest = line.slice(name.length);
    const labels: Record<string, string> = {};
    if (rest.startsWith("{")) {
      rest = rest.slice(1);
      for (let m = LABEL.exec(rest); m; m = LABEL.exec(rest)) {
        if (m[1]! in labels) fail(`label ${m[1]} twice`);
        labels[m[1]!] = unescape(m[2]!);
        rest = rest.slice(m[0].length);
        if (!m[3]) break;
      }
      if (!rest.startsWith("}")) fail("bad label set");
      rest = rest.slice(1);
    }
    const [, raw, extra] = /^ (\S+)( -?\d+)?$/.exec(rest) ?? fail("bad value");
    const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    if (Number.isNaN(value) && raw !== "NaN") fail("not a number");
    if (extra) fail("unexpected timestamp");
    const base = name.replace(/_(bucket|sum|count)$/, "");
    const family = families.get(families.get(base)?.type === "histogram" ? base : name);
    if (!family || family.type === "untyped") fail("sample without a TYPE");
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) fail("series twice");
    seen.add(key);
    family!.samples.push({ name, labels, value });
  }
  return families;
}
