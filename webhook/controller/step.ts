/**
 * The release state machine: previous status + policy + what is observed now -> next status
 * and the transition to report. Pure (the clock is an argument), so a new leader that reads
 * `verso.dev/status` continues exactly where the old one stopped.
 */
import { formatRule, type ReleasePolicy } from "../../shared/policy.ts";
import { tableRules } from "./routes.ts";
import type { Analysis } from "./analyse.ts";
import type { ReleaseStatus, StatusReason } from "./status.ts";

export interface ObservedRelease {
  version: string;
  /** Hash of the pod template. */
  template: string;
  /** Every desired replica of the release is updated and ready. */
  ready: boolean;
}

export interface StepInput {
  prev: ReleaseStatus | undefined;
  policy: ReleasePolicy;
  release: ObservedRelease;
  /** Present only when an analysis interval ended and was measured. */
  analysis?: Analysis;
  now: number;
}

export interface Transition {
  type: "Normal" | "Warning";
  reason: StatusReason;
  message: string;
}

export interface StepOutput {
  status: ReleaseStatus;
  /** Absent when nothing worth an Event happened. */
  transition?: Transition;
}

const WARNING = new Set<StatusReason>([
  "RolledBack",
  "Aborted",
  "DeadlineExceeded",
  "PolicyInvalid",
]);
const iso = (ms: number): string => new Date(ms).toISOString();
const ms = (text: string | undefined, fallback: number): number => {
  const t = text === undefined ? NaN : Date.parse(text);
  return Number.isFinite(t) ? t : fallback;
};

function fresh(release: ObservedRelease, now: number): ReleaseStatus {
  return {
    phase: "Pending",
    weight: 0,
    reason: "Waiting",
    message: "waiting for every replica of the release to be ready",
    version: release.version,
    template: release.template,
    startedAt: iso(now),
    lastProgressAt: iso(now),
  };
}

/**
 * Restart (a fresh Pending status) when:
 * | no status | other version | Failed and pod template changed | Failed by abort, abort removed | -> restart |
 * Promoted and Failed are otherwise terminal for that version.
 */
function restartNeeded(prev: ReleaseStatus | undefined, input: StepInput): boolean {
  if (!prev || prev.version !== input.release.version) return true;
  if (prev.phase !== "Failed") return false;
  if (prev.template !== input.release.template) return true;
  return prev.reason === "Aborted" && !input.policy.abort;
}

/** When is the next analysis of an automated canary due (epoch ms), if one is? */
export function analysisDueAt(
  status: ReleaseStatus | undefined,
  policy: ReleasePolicy,
): number | undefined {
  if (!policy.steps || policy.strategy !== "canary" || status?.phase !== "Progressing")
    return undefined;
  return ms(status.stepStartedAt, 0) + policy.intervalMs;
}

/**
 * When the app's other Deployments are to be scaled to 0 (epoch ms), if ever: promotedAt +
 * `--scale-down-delay` (0 = never).
 */
export function scaleDownDueAt(
  status: ReleaseStatus,
  scaleDownDelayMs: number,
): number | undefined {
  if (scaleDownDelayMs <= 0 || status.phase !== "Promoted" || status.promotedAt === undefined)
    return undefined;
  return Date.parse(status.promotedAt) + scaleDownDelayMs;
}

export interface DueInput {
  /** The status in force once this reconcile's write is done. */
  status: ReleaseStatus | undefined;
  /** Undefined when no valid policy is in force: nothing then moves on a timer. */
  policy: ReleasePolicy | undefined;
  /** Every desired replica of the release is updated and ready. */
  ready: boolean;
  /** Another Deployment of the app still has replicas, so a scale-down has work left. */
  othersRunning: boolean;
  /** `--scale-down-delay`; 0 = never scale down. */
  scaleDownDelayMs: number;
}

