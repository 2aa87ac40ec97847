/**
 * What the proxy benchmarks (bench/proxy.ts, bench/grpc.ts) do alike with their rows: pick them
 * (--only), the routing table and nginx.conf they start from, the measured phases (idle, paced
 * warm-up and rounds, pinned rounds at max), and the two per-row tables of the report.
 * Each benchmark brings its own load generator (a `Run` per row and round) and its own words
 * ("req" or "call", its nginx and forward rows, its load generator).
 */
import { sleep } from "../test/harness/ports.ts";
import { stopAll } from "../test/harness/processes.ts";
import {
  fixed,
  heaviest,
  markdown,
  mb,
  median,
  memOf,
  peak,
  rounds,
  sampled,
  spread,
  ZERO,
  type Mem,
  type pinning,
  type Proxy,
} from "./lib.ts";

// ---- the rows ----------------------------------------------------------------------------

export interface BenchRow<N extends string = string> {
  name: N;
  /** Empty for direct; two for a forward row (v1, v2). */
  proxies: Proxy[];
}
export const pidsOf = (row: BenchRow): number[] => row.proxies.flatMap((p) => p.pids);

/** The rows --only names (all but direct, which always runs), else `defaults`; exits on a typo. */
export function selectRows<N extends string>(
  only: string | undefined,
  rows: readonly N[],
  defaults: readonly N[] = rows,
): (row: string) => boolean {
  const selected = only?.split(",").filter((r) => r !== "direct") ?? defaults;
  for (const r of selected) {
    if (!(rows as readonly string[]).includes(r)) {
      console.error(`--only: unknown row ${r} (rows: ${rows.join(", ")})`);
      process.exit(2);
    }
  }
  return (row) => (selected as readonly string[]).includes(row);
}

/** A release of v2 in progress whose match rules no benchmark request matches. */
export function routeTable(
  weight: number,
  endpoints: { v2: string; grpcV2?: string },
): Record<string, unknown> {
  return {
    app: "bench",
    revision: 1,
    hopKey: Buffer.from("bench-hop-key-0123456789abcdefgh").toString("base64"),
    release: {
      version: "v2",
      strategy: "canary",
      weight,
      match: [
        { header: "x-bench-canary", value: "1" },
        { cookie: "bench-canary", value: "1" },
      ],
    },
    endpoints: { v1: [], v2: [endpoints.v2] },
    ...(endpoints.grpcV2 !== undefined && { grpcEndpoints: { v1: [], v2: [endpoints.grpcV2] } }),
  };
}

