/**
 * What the proxy benchmarks (bench/proxy.ts, bench/grpc.ts) share: processes and what they use
 * (/proc), CPU pinning, the image's bundle, wrk, and the markdown report helpers.
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { bundleProxy } from "../test/harness/compiled.ts";
import { REPO_ROOT, SIDECAR_MAIN } from "../test/harness/paths.ts";
import { freePort, waitFor } from "../test/harness/ports.ts";
import { startProcess } from "../test/harness/processes.ts";

// ---- tools -------------------------------------------------------------------------------

export const has = (bin: string) => spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0;
export const versionOf = (command: string, args: string[], re = /([\d.]+)/): string =>
  re.exec(spawnSync(command, args, { encoding: "utf8" }).output.join(" "))?.[1] ?? "?";
/** The 1, 5 and 15 minute load averages, e.g. `3.12 2.75 3.01`. */
export const loadAverage = (): string =>
  readFileSync("/proc/loadavg", "utf8").trim().split(" ").slice(0, 3).join(" ");

/** What the Verso rows run: the image's bundle, built once per run (or the .ts with `ts`). */
export function versoMain(dir: string, ts: boolean): () => string {
  let bundled: string | undefined;
  return () => (ts ? SIDECAR_MAIN : (bundled ??= bundleProxy(dir)));
}

// ---- processes and what they use -------------------------------------------------------

/** One proxy: the processes that together are it (nginx: master and worker). */
export interface Proxy {
  label: string;
  pids: number[];
}

export interface Mem {
  rss: number;
  /** Private memory; rss minus this is file-backed (the runtime executable's pages). */
  anon: number;
}

export function memOf(pids: number[]): Mem {
  const total = { rss: 0, anon: 0 };
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const kb = (field: string) =>
        Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
      total.rss += kb("VmRSS") * 1024;
      total.anon += kb("RssAnon") * 1024;
    } catch {
      // gone
    }
  }
  return total;
}
const maxMem = (a: Mem, b: Mem): Mem => ({
  rss: Math.max(a.rss, b.rss),
  anon: Math.max(a.anon, b.anon),
});
export const ZERO: Mem = { rss: 0, anon: 0 };
/** Per proxy, the larger of two samples. */
export const peak = (a: Mem[], b: Mem[]): Mem[] => a.map((m, i) => maxMem(m, b[i]!));
/** The heaviest of a row's proxies (a forward row: v1 or v2, whichever is larger). */
export const heaviest = (ms: Mem[]): Mem => ms.reduce(maxMem, ZERO);

/** CPU seconds (user + system) used so far by `pids` (clock ticks of 10 ms). */
export function cpuOf(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks / 100;
}

/** Process ids in the process group of `pid` (nginx's worker with its master). */
export function group(pid: number): number[] {
  const out = spawnSync("pgrep", ["-g", String(pid)], { encoding: "utf8" }).stdout;
  const pids = out.split(/\s+/).filter(Boolean).map(Number);
  return pids.length > 0 ? pids : [pid];
}

/** Runs `phase` while sampling each proxy's memory every 100 ms; peaks per proxy. */
export async function sampled<T>(proxies: Proxy[], phase: () => Promise<T>): Promise<[T, Mem[]]> {
  const sample = (): Mem[] => proxies.map((p) => memOf(p.pids));
  let peaks = sample();
  const timer = setInterval(() => (peaks = peak(sample(), peaks)), 100);
  try {
    const result = await phase();
    return [result, peak(sample(), peaks)];
  } finally {
    clearInterval(timer);
  }
}

/** Starts `command` in its own process group, logging to `dir`/`name`.log; its pid. */
export function launcher(dir: string) {
  return (name: string, command: string, args: string[], env: object = {}): number =>
    startProcess({
      name,
      command,
      args,
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      logFile: join(dir, `${name}.log`),
    }).pid;
}

/** `host:port` with a port free on `host` now, for a process to listen on. */
export const addressOn = async (host: string): Promise<string> => `${host}:${await freePort(host)}`;

/** Until `url` answers 2xx (and so, for a proxy's URL, one request has been served). */
export async function answering(url: string): Promise<void> {
  await waitFor(
    url,
    async () => ((await fetch(url).catch(() => undefined))?.ok ? true : undefined),
    15_000,
    100,
  );
}

// ---- CPU pinning -------------------------------------------------------------------------

/**
 * Proxies on the last CPU, everything else (apps, load generators, the benchmark) on the
 * rest; `pin` false (or one CPU) leaves everything where the scheduler puts it.
 */
export function pinning(wanted: boolean) {
  const cpus = availableParallelism();
  const pin = wanted && cpus >= 2;
  const layout = {
    cpus,
    pin,
    proxyCpu: String(cpus - 1),
    loadCpus: `0-${cpus - 2}`,
    allCpus: `0-${cpus - 1}`,
    /** Move running processes (all their threads) to `cpuList`. */
    setAffinity(pids: number[], cpuList: string): void {
      if (!pin) return;
      for (const pid of pids) spawnSync("taskset", ["-a", "-p", "-c", cpuList, String(pid)]);
    },
    /** `[command, args]` run on the load CPUs when pinning. */
    onLoadCpus(command: string, args: string[]): [string, string[]] {
      return pin ? ["taskset", ["-c", layout.loadCpus, command, ...args]] : [command, args];
    },
  };
  if (pin && !has("taskset")) {
    console.error("taskset is required to pin (apt-get install -y util-linux), or pass --no-pin");
    process.exit(2);
  }
  return layout;
}

// ---- load --------------------------------------------------------------------------------

/** Runs `command` to its end; its stdout (stderr goes to ours, as progress). */
export async function output(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<string> {
  const child = spawn(command, args, {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
  });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  await once(child, "close");
  return out;
}

export interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** Socket errors plus non-2xx/3xx answers. */
  errors: number;
}

/** What `wrk --latency` printed, latencies in ms. */
export function parseWrk(out: string): WrkResult {
  const ms = (label: string) => {
    const m = new RegExp(`${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
  };
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
    .exec(out)
    ?.slice(1)
    .reduce((a, b) => a + Number(b), 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50: ms("50"),
    p99: ms("99"),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN),
    errors: (socketErrors ?? 0) + non2xx,
  };
}

// ---- the report --------------------------------------------------------------------------

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
export const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
export const fixed = (digits: number) => (x: number) => x.toFixed(digits);
/** `median (min-max)` of `xs`, each formatted with `f`. */
export const spread = (xs: number[], f: (x: number) => string) =>
  `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;

export function markdown(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [
    line(head),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...body.map(line),
  ].join("\n");
}

/** Each round runs every row, starting one row later than the round before. */
export async function rounds<R>(
  count: number,
  rows: R[],
  each: (row: R) => Promise<void>,
): Promise<void> {
  for (let round = 0; round < count; round++) {
    for (let i = 0; i < rows.length; i++) await each(rows[(round + i) % rows.length]!);
    console.error(`  round ${round + 1}/${count} done`);
  }
}