/**
 * When the release next needs the loop although nothing it watches changes (epoch ms), or
 * undefined when only a watched change can move it. The earliest of (mirrored in step.test.ts):
 *
 * | phase       | kind                 | ready | others running | due                                   |
 * |-------------|----------------------|-------|----------------|---------------------------------------|
 * | Progressing | canary with steps    | yes   | -              | stepStartedAt + interval (analysis)   |
 * | Progressing | canary with steps    | no    | -              | lastProgressAt + deadline (+1 ms)     |
 * | Pending     | any                  | no    | -              | lastProgressAt + deadline (+1 ms)     |
 * | Promoted    | any, scale-down on   | -     | yes            | promotedAt + scale-down delay         |
 * | otherwise   |                      |       |                | none                                  |
 *
 * Readiness decides between analysis and deadline because `decide` does: an unready release
 * is never measured and a ready one never times out without an analysis; a flip of readiness
 * arrives as a watch event. The deadline counts once it is strictly exceeded, hence +1 ms.
 */
export function nextDueAt(input: DueInput): number | undefined {
  const { status, policy } = input;
  if (!status || !policy) return undefined;
  const due: number[] = [];
  const deadline = Date.parse(status.lastProgressAt) + policy.progressDeadlineMs + 1;
  // Defined exactly for a Progressing automated canary.
  const analysis = analysisDueAt(status, policy);
  if (analysis !== undefined) due.push(input.ready ? analysis : deadline);
  if (status.phase === "Pending" && !input.ready) due.push(deadline);
  const scaleDown = scaleDownDueAt(status, input.scaleDownDelayMs);
  if (scaleDown !== undefined && input.othersRunning) due.push(scaleDown);
  const finite = due.filter(Number.isFinite);
  return finite.length > 0 ? Math.min(...finite) : undefined;
}

function decide(input: StepInput, prev: ReleaseStatus): ReleaseStatus {
  const { policy, release, analysis, now } = input;
  const s: ReleaseStatus = { ...prev };
  const set = (patch: Partial<ReleaseStatus>): ReleaseStatus => Object.assign(s, patch);
  const deadlineExceeded = now - ms(prev.lastProgressAt, now) > policy.progressDeadlineMs;

  if (prev.phase === "Failed") return s;
  if (policy.abort) {
    return set({
      phase: "Failed",
      weight: 0,
      reason: "Aborted",
      message: "aborted by verso.dev/abort",
    });
  }
  // Blue-green has no steps: the switch follows `promote` both ways, atomically.
  if (policy.strategy === "blue-green") {
    if (policy.promote) {
      if (prev.phase === "Promoted") return s;
      return set({
        phase: "Promoted",
        weight: 100,
        reason: "Promoted",
        message: "switched 100% to the release",
        promotedAt: iso(now),
      });
    }
    if (!release.ready) return pending(s, prev, deadlineExceeded);
    return set({
      phase: "Progressing",
      weight: 0,
      reason: "Preview",
      message: "preview: reachable through verso.dev/match only",
      promotedAt: undefined,
    });
  }
  if (prev.phase === "Promoted") return s;
  if (policy.promote) {
    return set({
      phase: "Promoted",
      weight: 100,
      step: undefined,
      reason: "Promoted",
      message: "promoted by verso.dev/promote",
      promotedAt: iso(now),
    });
  }
  const steps = policy.steps;
  if (!steps) {
    if (!release.ready && prev.phase === "Pending") return pending(s, prev, deadlineExceeded);
    if (prev.phase === "Progressing" && prev.weight === policy.weight) return s;
    return set({
      phase: "Progressing",
      weight: policy.weight,
      reason: "WeightSet",
      message: `weight set by hand to ${policy.weight}%`,
      lastProgressAt: iso(now),
    });
  }
  if (prev.phase === "Pending") {
    if (!release.ready) return pending(s, prev, deadlineExceeded);
    return set({
      phase: policy.paused ? "Paused" : "Progressing",
      step: 1,
      weight: steps[0] as number,
      reason: "Started",
      message: `step 1 of ${steps.length}: ${steps[0]}%`,
      stepStartedAt: iso(now),
      lastProgressAt: iso(now),
    });
  }
  if (policy.paused) {
    if (prev.phase === "Paused") return s;
    return set({
      phase: "Paused",
      reason: "Paused",
      message: `paused at step ${prev.step ?? 1} (${prev.weight}%) by verso.dev/paused`,
    });
  }
  if (prev.phase === "Paused") {
    // The interval restarts on resume: numbers from before the pause say nothing about now.
    return set({
      phase: "Progressing",
      reason: "Resumed",
      message: `resumed at step ${prev.step ?? 1} (${prev.weight}%)`,
      stepStartedAt: iso(now),
      lastProgressAt: iso(now),
    });
  }
  if (!analysis) {
    if (deadlineExceeded && !release.ready) {
      return set({
        phase: "Failed",
        weight: 0,
        reason: "DeadlineExceeded",
        message: `the release was not ready within verso.dev/progress-deadline (${policy.progressDeadlineMs / 1000}s)`,
      });
    }
    return s;
  }
  const record = {
    at: iso(now),
    action: analysis.action,
    reason: analysis.reason,
    message: analysis.message,
    measured: analysis.measured,
  };
  s.analysis = record;
  const step = Math.min(prev.step ?? 1, steps.length);
  switch (analysis.action) {
    case "rollback":
      return set({
        phase: "Failed",
        weight: 0,
        reason: "RolledBack",
        message: `rolled back at step ${step}: ${analysis.message}`,
      });
    case "hold":
      if (deadlineExceeded) {
        return set({
          phase: "Failed",
          weight: 0,
          reason: "DeadlineExceeded",
          message: `no progress within verso.dev/progress-deadline (${policy.progressDeadlineMs / 1000}s): ${analysis.message}`,
        });
      }
      return set({
        reason: "Held",
        message: `held at step ${step} (${prev.weight}%): ${analysis.message}`,
        stepStartedAt: iso(now),
      });
    case "promote":
      return set({
        phase: "Promoted",
        weight: 100,
        reason: "Promoted",
        message: `promoted after step ${step} of ${steps.length}: ${analysis.message}`,
        lastProgressAt: iso(now),
        promotedAt: iso(now),
      });
    case "advance": {
      const next = Math.min(step + 1, steps.length);
      return set({
        step: next,
        weight: steps[next - 1] as number,
        reason: "StepAdvanced",
        message: `step ${next} of ${steps.length}: ${steps[next - 1]}%`,
        stepStartedAt: iso(now),
        lastProgressAt: iso(now),
      });
    }
  }
}

