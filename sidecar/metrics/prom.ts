/**
 * prom-client for a process that counts its megabytes. The package index also loads the
 * Pushgateway (https, zlib), the cluster aggregator and, through its CPU metric,
 * @opentelemetry/api: +9 MB RSS in every pod for code the proxy never runs (measured,
 * docs/routing.md). So the proxy takes the classes from their own modules and registers the
 * default process metrics one by one, writing the CPU counters itself. The exposition is
 * prom-client's, series for series (sidecar/metrics/metrics.test.ts compares them).
 */
import type { Registry as RegistryType } from "prom-client";
import Registry from "prom-client/lib/registry.js";
import Counter from "prom-client/lib/counter.js";
import Gauge from "prom-client/lib/gauge.js";
import processStartTime from "prom-client/lib/metrics/processStartTime.js";
import osMemoryHeap from "prom-client/lib/metrics/osMemoryHeap.js";
import processOpenFileDescriptors from "prom-client/lib/metrics/processOpenFileDescriptors.js";
import processMaxFileDescriptors from "prom-client/lib/metrics/processMaxFileDescriptors.js";
import eventLoopLag from "prom-client/lib/metrics/eventLoopLag.js";
import processHandles from "prom-client/lib/metrics/processHandles.js";
import processRequests from "prom-client/lib/metrics/processRequests.js";
import processResources from "prom-client/lib/metrics/processResources.js";
import heapSizeAndUsed from "prom-client/lib/metrics/heapSizeAndUsed.js";
import heapSpacesSizeAndUsed from "prom-client/lib/metrics/heapSpacesSizeAndUsed.js";
import version from "prom-client/lib/metrics/version.js";
import gc from "prom-client/lib/metrics/gc.js";

export { Counter, Gauge, Registry };

/** collectDefaultMetrics() without its one heavy import; same series names and help. */
export function collectProcessMetrics(registry: RegistryType): void {
  const config = { eventLoopMonitoringPrecision: 10 };
  for (const collect of [
    processStartTime,
    osMemoryHeap,
    processOpenFileDescriptors,
    processMaxFileDescriptors,
    eventLoopLag,
    processResources,
    processHandles,
    processRequests,
    heapSizeAndUsed,
    heapSpacesSizeAndUsed,
    version,
    gc,
  ]) {
    collect(registry, config);
  }
  let last = process.cpuUsage();
  const user = new Counter({
    name: "process_cpu_user_seconds_total",
    help: "Total user CPU time spent in seconds.",
    registers: [registry],
    // One collect sets all three, as prom-client's own does, so they agree within a scrape.
    collect() {
      const now = process.cpuUsage();
      const u = (now.user - last.user) / 1e6;
      const s = (now.system - last.system) / 1e6;
      last = now;
      user.inc(u);
      system.inc(s);
      total.inc(u + s);
    },
  });
  const system = new Counter({
    name: "process_cpu_system_seconds_total",
    help: "Total system CPU time spent in seconds.",
    registers: [registry],
  });
  const total = new Counter({
    name: "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds.",
    registers: [registry],
  });
}
