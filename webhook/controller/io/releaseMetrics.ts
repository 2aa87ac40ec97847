/**
 * The controller's own release series (shared/metric-names.ts CONTROLLER_METRIC), on the
 * webhook's `/metrics`: desired and actual weight, the phase, the time from a failing signal
 * to the rollback written, reconcile errors. Written by the leader's release loop.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { CONTROLLER_METRIC } from "../../../shared/metric-names.ts";
import type { Measurements } from "../decide/analyse.ts";
import type { Phase } from "../decide/status.ts";

const PHASES: readonly Phase[] = ["Pending", "Progressing", "Paused", "Promoted", "Failed"];

export interface ReleaseRefLabels {
  namespace: string;
  app: string;
  version: string;
}

export interface ReleaseMetrics {
  status(ref: ReleaseRefLabels, phase: Phase, desiredWeight: number): void;
  /** The share of the app's requests the release served over the interval just measured. */
  measured(ref: ReleaseRefLabels, m: Measurements): void;
  rollback(ref: ReleaseRefLabels, reason: string, seconds: number): void;
  reconcileError(namespace: string, app: string): void;
}

export function createReleaseMetrics(registry: Registry): ReleaseMetrics {
  const weight = new Gauge({
    name: CONTROLLER_METRIC.weight,
    help: 'Release weight in percent: kind="desired" is what the proxies are told, kind="actual" the share of the app\'s requests the release served over the last interval.',
    labelNames: ["namespace", "app", "version", "kind"],
    registers: [registry],
  });
  const phase = new Gauge({
    name: CONTROLLER_METRIC.phase,
    help: "1 for the release's current phase, 0 for the others.",
    labelNames: ["namespace", "app", "version", "phase"],
    registers: [registry],
  });
  const rollback = new Histogram({
    name: CONTROLLER_METRIC.rollbackSeconds,
    help: "Seconds from the failing signal (analysis, gate answer, proxies' cut-off) to the rollback written.",
    labelNames: ["namespace", "app", "reason"],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [registry],
  });
  const errors = new Counter({
    name: CONTROLLER_METRIC.reconcileErrors,
    help: "Release reconciles that failed (retried with backoff).",
    labelNames: ["namespace", "app"],
    registers: [registry],
  });
  return {
    status(ref, current, desired) {
      weight.set({ ...ref, kind: "desired" }, desired);
      for (const p of PHASES) phase.set({ ...ref, phase: p }, p === current ? 1 : 0);
    },
    measured(ref, m) {
      const total = m.release.requests + m.stable.requests;
      if (total <= 0) return;
      const share = Math.round((10_000 * m.release.requests) / total) / 100;
      weight.set({ ...ref, kind: "actual" }, share);
    },
    rollback(ref, reason, seconds) {
      rollback.observe({ namespace: ref.namespace, app: ref.app, reason }, seconds);
    },
    reconcileError(namespace, app) {
      errors.inc({ namespace, app });
    },
  };
}