function pending(s: ReleaseStatus, prev: ReleaseStatus, deadlineExceeded: boolean): ReleaseStatus {
  if (deadlineExceeded) {
    return Object.assign(s, {
      phase: "Failed",
      weight: 0,
      reason: "DeadlineExceeded",
      message: "the release was not ready within verso.dev/progress-deadline",
    });
  }
  if (prev.phase === "Pending") return s;
  return Object.assign(s, {
    phase: "Pending",
    weight: 0,
    reason: "Waiting",
    message: "waiting for every replica of the release to be ready",
  });
}

/** What each rule sends to the release now (see ReleaseStatus.match). */
function ruleWeights(policy: ReleasePolicy, s: ReleaseStatus): ReleaseStatus["match"] | undefined {
  if (!policy.match || policy.match.length === 0) return undefined;
  // As in the table (releaseFor): a failed release has no rules, a promoted one takes all.
  if (s.phase === "Failed" || s.phase === "Promoted" || policy.promote) return undefined;
  return tableRules(policy.match, s.weight).map((r) => ({
    rule: formatRule(r),
    weight: r.weight ?? 100,
  }));
}

export function nextState(input: StepInput): StepOutput {
  const base = restartNeeded(input.prev, input) ? fresh(input.release, input.now) : input.prev!;
  const carried: ReleaseStatus = { ...base };
  if (input.prev?.applied) carried.applied = input.prev.applied;
  const status = decide(input, carried);
  status.match = ruleWeights(input.policy, status);
  for (const k of Object.keys(status) as (keyof ReleaseStatus)[]) {
    if (status[k] === undefined) delete status[k];
  }
  const prev = input.prev;
  const changed =
    !prev ||
    prev.phase !== status.phase ||
    prev.step !== status.step ||
    prev.weight !== status.weight ||
    prev.reason !== status.reason ||
    prev.version !== status.version ||
    status.analysis !== prev.analysis;
  if (!changed) return { status };
  return {
    status,
    transition: {
      type: WARNING.has(status.reason) ? "Warning" : "Normal",
      reason: status.reason,
      message: status.message,
    },
  };
}
