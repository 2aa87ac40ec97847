/**
 * The process series every Prometheus client exports, under prom-client's default names and
 * help (dashboards and alerts written for the prom-client proxy keep working), computed at
 * scrape time only: nothing runs between scrapes. Only the calls both Node and Bun implement
 * are used (process.cpuUsage, process.memoryUsage.rss, process.uptime, node:fs on /proc).
 * The rest of prom-client's default set (heap spaces, GC, event-loop lag, handles) is
 * V8/libuv-specific, absent or meaningless on Bun, and not read by the controller.
 */
import { readdirSync, readFileSync } from "node:fs";
import { family, formatValue, type MetricType } from "./exposition.ts";

// prom-client's formula: whole seconds, so the value does not jitter from scrape to scrape.
const START_SECONDS = Math.round(Date.now() / 1000 - process.uptime());

function single(name: string, help: string, type: MetricType, value: number): string {
  return family(name, help, type, [`${name} ${formatValue(value)}`]);
}

/**
 * Open descriptors, or undefined without a Linux-like /proc. The directory read holds one
 * descriptor of its own while listing, which is not the process's: minus one, as prom-client.
 */
export function openFds(): number | undefined {
  try {
    return readdirSync("/proc/self/fd").length - 1;
  } catch {
    return undefined;
  }
}

/**
 * The soft limit on open files, read at each scrape (a process may raise it with setrlimit);
 * undefined without /proc or when "unlimited", which has no numeric sample worth exporting.
 */
export function maxFds(): number | undefined {
  let limits: string;
  try {
    limits = readFileSync("/proc/self/limits", "utf8");
  } catch {
    return undefined;
  }
  for (const line of limits.split("\n")) {
    if (!line.startsWith("Max open files")) continue;
    // Columns are padded with runs of spaces; the name itself has single spaces.
    const soft = Number(line.split(/ {2,}/)[1]);
    return Number.isFinite(soft) ? soft : undefined;
  }
  return undefined;
}

/** The families, in prom-client's order, each with one unlabelled sample. */
export function processFamilies(): string[] {
  // One reading for the three CPU counters, so within a scrape user + system = total. They
  // count from process start, as the metric names say; prom-client's count from when its
  // collector was registered, which left the startup's CPU (module loading) out.
  const cpu = process.cpuUsage();
  const families = [
    single(
      "process_cpu_user_seconds_total",
      "Total user CPU time spent in seconds.",
      "counter",
      cpu.user / 1e6,
    ),
    single(
      "process_cpu_system_seconds_total",
      "Total system CPU time spent in seconds.",
      "counter",
      cpu.system / 1e6,
    ),
    single(
      "process_cpu_seconds_total",
      "Total user and system CPU time spent in seconds.",
      "counter",
      (cpu.user + cpu.system) / 1e6,
    ),
    single(
      "process_start_time_seconds",
      "Start time of the process since unix epoch in seconds.",
      "gauge",
      START_SECONDS,
    ),
    single(
      "process_resident_memory_bytes",
      "Resident memory size in bytes.",
      "gauge",
      process.memoryUsage.rss(),
    ),
  ];
  // Absent rather than a stale or made-up value where /proc is not there (macOS dev runs).
  const open = openFds();
  if (open !== undefined) {
    families.push(single("process_open_fds", "Number of open file descriptors.", "gauge", open));
  }
  const max = maxFds();
  if (max !== undefined) {
    families.push(
      single("process_max_fds", "Maximum number of open file descriptors.", "gauge", max),
    );
  }
  return families;
}
