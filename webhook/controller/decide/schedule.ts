/**
 * When a release next needs the loop although nothing it watches changes: analysis intervals,
 * deadlines, gate retries, lost gate calls, the scale-down after a promotion. Pure.
 */
import type { GateKind } from "../../../shared/annotations.ts";
import type { ReleasePolicy } from "../../../shared/policy.ts";
import { LOST_CALL_GRACE_MS, msOf, previewAnalysing } from "./machine.ts";
import type { GateRecord, ReleaseStatus } from "./status.ts";

/**
 * An interval is being analysed: an automated canary's step, a blue-green preview's matched
 * traffic (`verso.dev/preview-analysis`), or a blue-green after its switch.
 */
export const analysing = (status: ReleaseStatus | undefined, policy: ReleasePolicy): boolean =>
  status?.phase === "Progressing" &&
  ((policy.strategy === "canary" && policy.steps !== undefined) ||
    status.reason === "Switched" ||
    previewAnalysing(status, policy));

/**
 * A canary at a fixed weight (no steps) taking traffic: nothing is judged, but its actual
 * share is still measured each interval for `verso_release_weight{kind="actual"}`.
 */
export const observing = (status: ReleaseStatus | undefined, policy: ReleasePolicy): boolean =>
  status?.phase === "Progressing" &&
  policy.strategy === "canary" &&
  policy.steps === undefined &&
  status.weight > 0;

/** When the next measurement of such a canary is due (epoch ms): an interval after the last. */
export function observeDueAt(
  status: ReleaseStatus | undefined,
  policy: ReleasePolicy,
  lastObservedAt: number | undefined,
): number | undefined {
  if (!status || !observing(status, policy)) return undefined;
  return (lastObservedAt ?? msOf(status.startedAt, 0)) + policy.intervalMs;
}

/** When is the next analysis due (epoch ms), if one is? */
export function analysisDueAt(
  status: ReleaseStatus | undefined,
  policy: ReleasePolicy,
): number | undefined {
  if (!status || !analysing(status, policy)) return undefined;
  return msOf(status.stepStartedAt, 0) + policy.intervalMs;
}

/**
 * The delay after a promotion before the app's other Deployments are scaled to 0: the
 * release's `verso.dev/scale-down-delay`, else the controller's `--scale-down-delay` (0 = never).
 */
export const scaleDownDelayOf = (policy: ReleasePolicy | undefined, flagMs: number): number =>
  policy?.scaleDownDelayMs ?? flagMs;

/** When the app's other Deployments are to be scaled to 0 (epoch ms), if ever. */
export function scaleDownDueAt(status: ReleaseStatus, delayMs: number): number | undefined {
  if (delayMs <= 0 || status.phase !== "Promoted" || status.promotedAt === undefined)
    return undefined;
  return Date.parse(status.promotedAt) + delayMs;
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
  /** The scale-down delay in force (scaleDownDelayOf); 0 = never scale down. */
  scaleDownDelayMs: number;
  /** When a fixed-weight canary was last measured for its actual share (observeDueAt). */
  lastObservedAt?: number;
}

/** Gates whose failed call is tried again an interval after its answer. */
const RETRIED: readonly GateKind[] = ["pre-rollout", "confirm-promotion"];

function gateDue(status: ReleaseStatus, policy: ReleasePolicy): number[] {
  const due: number[] = [];
  for (const [kind, g] of Object.entries(status.gates ?? {}) as [GateKind, GateRecord][]) {
    const at = msOf(g.at, 0);
    if (g.state === "called") due.push(at + policy.webhookTimeoutMs + LOST_CALL_GRACE_MS);
    else if (g.state === "failed" && status.reason === "AwaitingGate" && RETRIED.includes(kind))
      due.push(at + policy.intervalMs);
  }
  return due;
}

/**
 * When the release next needs the loop (epoch ms), or undefined when only a watched change can
 * move it. The earliest of (mirrored in schedule.test.ts):
 *
 * | phase                  | kind                           | ready | others running | due                                      |
 * |------------------------|--------------------------------|-------|----------------|------------------------------------------|
 * | Progressing            | canary with steps, BG switched | yes   | -              | stepStartedAt + interval (analysis)      |
 * |                        | or BG preview analysis         |       |                |                                          |
 * | Progressing            | canary with steps, BG switched | no    | -              | lastProgressAt + deadline (+1 ms)        |
 * |                        | or BG preview analysis         |       |                |                                          |
 * | Pending                | any                            | no    | -              | lastProgressAt + deadline (+1 ms)        |
 * | Pending (AwaitingGate) | any                            | -     | -              | lastProgressAt + deadline (+1 ms)        |
 * | any, a gate called     | -                              | -     | -              | called at + timeout + 5 s (lost call)    |
 * | AwaitingGate, failed   | pre-rollout, confirm-promotion | -     | -              | answered at + interval (call again)      |
 * | Promoted               | any, scale-down on             | -     | yes            | promotedAt + scale-down delay            |
 * | Progressing, weight > 0| canary at a fixed weight       | yes   | -              | last measured + interval (actual share)  |
 * | otherwise              |                                |       |                | none                                     |
 *
 * Readiness decides between analysis and deadline because the machine does: an unready
 * release is never measured and a ready one never times out without an analysis; a flip of
 * readiness arrives as a watch event. The deadline counts once strictly exceeded, hence +1 ms.
 */
export function nextDueAt(input: DueInput): number | undefined {
  const { status, policy } = input;
  if (!status || !policy || status.reason === "PolicyInvalid") return undefined;
  const due: number[] = [];
  const deadline = Date.parse(status.lastProgressAt) + policy.progressDeadlineMs + 1;
  const analysis = analysisDueAt(status, policy);
  if (analysis !== undefined) due.push(input.ready ? analysis : deadline);
  const observe = observeDueAt(status, policy, input.lastObservedAt);
  if (observe !== undefined && input.ready) due.push(observe);
  if (status.phase === "Pending" && (!input.ready || status.reason === "AwaitingGate"))
    due.push(deadline);
  due.push(...gateDue(status, policy));
  const scaleDown = scaleDownDueAt(status, input.scaleDownDelayMs);
  if (scaleDown !== undefined && input.othersRunning) due.push(scaleDown);
  const finite = due.filter(Number.isFinite);
  return finite.length > 0 ? Math.min(...finite) : undefined;
}
