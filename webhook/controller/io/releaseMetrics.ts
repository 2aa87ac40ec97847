/**
 * The controller's own release series (shared/metric-names.ts CONTROLLER_METRIC), on the
 * webhook's `/metrics`: the release (info), desired and actual weight, the phase and step, the
 * last analysis per gate with its threshold, the time from a failing signal to the rollback
 * written, reconcile errors. Written by the leader's release loop.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { CONTROLLER_METRIC } from "../../../shared/metric-names.ts";
import type { Measurements } from "../decide/analyse.ts";
import type { ReleasePolicy } from "../../../shared/policy.ts";
import type { Phase, ReleaseStatus } from "../decide/status.ts";

const PHASES: readonly Phase[] = ["Pending", "Progressing", "Paused", "Promoted", "Failed"];

export interface ReleaseRefLabels {
  namespace: string;
  app: string;
  version: string;
}

/** One gate of the analysis: what was measured and the policy's limit, either may be absent. */
export interface GateReading {
  gate: "error_rate" | "p99_ms" | "p99_ratio" | "requests";
  value?: number;
  threshold?: number;
}

/** The gates of a status's last analysis against its policy (pure). */
export function gateReadings(
  status: ReleaseStatus,
  policy: ReleasePolicy | undefined,
): GateReading[] {
  const m = status.analysis?.measured;
  if (m === undefined) return [];
  const ratio =
    m.releaseP99Ms !== undefined && m.stableP99Ms !== undefined && m.stableP99Ms > 0
      ? m.releaseP99Ms / m.stableP99Ms
      : undefined;
  return [
    { gate: "error_rate", value: m.releaseErrorRate, threshold: policy?.gates.maxErrorRate },
    { gate: "p99_ms", value: m.releaseP99Ms, threshold: policy?.gates.maxP99Ms },
    { gate: "p99_ratio", value: ratio, threshold: policy?.gates.maxP99Ratio },
    { gate: "requests", value: m.releaseRequests, threshold: policy?.gates.minRequests },
  ];
}

export interface ReleaseMetrics {
  status(ref: ReleaseRefLabels, status: ReleaseStatus, policy: ReleasePolicy | undefined): void;
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
  const info = new Gauge({
    name: CONTROLLER_METRIC.info,
    help: "1 for each release the controller knows, with its strategy.",
    labelNames: ["namespace", "app", "version", "strategy"],
    registers: [registry],
  });
  const step = new Gauge({
    name: CONTROLLER_METRIC.step,
    help: "The automated canary's current step (1-based); 0 without steps.",
    labelNames: ["namespace", "app", "version"],
    registers: [registry],
  });
  const analysis = new Gauge({
    name: CONTROLLER_METRIC.analysis,
    help: 'The last analysis per gate: kind="value" what was measured, kind="threshold" the policy\'s limit (for requests: the minimum).',
    labelNames: ["namespace", "app", "version", "gate", "kind"],
    registers: [registry],
  });
  const errors = new Counter({
    name: CONTROLLER_METRIC.reconcileErrors,
    help: "Release reconciles that failed (retried with backoff).",
    labelNames: ["namespace", "app"],
    registers: [registry],
  });
  return {
    status(ref, status, policy) {
      weight.set({ ...ref, kind: "desired" }, status.weight);
      for (const p of PHASES) phase.set({ ...ref, phase: p }, p === status.phase ? 1 : 0);
      if (policy) info.set({ ...ref, strategy: policy.strategy }, 1);
      step.set(ref, status.step ?? 0);
      for (const r of gateReadings(status, policy)) {
        if (r.value !== undefined) analysis.set({ ...ref, gate: r.gate, kind: "value" }, r.value);
        if (r.threshold !== undefined)
          analysis.set({ ...ref, gate: r.gate, kind: "threshold" }, r.threshold);
      }
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
