/**
 * Canary analysis: measured numbers of one interval + gates -> what to do. Pure.
 */
import type { Gates } from "../../../shared/policy.ts";
import { errorRateAbove } from "./stats.ts";

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
  /**
   * Passed, but worth a Warning Event and a notification: the release's error rate exceeds
   * stable's by more than `warnMarginPct`. Never a rollback by itself.
   */
  warning?: string;
  /** The numbers the decision was made on, as written into `verso.dev/status`. */
  measured: {
    releaseRequests: number;
    releaseErrorRate?: number;
    releaseP99Ms?: number;
    stableRequests: number;
    stableErrorRate?: number;
    stableP99Ms?: number;
    /** With `verso.dev/confidence`: the error-rate test's p-value. */
    pValue?: number;
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
 * A release with no traffic is never judged: "no data" is not "healthy"; too few requests is
 * *inconclusive* (reason NotEnoughTraffic), what the machine does about it is its policy.
 *
 * "error rate > max": the observed rate, or with `confidencePct` the one-sided binomial test
 * (stats.ts) against max(max, stable's rate), so a handful of unlucky requests does not roll
 * back a healthy release and a release no worse than stable is not blamed for stable's errors.
 * A passing analysis carries `warning` when the release's error rate is above stable's by
 * more than `warnMarginPct` (relative).
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
  if (gates.maxErrorRate !== undefined && errorRateFails(m, gates, measured)) {
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
  const passed = atLastStep
    ? out("promote", "LastStepPassed", "the last step passed every gate")
    : out("advance", "GatesPassed", "every gate passed");
  const warning = warningOf(releaseErrorRate, stableErrorRate, gates.warnMarginPct);
  return warning === undefined ? passed : { ...passed, warning };
}

function errorRateFails(m: Measurements, gates: Gates, measured: Analysis["measured"]): boolean {
  const max = gates.maxErrorRate ?? 100;
  const observed = pct(m.release) ?? 0;
  if (gates.confidencePct === undefined) return observed > max;
  const limit = Math.max(max, pct(m.stable) ?? 0);
  const test = errorRateAbove(m.release.errors, m.release.requests, limit, gates.confidencePct);
  measured.pValue = Number(test.pValue.toPrecision(3));
  return test.above;
}

function warningOf(
  release: number | undefined,
  stable: number | undefined,
  marginPct: number,
): string | undefined {
  if (release === undefined || stable === undefined || release === 0) return undefined;
  if (release <= stable * (1 + marginPct / 100)) return undefined;
  return `error rate ${round(release)}% is above stable's ${round(stable)}% by more than ${marginPct}%`;
}
