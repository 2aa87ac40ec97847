/**
 * Canary analysis: measured numbers of one interval + gates -> what to do. Pure.
 */
import type { Gates } from "../../shared/policy.ts";

export interface VersionStats {
  /** Requests served by the version over the interval. */
  requests: number;
  /** 5xx responses among them. */
  errors: number;
  /** p99 latency over the interval, milliseconds; undefined when nothing was served. */
  p99Ms?: number;
}

export interface Measurements {
  release: VersionStats;
  /** Every other version of the app, together. */
  stable: VersionStats;
}

export type AnalysisAction = "advance" | "promote" | "hold" | "rollback";

/** Stable codes, one per branch below; the readable text is in `message`. */
export type AnalysisReason =
  | "NotEnoughTraffic"
  | "NoBaseline"
  | "ErrorRateTooHigh"
  | "P99TooHigh"
  | "P99RatioTooHigh"
  | "GatesPassed"
  | "LastStepPassed";

export interface Analysis {
  action: AnalysisAction;
  reason: AnalysisReason;
  message: string;
  /** The numbers the decision was made on, as written into `verso.dev/status`. */
  measured: {
    releaseRequests: number;
    releaseErrorRate?: number;
    releaseP99Ms?: number;
    stableRequests: number;
    stableErrorRate?: number;
    stableP99Ms?: number;
  };
}

const pct = (s: VersionStats): number | undefined =>
  s.requests > 0 ? (100 * s.errors) / s.requests : undefined;
const round = (n: number | undefined): number | undefined =>
  n === undefined ? undefined : Math.round(n * 1000) / 1000;

/**
 * Truth table, first matching row wins (mirrored in analyse.test.ts):
 *
 * | release requests < max(1, minRequests) | error rate > max | p99 > max | p99/stable p99 > ratio | last step | action   |
 * |----------------------------------------|------------------|-----------|------------------------|-----------|----------|
 * | yes                                    | -                | -         | -                      | -         | hold     |
 * | no                                     | yes              | -         | -                      | -         | rollback |
 * | no                                     | no               | yes       | -                      | -         | rollback |
 * | no                                     | no               | no        | yes                    | -         | rollback |
 * | no                                     | no               | no        | no                     | no        | advance  |
 * | no                                     | no               | no        | no                     | yes       | promote  |
 *
 * A gate that is not set never fails. The ratio gate is skipped (passes) when stable served
 * nothing in the interval, e.g. at a 100% step, since there is nothing to compare against.
 * A release with no traffic is never judged: "no data" is not "healthy".
 */
export function analyse(m: Measurements, gates: Gates, atLastStep: boolean): Analysis {
  const releaseErrorRate = pct(m.release);
  const stableErrorRate = pct(m.stable);
  const measured: Analysis["measured"] = {
    releaseRequests: m.release.requests,
    stableRequests: m.stable.requests,
  };
  if (releaseErrorRate !== undefined) measured.releaseErrorRate = round(releaseErrorRate);
  if (m.release.p99Ms !== undefined) measured.releaseP99Ms = round(m.release.p99Ms);
  if (stableErrorRate !== undefined) measured.stableErrorRate = round(stableErrorRate);
  if (m.stable.p99Ms !== undefined) measured.stableP99Ms = round(m.stable.p99Ms);
  const out = (action: AnalysisAction, reason: AnalysisReason, message: string): Analysis => ({
    action,
    reason,
    message,
    measured,
  });

  const need = Math.max(1, gates.minRequests);
  if (m.release.requests < need) {
    return out(
      "hold",
      "NotEnoughTraffic",
      `not enough traffic: the release served ${m.release.requests} requests, the gate needs ${need}`,
    );
  }
  if (gates.maxErrorRate !== undefined && (releaseErrorRate ?? 0) > gates.maxErrorRate) {
    return out(
      "rollback",
      "ErrorRateTooHigh",
      `error rate ${round(releaseErrorRate)}% is above the maximum ${gates.maxErrorRate}% (${m.release.errors} of ${m.release.requests} requests)`,
    );
  }
  const p99 = m.release.p99Ms;
  if (gates.maxP99Ms !== undefined && p99 !== undefined && p99 > gates.maxP99Ms) {
    return out(
      "rollback",
      "P99TooHigh",
      `p99 latency ${round(p99)}ms is above the maximum ${gates.maxP99Ms}ms`,
    );
  }
  const stableP99 = m.stable.p99Ms;
  if (
    gates.maxP99Ratio !== undefined &&
    p99 !== undefined &&
    stableP99 !== undefined &&
    m.stable.requests > 0 &&
    stableP99 > 0 &&
    p99 / stableP99 > gates.maxP99Ratio
  ) {
    return out(
      "rollback",
      "P99RatioTooHigh",
      `p99 latency ${round(p99)}ms is ${round(p99 / stableP99)}x stable's ${round(stableP99)}ms, above the maximum ratio ${gates.maxP99Ratio}`,
    );
  }
  return atLastStep
    ? out("promote", "LastStepPassed", "the last step passed every gate")
    : out("advance", "GatesPassed", "every gate passed");
}