/** nginx.conf for one worker keeping its files in `dir`; `http`: the rest of the http block. */
export function nginxConf(dir: string, http: string): string {
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
${http}
}\n`;
}

// ---- the phases --------------------------------------------------------------------------

/** What every run reports: rates, latencies in ms, errors, CPU seconds of the row's proxies. */
export interface BenchRun {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  cpu: number;
}

export interface RowResult<Run> {
  idle: Mem[];
  paced: Mem[];
  max: Mem[];
  pacedRuns: Run[];
  maxRuns: Run[];
}

/**
 * Idle memory (a second after the start), a paced warm-up per row, `rounds` paced rounds
 * (unpinned), then `rounds` rounds at max with each row's proxies on the proxy CPU and
 * `others` (the apps) and this process on the load CPUs, where they are left: `everyone`,
 * every process, for the caller to put back on all CPUs when its last phase is done.
 */
export async function measure<R extends BenchRow, Run>(o: {
  rows: R[];
  others: number[];
  cpus: ReturnType<typeof pinning>;
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  paced: (row: R, seconds: number) => Promise<Run>;
  max: (row: R, seconds: number) => Promise<Run>;
  /** Says which phase starts. */
  progress: (phase: "latency" | "throughput") => void;
}): Promise<{ results: Map<R["name"], RowResult<Run>>; everyone: number[] }> {
  const { rows, cpus } = o;
  const results = new Map<R["name"], RowResult<Run>>();
  await sleep(1000);
  for (const row of rows) {
    const idle = row.proxies.map((p) => memOf(p.pids));
    const none = row.proxies.map(() => ZERO);
    results.set(row.name, { idle, paced: none, max: none, pacedRuns: [], maxRuns: [] });
  }
  const result = (row: R) => results.get(row.name)!;

  o.progress("latency");
  const everyone = [...rows.flatMap(pidsOf), ...o.others, process.pid];
  cpus.setAffinity(everyone, cpus.allCpus);
  for (const row of rows) {
    const [, mem] = await sampled(row.proxies, () => o.paced(row, o.warmupSeconds));
    result(row).paced = peak(result(row).paced, mem);
  }
  await rounds(o.rounds, rows, async (row) => {
    const [run, mem] = await sampled(row.proxies, () => o.paced(row, o.seconds));
    result(row).pacedRuns.push(run);
    result(row).paced = peak(result(row).paced, mem);
  });

  o.progress("throughput");
  cpus.setAffinity([...o.others, process.pid], cpus.loadCpus);
  await rounds(o.rounds, rows, async (row) => {
    cpus.setAffinity(pidsOf(row), cpus.proxyCpu);
    await sleep(300);
    const [run, mem] = await sampled(row.proxies, () => o.max(row, o.seconds));
    result(row).maxRuns.push(run);
    result(row).max = peak(result(row).max, mem);
    cpus.setAffinity(pidsOf(row), cpus.allCpus);
  });
  return { results, everyone };
}

// ---- the report --------------------------------------------------------------------------

/** Medians of the rows' results; `served(run)`: the requests or calls it counted. */
export function summary<N extends string, Run extends BenchRun>(
  results: Map<N, RowResult<Run>>,
  served: (run: Run) => number,
) {
  const r = (name: N) => results.get(name);
  return {
    r,
    /** The row's median minus direct's (robust to one noisy direct round, unlike per round). */
    added: (res: RowResult<Run>, key: "p50" | "p99") =>
      median(res.pacedRuns.map((x) => x[key])) -
      median(r("direct" as N)!.pacedRuns.map((x) => x[key])),
    cpuUs: (runs: Run[]) => runs.map((run) => (run.cpu / served(run)) * 1e6),
    rps: (name: N) => median(r(name)?.maxRuns.map((x) => x.rps) ?? [NaN]),
    perCpu: (name: N) => median(r(name)?.maxRuns.map((x) => served(x) / x.cpu) ?? [NaN]),
  };
}

/**
 * The two per-row tables: memory, max rate and CPU; then, after a note on the forward row,
 * paced rate and latency. `unit` names what a row serves ("req" or "call").
 */
export function printRowTables<N extends string, Run extends BenchRun>(
  rows: BenchRow<N>[],
  results: Map<N, RowResult<Run>>,
  o: {
    unit: "req" | "call";
    served: (run: Run) => number;
    seconds: number;
    nginx: N;
    forward: N;
    loadGenerator: string;
  },
): void {
  const { r, added, cpuUs, rps } = summary(results, o.served);
  const rate = o.unit === "req" ? "req/s" : "calls/s";
  console.log(
    markdown(
      [
        "path",
        "RSS idle / paced / sat. peak MB",
        "private idle / paced / peak MB",
        `max ${rate}`,
        "vs nginx",
        "proxy CPU %",
        `CPU µs/${o.unit} max`,
        `CPU µs/${o.unit} paced`,
        "errors",
      ],
      rows.map((row) => {
        const res = r(row.name)!;
        const mem = (k: keyof Mem) =>
          `${mb(heaviest(res.idle)[k])} / ${mb(heaviest(res.paced)[k])} / ${mb(heaviest(res.max)[k])}`;
        const isProxy = row.proxies.length > 0;
        const or = (text: () => string) => (isProxy ? text() : "-");
        return [
          row.name,
          or(() => mem("rss")),
          or(() => mem("anon")),
          spread(
            res.maxRuns.map((x) => x.rps),
            fixed(0),
          ),
          or(() => (r(o.nginx) ? (rps(row.name) / rps(o.nginx)).toFixed(2) : "-")),
          or(() => fixed(0)(median(res.maxRuns.map((x) => (x.cpu / o.seconds) * 100)))),
          or(() => spread(cpuUs(res.maxRuns), fixed(0))),
          or(() => fixed(0)(median(cpuUs(res.pacedRuns)))),
          String([...res.pacedRuns, ...res.maxRuns].reduce((n, x) => n + x.errors, 0)),
        ];
      }),
    ),
  );
  console.log(
    `\n${o.forward}: RSS of the larger of its two proxies, CPU of both. ` +
      `A proxy under 100% CPU at max was held back by the app or ${o.loadGenerator}: compare per CPU-second.\n`,
  );
  console.log(
    markdown(
      ["path", `paced ${rate}`, "p50 ms", "p99 ms", "added p50 ms", "added p99 ms"],
      rows.map((row) => {
        const res = r(row.name)!;
        const isProxy = row.proxies.length > 0;
        return [
          row.name,
          fixed(0)(median(res.pacedRuns.map((x) => x.rps))),
          fixed(3)(median(res.pacedRuns.map((x) => x.p50))),
          spread(
            res.pacedRuns.map((x) => x.p99),
            fixed(3),
          ),
          isProxy ? fixed(3)(added(res, "p50")) : "-",
          isProxy ? fixed(3)(added(res, "p99")) : "-",
        ];
      }),
    ),
  );
}

/** The rows as --json writes them: name, proxy labels, then every result. */
export const rowsJson = <N extends string, Run>(
  rows: BenchRow<N>[],
  results: Map<N, RowResult<Run>>,
) =>
  rows.map((row) => ({
    name: row.name,
    proxies: row.proxies.map((p) => p.label),
    ...results.get(row.name),
  }));

/** Runs `main`, exit code 1 on an error, and stops every process it started. */
export function run(main: () => Promise<void>): void {
  main()
    .catch((e) => {
      console.error(e);
      process.exitCode = 1;
    })
    .finally(() => stopAll());
}
