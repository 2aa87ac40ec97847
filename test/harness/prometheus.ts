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
 *
 * launchPrometheus() is the server itself, for any config: prometheusShipped.ts runs the
 * jobs deploy/observability/ ships on it, node/prometheus.ts puts that beside the real node.
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

/** One line of the query log: what was asked, by whom, evaluated at which instant. */
export interface LoggedQuery {
  query: string;
  /** The evaluation time (epoch ms): re-asking the query at it reads the same samples. */
  at: number;
  clientIp: string;
  path: string;
}

/** A running server and what every test reads from it, whatever its scrape config. */
export interface PrometheusServer {
  readonly url: string;
  readonly process: ManagedProcess;
  /**
   * An instant query (`/api/v1/query`, at `atMs` or now), as a vector; a scalar answer comes
   * back as one sample, NaN values included as Prometheus returns them.
   */
  query(promql: string, atMs?: number): Promise<Sample[]>;
  /** GET of an API path (`/api/v1/...`), its `data`; throws unless status is success. */
  api<T>(path: string): Promise<T>;
  /** Every query the server evaluated so far, from its query log, oldest first. */
  queryLog(): LoggedQuery[];
  /** Stops the server and removes its directory (config, targets, data, logs). */
  stop(): Promise<void>;
}

export interface Prometheus extends PrometheusServer {
  /** Rewrites the file_sd targets file (atomically: discovery must never read half a file). */
  setTargets(groups: TargetGroup[]): void;
  /** `/api/v1/targets`, active targets only. */
  targets(): Promise<ActiveTarget[]>;
}

/** Writes `file` whole or not at all: file discovery must never read half of it. */
export function writeAtomically(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/**
 * Starts the server on `config` (written into `dir`, which it owns from now on and removes on
 * stop), listening on `host` (127.0.0.1 unless pods must reach it) at a free port. The config
 * gets `global.query_log_file`: Prometheus 2.16+ logs every query with its evaluation time and
 * client there (Debian bookworm's 2.42 has no --query.log-file flag, the config field it has).
 */
export async function launchPrometheus(opts: {
  dir: string;
  config: Record<string, unknown>;
  host?: string;
}): Promise<PrometheusServer> {
  const binary = prometheusBinary();
  if (!binary) throw new Error("prometheus is not installed (apt-get install prometheus)");
  const { dir } = opts;
  const queryLogFile = join(dir, "queries.log");
  const global = (opts.config.global ?? {}) as Record<string, unknown>;
  const configFile = join(dir, "prometheus.yml");
  // YAML is a superset of JSON: no YAML writer needed.
  writeFileSync(
    configFile,
    JSON.stringify({ ...opts.config, global: { ...global, query_log_file: queryLogFile } }),
  );
  const host = opts.host ?? "127.0.0.1";
  const port = await freePort(host);
  const url = `http://${host}:${port}`;
  const proc = startProcess({
    name: "prometheus",
    command: binary,
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=${host}:${port}`,
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
      30_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  return {
    url,
    process: proc,
    api,
    stop,
    async query(promql, atMs) {
      const at = atMs === undefined ? "" : `&time=${atMs / 1000}`;
      const data = await api<{ resultType: string; result: unknown }>(
        `/api/v1/query?query=${encodeURIComponent(promql)}${at}`,
      );
      if (data.resultType === "scalar") {
        return [{ metric: {}, value: Number((data.result as [number, string])[1]) }];
      }
      return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map(
        (r) => ({ metric: r.metric, value: Number(r.value[1]) }),
      );
    },
    queryLog: () => readQueryLog(queryLogFile),
  };
}

interface QueryLogLine {
  httpRequest?: { clientIP?: string; path?: string };
  params?: { query?: string; end?: string };
}

/** The query log's JSON lines; the last may be half written: it is skipped until whole. */
function readQueryLog(file: string): LoggedQuery[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return []; // nothing asked yet: the file is created on the first query
  }
  const out: LoggedQuery[] = [];
  for (const line of text.split("\n")) {
    let entry: QueryLogLine;
    try {
      entry = JSON.parse(line) as QueryLogLine;
    } catch {
      continue;
    }
    out.push({
      query: entry.params?.query ?? "",
      at: Date.parse(entry.params?.end ?? ""),
      clientIp: entry.httpRequest?.clientIP ?? "",
      path: entry.httpRequest?.path ?? "",
    });
  }
  return out;
}

/** A server scraping `targets` (one job `verso`, file discovery), as the header describes. */
export async function startPrometheus(opts: {
  targets: TargetGroup[];
  scrapeIntervalSeconds?: number;
}): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), "verso-prometheus-"));
  const targetsFile = join(dir, "targets.json");
  const setTargets = (groups: TargetGroup[]): void =>
    writeAtomically(targetsFile, JSON.stringify(groups));
  setTargets(opts.targets);
  const interval = `${opts.scrapeIntervalSeconds ?? 1}s`;
  const server = await launchPrometheus({
    dir,
    config: {
      global: { scrape_interval: interval, scrape_timeout: interval },
      scrape_configs: [
        {
          job_name: "verso",
          file_sd_configs: [{ files: [targetsFile], refresh_interval: "1s" }],
        },
      ],
    },
  });
  return {
    ...server,
    setTargets,
    async targets() {
      return (await server.api<{ activeTargets: ActiveTarget[] }>("/api/v1/targets")).activeTargets;
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
