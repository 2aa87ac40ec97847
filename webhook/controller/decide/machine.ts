/**
 * The release state machine: previous status + policy + what was observed + the events that
 * arrived -> next status, the Events to write and the gate calls to make. Pure (the clock is
 * an argument), so a new leader that reads `verso.dev/status` continues exactly where the old
 * one stopped, and every decision about a release is made here: the loop (io/reconcile.ts)
 * only reads, asks and writes.
 *
 * Events, applied in the order they arrived, then `observe` (the annotations and readiness as
 * they are now) once:
 * - `measured`: an analysis interval ended with numbers; `noBaseline`: it ended without (a new
 *   leader's first interval, built-in source);
 * - `gate`: a gate call answered (or timed out, or could not connect);
 * - `cutOff`: proxies report that they cut the release off after consecutive failures.
 *
 * Truth table (mirrored row by row in machine.test.ts, "truth table"). C = canary with steps,
 * BG = blue-green, BGa = blue-green with `verso.dev/auto-promote`, BGp = BGa with
 * `verso.dev/preview-analysis: N` (N > 0; "step" is the preview interval, 1..N). First matching
 * row wins; `-` = any. "gate X ok" means X is not configured or its last call answered 2xx.
 *
 * | phase (reason)          | kind  | event / condition                          | next phase (reason)              | action                               |
 * |-------------------------|-------|--------------------------------------------|----------------------------------|--------------------------------------|
 * | any                     | -     | policy invalid, none good before           | unchanged (PolicyInvalid)        | Warning PolicyInvalid                |
 * | not Failed              | -     | abort                                      | Failed (Aborted)                 | call rollback, post-rollout          |
 * | Promoted                | BG    | switched by hand, verso.dev/promote removed| Progressing (Preview), 0 %       | switch back by hand                  |
 * | Failed, Promoted        | -     | any (same version and template)            | unchanged                        | -                                    |
 * | Pending                 | -     | not ready, deadline passed                 | Failed (DeadlineExceeded)        | call rollback, post-rollout          |
 * | Pending                 | -     | not ready                                  | Pending (Waiting)                | -                                    |
 * | Pending                 | C, BGa| ready, pre-rollout not ok, deadline passed | Failed (DeadlineExceeded)        | call rollback, post-rollout          |
 * | Pending                 | C, BGa| ready, pre-rollout not ok                  | Pending (AwaitingGate)           | call pre-rollout (again each interval)|
 * | Pending                 | C     | ready, pre-rollout ok                      | Progressing (Started), step 1    | call rollout, take baseline          |
 * | Pending, Progressing    | BG    | ready, smoke-test failed                   | Failed (GateFailed)              | call rollback, post-rollout          |
 * | Pending, Progressing    | BG    | ready, smoke-test not answered             | Progressing (AwaitingGate), 0 %  | call smoke-test                      |
 * | Pending, Progressing    | BG    | ready, smoke-test ok, not BGa              | Progressing (Preview), 0 %       | promote=true switches: Promoted 100  |
 * | Progressing (Prev./Held)| BGp   | measured: rollback (any gate fails)        | Failed (GateFailed), 0 %         | call rollback, post-rollout          |
 * | Progressing (Prev./Held)| BGp   | measured: inconclusive < limit, noBaseline | Progressing (Held), 0 %, count+1 | deadline passed: Failed              |
 * | Progressing (Prev./Held)| BGp   | measured: inconclusive = limit, fail       | Failed (Inconclusive), 0 %       | call rollback, post-rollout          |
 * | Progressing (Prev./Held)| BGp   | measured: pass (or promote by policy), < N | Progressing (Preview), step + 1  | call rollout, take baseline          |
 * | Progressing (Prev./Held)| BGp   | measured: pass, step N                     | preview passed: next two rows    | -                                    |
 * | Pending, Progressing    | BGp   | ready, smoke-test ok, preview not passed   | Progressing (Preview), 0 %, 1    | call rollout, baseline, drop confirm |
 * | Progressing (Preview)   | BGa   | smoke-test, preview ok, confirm not ok     | Progressing (AwaitingGate), 0 %  | call confirm-promotion               |
 * | Progressing (Preview)   | BGa   | smoke-test, preview ok, confirm ok         | Progressing (Switched), 100 %    | call rollout, take baseline          |
 * | Progressing (Switched)  | BGa   | measured: rollback / gate rollout failed   | Failed (SwitchedBack), 0 %       | call rollback, post-rollout          |
 * | Progressing (Switched)  | BGa   | measured: pass, window over                | Promoted                         | call post-rollout                    |
 * | Progressing (Switched)  | BGa   | measured: pass, window not over            | Progressing (Switched)           | next interval                        |
 * | Progressing             | C     | paused                                     | Paused                           | -                                    |
 * | Paused                  | C     | not paused                                 | Progressing (Resumed)            | restart the interval                 |
 * | Progressing             | C     | measured, rollout gate still unanswered    | Progressing (AwaitingGate)       | restart the interval                 |
 * | Progressing             | C     | measured: rollback                         | Failed (RolledBack)              | call rollback, post-rollout          |
 * | Progressing             | C     | measured: inconclusive < limit             | Progressing (Held), count + 1    | deadline passed: Failed              |
 * | Progressing             | C     | measured: inconclusive = limit, fail       | Failed (Inconclusive)            | call rollback, post-rollout          |
 * | Progressing             | C     | measured: inconclusive = limit, promote    | as a pass                        | -                                    |
 * | Progressing             | C     | measured: pass with a warning              | as a pass                        | Warning AnalysisWarning (notified)   |
 * | Progressing             | C     | measured: pass, not last step              | Progressing (StepAdvanced)       | call rollout, take baseline          |
 * | Progressing             | C     | measured: pass, last step, confirm not ok  | Progressing (AwaitingGate)       | call confirm-promotion               |
 * | Progressing (AwaitingG.)| C     | gate confirm-promotion passed              | Promoted                         | call post-rollout                    |
 * | Progressing             | C     | measured: pass, last step, confirm ok      | Promoted                         | call post-rollout                    |
 * | Progressing             | C     | measured: noBaseline                       | Progressing (Held)               | restart the interval                 |
 * | Progressing, Paused     | C, BG | gate rollout failed                        | Failed (GateFailed/SwitchedBack) | call rollback, post-rollout          |
 * | Progressing, Paused     | C, BG | cutOff                                     | Failed (CutOff/SwitchedBack), 0 %| call rollback, post-rollout          |
 * | any with a called gate  | -     | no answer within its timeout + 5 s (lost)  | the gate counts as failed        | Warning GateFailed                   |
 *
 * Every gate call and outcome is an Event (GateCalled, GatePassed, GateFailed) and is kept in
 * `status.gates`; the weight of every row goes through the capacity guard (cap.ts).
 */
import type { GateKind } from "../../../shared/annotations.ts";
import { formatRule, type PolicyError, type ReleasePolicy } from "../../../shared/policy.ts";
import { analyse, type Analysis, type Measurements } from "./analyse.ts";
import { capWeight, type ReadyPods } from "./cap.ts";
import { tableRules } from "./routes.ts";
import type { EventReason, GateRecord, ReleaseStatus, StatusReason } from "./status.ts";

export interface ObservedRelease {
  version: string;
  /** Hash of the pod template. */
  template: string;
  /** Every desired replica of the release is updated and ready. */
  ready: boolean;
  /** Ready pods of the release and of the whole app (the capacity guard's pod share). */
  pods?: ReadyPods;
}

/** What a gate call came back with; `ok` is a 2xx answer in time. */
export interface GateResult {
  kind: GateKind;
  id: string;
  ok: boolean;
  /** HTTP status, when there was an answer. */
  code?: number;
  message: string;
}

export type ReleaseEvent =
  | { type: "measured"; measurements: Measurements }
  | { type: "noBaseline" }
  | { type: "gate"; result: GateResult }
  | { type: "cutOff"; version: string; proxies: number };

export interface MachineInput {
  prev: ReleaseStatus | undefined;
  /** The policy in force (routes.ts resolvePolicy): current annotations, else the last good. */
  policy: ReleasePolicy | undefined;
  /** Problems with the current annotations; empty when they are valid. */
  policyErrors: readonly PolicyError[];
  /** The Deployment's policy annotations now, recorded as `applied` when they are valid. */
  annotations: Readonly<Record<string, string>>;
  release: ObservedRelease;
  events: readonly ReleaseEvent[];
  now: number;
}

export interface Transition {
  type: "Normal" | "Warning";
  reason: EventReason;
  message: string;
}

/** A gate the loop is to call, without waiting for it: the answer comes back as an event. */
export interface GateCall {
  kind: GateKind;
  id: string;
  url: string;
  timeoutMs: number;
}

export interface MachineOutput {
  status: ReleaseStatus;
  /** Events to write (and notify), in order; the status transition, if any, first. */
  events: Transition[];
  calls: GateCall[];
  /** A new analysis interval starts now: the built-in metrics source takes its baseline. */
  baseline: boolean;
}

/** A call with no answer this long after its timeout was lost (the leader changed meanwhile). */
export const LOST_CALL_GRACE_MS = 5_000;

const WARNING = new Set<StatusReason>([
  "RolledBack",
  "Aborted",
  "DeadlineExceeded",
  "PolicyInvalid",
  "GateFailed",
  "CutOff",
  "Inconclusive",
  "SwitchedBack",
]);
const iso = (ms: number): string => new Date(ms).toISOString();
export const msOf = (text: string | undefined, fallback: number): number => {
  const t = text === undefined ? NaN : Date.parse(text);
  return Number.isFinite(t) ? t : fallback;
};

/** Intervals a blue-green preview must pass before its switch (`verso.dev/preview-analysis`). */
export const previewIntervals = (policy: ReleasePolicy): number =>
  policy.strategy === "blue-green" && policy.autoPromote ? (policy.previewAnalysis ?? 0) : 0;

/**
 * A blue-green preview whose matched traffic is being analysed (`verso.dev/preview-analysis`):
 * at 0 %, interval `step` of N, Preview (or Held on too few requests). The loop measures it
 * every interval (schedule.ts, analysing) as it does a canary's step.
 */
export const previewAnalysing = (s: ReleaseStatus | undefined, policy: ReleasePolicy): boolean =>
  s?.phase === "Progressing" &&
  previewIntervals(policy) > 0 &&
  s.step !== undefined &&
  (s.reason === "Preview" || s.reason === "Held");

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
function restartNeeded(prev: ReleaseStatus | undefined, input: MachineInput): boolean {
  if (!prev || prev.version !== input.release.version) return true;
  if (prev.phase !== "Failed") return false;
  if (prev.template !== input.release.template) return true;
  return prev.reason === "Aborted" && input.policy?.abort !== true;
}

/** The working state of one run of the machine: the status being built and what to do. */
class Run {
  readonly events: Transition[] = [];
  readonly calls: GateCall[] = [];
  readonly s: ReleaseStatus;
  readonly policy: ReleasePolicy;
  readonly release: ObservedRelease;
  readonly now: number;
  constructor(s: ReleaseStatus, policy: ReleasePolicy, release: ObservedRelease, now: number) {
    this.s = s;
    this.policy = policy;
    this.release = release;
    this.now = now;
  }

  set(patch: Partial<ReleaseStatus>): void {
    Object.assign(this.s, patch);
  }

  get deadlineExceeded(): boolean {
    return this.now - msOf(this.s.lastProgressAt, this.now) > this.policy.progressDeadlineMs;
  }

  gate(kind: GateKind): GateRecord | undefined {
    return this.s.gates?.[kind];
  }

  /** Not configured, or its last call answered 2xx. */
  gateOk(kind: GateKind): boolean {
    return this.policy.webhooks[kind] === undefined || this.gate(kind)?.state === "passed";
  }

  /**
   * Calls the gate unless a call is in flight; a failed one is called again `retryMs` after
   * its answer (undefined: never again).
   */
  callGate(kind: GateKind, retryMs?: number): void {
    const url = this.policy.webhooks[kind];
    if (url === undefined) return;
    const last = this.gate(kind);
    if (last?.state === "called") return;
    if (last?.state === "passed" && kind !== "rollout") return;
    if (
      last?.state === "failed" &&
      (retryMs === undefined || this.now < msOf(last.at, 0) + retryMs)
    )
      return;
    this.forceCall(kind);
  }

  /** A new call whatever the last one was (rollout: every interval; post-rollout, rollback: once per outcome). */
  forceCall(kind: GateKind): void {
    const url = this.policy.webhooks[kind];
    if (url === undefined) return;
    const id = `${kind}@${iso(this.now)}`;
    const record: GateRecord = { id, state: "called", at: iso(this.now) };
    if (kind === "rollout" && this.s.step !== undefined) record.step = this.s.step;
    this.s.gates = { ...this.s.gates, [kind]: record };
    this.calls.push({ kind, id, url, timeoutMs: this.policy.webhookTimeoutMs });
    this.events.push({
      type: "Normal",
      reason: "GateCalled",
      message: `calling the ${kind} gate ${url}`,
    });
  }

  /**
   * Failed, with the pod template it failed with: only a change after this (a fixed image)
   * restarts it. The template it started with would also restart it for the edit that broke
   * it (a bad env set mid-release), straight back to 100 % of a known-bad blue-green colour.
   */
  fail(reason: StatusReason, message: string): void {
    this.set({ phase: "Failed", weight: 0, reason, message, template: this.release.template });
  }
}

/** Applies one gate answer to the run; a late answer to an older call is ignored. */
function onGate(r: Run, result: GateResult): void {
  const last = r.gate(result.kind);
  if (!last || last.id !== result.id || last.state !== "called") return;
  const record: GateRecord = {
    ...last,
    state: result.ok ? "passed" : "failed",
    at: iso(r.now),
    message: result.message,
  };
  if (result.code !== undefined) record.code = result.code;
  r.s.gates = { ...r.s.gates, [result.kind]: record };
  r.events.push({
    type: result.ok ? "Normal" : "Warning",
    reason: result.ok ? "GatePassed" : "GateFailed",
    message: `${result.kind} gate ${result.ok ? "passed" : "failed"}: ${result.message}`,
  });
  if (result.ok) {
    if (result.kind === "confirm-promotion" && awaitingConfirmation(r))
      promote(r, "promotion confirmed by the confirm-promotion gate");
    return;
  }
  const live = r.s.phase === "Progressing" || r.s.phase === "Paused";
  if (result.kind === "rollout" && live)
    failLive(r, "GateFailed", `rollout gate failed: ${result.message}`);
  if (result.kind === "smoke-test" && r.policy.strategy === "blue-green" && r.s.phase !== "Failed")
    r.fail("GateFailed", `smoke test failed: ${result.message}; the release never got traffic`);
}

/** A call with no answer long after its timeout is counted as failed (the answer was lost). */
function expireLostCalls(r: Run): void {
  for (const [kind, g] of Object.entries(r.s.gates ?? {}) as [GateKind, GateRecord][]) {
    if (g.state !== "called") continue;
    if (r.now < msOf(g.at, r.now) + r.policy.webhookTimeoutMs + LOST_CALL_GRACE_MS) continue;
    onGate(r, { kind, id: g.id, ok: false, message: "no answer (the call was lost)" });
  }
}

/** Rolls a live release back; after a blue-green switch that is a switch back. */
function failLive(r: Run, reason: StatusReason, message: string): void {
  if (r.s.reason === "Switched" || (r.policy.strategy === "blue-green" && r.s.weight === 100)) {
    r.fail("SwitchedBack", `switched back to the old colour: ${message}`);
    return;
  }
  r.fail(reason, message);
}

const awaitingConfirmation = (r: Run): boolean =>
  r.s.phase === "Progressing" &&
  r.s.reason === "AwaitingGate" &&
  r.gate("confirm-promotion") !== undefined;

function promote(r: Run, message: string): void {
  if (r.policy.strategy === "blue-green" && r.policy.autoPromote && r.s.reason !== "Switched") {
    switchOver(r);
    return;
  }
  r.set({
    phase: "Promoted",
    weight: 100,
    reason: "Promoted",
    message,
    lastProgressAt: iso(r.now),
    promotedAt: iso(r.now),
  });
}

/** Blue-green: all traffic to the new colour in one table revision, then analysis. */
function switchOver(r: Run): void {
  r.set({
    phase: "Progressing",
    weight: 100,
    step: undefined,
    reason: "Switched",
    message: `switched 100% to the release; analysing for ${r.policy.postSwitchWindowMs / 1000}s before it is final`,
    switchedAt: iso(r.now),
    stepStartedAt: iso(r.now),
    lastProgressAt: iso(r.now),
  });
}

/** The pass branch of an analysis: next step, or promotion behind the confirm gate. */
function passed(r: Run, a: Analysis, atEnd: boolean): void {
  if (previewAnalysing(r.s, r.policy)) {
    previewPassed(r, a);
    return;
  }
  const steps = r.policy.steps ?? [];
  const step = Math.min(r.s.step ?? 1, Math.max(steps.length, 1));
  if (r.s.reason === "Switched") {
    const windowOver = r.now - msOf(r.s.switchedAt, r.now) >= r.policy.postSwitchWindowMs;
    if (windowOver) promote(r, `promoted: the post-switch window passed every gate: ${a.message}`);
    else r.set({ message: `switched; analysis passed: ${a.message}`, stepStartedAt: iso(r.now) });
    return;
  }
  if (!atEnd) {
    const next = Math.min(step + 1, steps.length);
    r.set({
      step: next,
      weight: steps[next - 1] as number,
      reason: "StepAdvanced",
      message: `step ${next} of ${steps.length}: ${steps[next - 1]}%`,
      stepStartedAt: iso(r.now),
      lastProgressAt: iso(r.now),
    });
    return;
  }
  if (!r.gateOk("confirm-promotion")) {
    r.callGate("confirm-promotion", 0);
    r.set({
      reason: "AwaitingGate",
      message: `step ${step} of ${steps.length} passed; waiting for the confirm-promotion gate to answer 2xx`,
      stepStartedAt: iso(r.now),
    });
    return;
  }
  promote(r, `promoted after step ${step} of ${steps.length}: ${a.message}`);
}

function hold(r: Run, message: string): void {
  if (r.deadlineExceeded && r.s.reason !== "AwaitingGate") {
    r.fail(
      "DeadlineExceeded",
      `no progress within verso.dev/progress-deadline (${r.policy.progressDeadlineMs / 1000}s): ${message}`,
    );
    return;
  }
  const step = r.s.step ?? 1;
  if (previewAnalysing(r.s, r.policy)) {
    r.set({
      reason: "Held",
      message: `preview held at interval ${step} of ${previewIntervals(r.policy)} (matched traffic only, 0%): ${message}`,
      stepStartedAt: iso(r.now),
    });
    return;
  }
  r.set({
    reason: r.s.reason === "Switched" ? "Switched" : "Held",
    message:
      r.s.reason === "Switched"
        ? `switched; held: ${message}`
        : `held at step ${step} (${r.s.weight}%): ${message}`,
    stepStartedAt: iso(r.now),
  });
}

/** An analysis interval ended: judge it (analyse.ts) and move on. */
function onMeasured(r: Run, m: Measurements | undefined): void {
  const inPreview = previewAnalysing(r.s, r.policy);
  const analysing =
    inPreview ||
    (r.s.phase === "Progressing" && (r.policy.steps !== undefined || r.s.reason === "Switched"));
  if (!analysing) return;
  const steps = r.policy.steps ?? [];
  const atEnd = !inPreview && (r.s.reason === "Switched" || (r.s.step ?? 1) >= steps.length);
  const a: Analysis = m
    ? analyse(m, r.policy.gates, atEnd)
    : {
        action: "hold",
        reason: "NoBaseline",
        message: "no baseline yet (new leader): measuring from now",
        measured: { releaseRequests: 0, stableRequests: 0 },
      };
  r.s.analysis = {
    at: iso(r.now),
    action: a.action,
    reason: a.reason,
    message: a.message,
    measured: a.measured,
  };
  if (a.warning !== undefined) {
    r.events.push({ type: "Warning", reason: "AnalysisWarning", message: a.warning });
  }
  if (r.gate("rollout")?.state === "called") {
    hold(r, "waiting for the rollout gate to answer");
    return;
  }
  if (a.reason === "NotEnoughTraffic") {
    const count = (r.s.inconclusive ?? 0) + 1;
    r.s.inconclusive = count;
    const limit = r.policy.inconclusiveLimit;
    if (limit === undefined || count < limit || r.policy.onInconclusive === "hold") {
      hold(r, a.message);
      return;
    }
    if (r.policy.onInconclusive === "fail") {
      const where = inPreview ? "in preview, " : "";
      failLive(r, "Inconclusive", `${where}${count} inconclusive intervals in a row: ${a.message}`);
      return;
    }
    passed(
      r,
      { ...a, message: `${count} inconclusive intervals in a row, promoted by policy` },
      atEnd,
    );
    return;
  }
  delete r.s.inconclusive;
  if (a.action === "rollback" && inPreview) {
    r.fail(
      "GateFailed",
      `failed in preview, ${previewText(r)} on ${a.measured.releaseRequests} matched requests: ${a.message}; the release never got unmatched traffic`,
    );
    return;
  }
  if (a.action === "rollback") {
    failLive(r, "RolledBack", `rolled back at step ${r.s.step ?? 1}: ${a.message}`);
    return;
  }
  if (a.action === "hold") {
    hold(r, a.message);
    return;
  }
  if (r.s.reason === "AwaitingGate" && r.gate("confirm-promotion")?.state === "called") {
    r.set({ stepStartedAt: iso(r.now) });
    return;
  }
  passed(r, a, atEnd);
}

function onCutOff(r: Run, e: { version: string; proxies: number }): void {
  const live = r.s.phase === "Progressing" || r.s.phase === "Paused";
  if (!live || e.version !== r.s.version || r.policy.cutoffFailures === 0) return;
  failLive(
    r,
    "CutOff",
    `cut off by ${e.proxies} prox${e.proxies === 1 ? "y" : "ies"} after ${r.policy.cutoffFailures} consecutive failures`,
  );
}

function waitingOrDeadline(r: Run): void {
  if (r.deadlineExceeded) {
    r.fail("DeadlineExceeded", "the release was not ready within verso.dev/progress-deadline");
    return;
  }
  if (r.s.phase === "Pending" && r.s.reason === "Waiting") return;
  r.set({
    phase: "Pending",
    weight: 0,
    reason: "Waiting",
    message: "waiting for every replica of the release to be ready",
  });
}

/** Before any traffic: the pre-rollout gate, retried every interval until the deadline. */
function preRolloutOk(r: Run): boolean {
  if (r.gateOk("pre-rollout")) return true;
  if (r.deadlineExceeded) {
    r.fail(
      "DeadlineExceeded",
      `the pre-rollout gate did not pass within verso.dev/progress-deadline: ${r.gate("pre-rollout")?.message ?? "no answer"}`,
    );
    return false;
  }
  r.callGate("pre-rollout", r.policy.intervalMs);
  r.set({
    phase: "Pending",
    weight: 0,
    reason: "AwaitingGate",
    message: "waiting for the pre-rollout gate to answer 2xx",
  });
  return false;
}

/** Blue-green by hand (`verso.dev/promote: "true"`): 100 % at once. */
function switchByHand(r: Run): void {
  r.set({
    phase: "Promoted",
    weight: 100,
    reason: "Promoted",
    message: "switched 100% to the release",
    promotedAt: iso(r.now),
  });
}

/** Blue-green preview: the new colour only through `verso.dev/match`. */
function preview(r: Run): void {
  r.set({
    phase: "Progressing",
    weight: 0,
    reason: "Preview",
    message: "preview: reachable through verso.dev/match only",
    promotedAt: undefined,
  });
}

const previewText = (r: Run): string =>
  `preview interval ${r.s.step ?? 1} of ${previewIntervals(r.policy)}`;

/** BGp: the preview's matched traffic has intervals left to pass (AwaitingGate once it passed). */
const previewAnalysisLeft = (r: Run): boolean =>
  previewIntervals(r.policy) > 0 &&
  !(
    r.s.phase === "Progressing" &&
    r.s.reason === "AwaitingGate" &&
    (r.s.step ?? 0) >= previewIntervals(r.policy)
  );

/** BGp: the preview analysis starts at its first interval (a baseline, the rollout gate). */
function startPreviewAnalysis(r: Run): void {
  if (previewAnalysing(r.s, r.policy)) return;
  // A confirmation answered for an earlier run of the preview (its pods went unready, it
  // starts over) does not confirm this one: the gate is asked again once it has passed.
  if (r.s.gates?.["confirm-promotion"]) {
    const { ["confirm-promotion"]: _confirmed, ...rest } = r.s.gates;
    r.s.gates = rest;
  }
  r.set({
    phase: "Progressing",
    weight: 0,
    step: 1,
    reason: "Preview",
    message: `preview: reachable through verso.dev/match only; analysing its matched traffic, interval 1 of ${previewIntervals(r.policy)}`,
    promotedAt: undefined,
    inconclusive: undefined,
    stepStartedAt: iso(r.now),
    lastProgressAt: iso(r.now),
  });
}

/** BGp: an interval of the matched traffic passed; the next one, or on to confirm and switch. */
function previewPassed(r: Run, a: Analysis): void {
  const n = previewIntervals(r.policy);
  const step = r.s.step ?? 1;
  const text = `${previewText(r)} passed on ${a.measured.releaseRequests} matched requests: ${a.message}`;
  r.set({ lastProgressAt: iso(r.now) });
  if (step < n) {
    r.set({
      step: step + 1,
      reason: "Preview",
      message: `${text}; analysing interval ${step + 1} of ${n}`,
      stepStartedAt: iso(r.now),
    });
    return;
  }
  confirmOrSwitch(r);
}

/** BGa, preview passed: the confirm-promotion gate (asked again every interval), then the switch. */
function confirmOrSwitch(r: Run): void {
  const n = previewIntervals(r.policy);
  const passed =
    n > 0 ? `preview passed ${n} analysis intervals of its matched traffic` : "preview passed";
  if (!r.gateOk("confirm-promotion")) {
    r.callGate("confirm-promotion", r.policy.intervalMs);
    r.set({
      phase: "Progressing",
      weight: 0,
      reason: "AwaitingGate",
      message: `${passed}; waiting for the confirm-promotion gate to answer 2xx`,
    });
    return;
  }
  switchOver(r);
}

function observeBlueGreen(r: Run): void {
  const { policy, release, s } = r;
  if (s.phase === "Promoted" && !policy.autoPromote && !policy.promote) {
    // Manual switch back: preview again.
    preview(r);
    return;
  }
  if (s.phase === "Promoted") return;
  if (s.reason === "Switched") return;
  // A hand switch needs no ready check (as ever), unless a smoke test must pass first.
  if (policy.promote && policy.webhooks["smoke-test"] === undefined) {
    switchByHand(r);
    return;
  }
  if (!release.ready) {
    waitingOrDeadline(r);
    return;
  }
  if (policy.autoPromote && !preRolloutOk(r)) return;
  if (!r.gateOk("smoke-test")) {
    r.callGate("smoke-test");
    if (r.s.phase !== "Failed")
      r.set({
        phase: "Progressing",
        weight: 0,
        reason: "AwaitingGate",
        message: "preview: waiting for the smoke-test gate",
      });
    return;
  }
  if (policy.promote) {
    switchByHand(r);
    return;
  }
  if (policy.autoPromote) {
    if (previewAnalysisLeft(r)) startPreviewAnalysis(r);
    else confirmOrSwitch(r);
    return;
  }
  if (s.phase === "Progressing" && s.reason === "Preview") return;
  preview(r);
}

function observeCanary(r: Run): void {
  const { policy, release, s } = r;
  if (s.phase === "Promoted") return;
  if (policy.promote) {
    r.set({
      phase: "Promoted",
      weight: 100,
      step: undefined,
      reason: "Promoted",
      message: "promoted by verso.dev/promote",
      promotedAt: iso(r.now),
    });
    return;
  }
  const steps = policy.steps;
  if (!steps) {
    if (!release.ready && s.phase === "Pending") {
      waitingOrDeadline(r);
      return;
    }
    const asked = s.cap?.requested ?? s.weight;
    if (s.phase === "Progressing" && s.reason === "WeightSet" && asked === policy.weight) return;
    r.set({
      phase: "Progressing",
      weight: policy.weight,
      reason: "WeightSet",
      message: `weight set by hand to ${policy.weight}%`,
      lastProgressAt: iso(r.now),
    });
    return;
  }
  if (s.phase === "Pending") {
    if (!release.ready) {
      waitingOrDeadline(r);
      return;
    }
    if (!preRolloutOk(r)) return;
    r.set({
      phase: policy.paused ? "Paused" : "Progressing",
      step: 1,
      weight: steps[0] as number,
      reason: "Started",
      message: `step 1 of ${steps.length}: ${steps[0]}%`,
      stepStartedAt: iso(r.now),
      lastProgressAt: iso(r.now),
    });
    return;
  }
  if (policy.paused) {
    if (s.phase === "Paused") return;
    r.set({
      phase: "Paused",
      reason: "Paused",
      message: `paused at step ${s.step ?? 1} (${s.weight}%) by verso.dev/paused`,
    });
    return;
  }
  if (s.phase === "Paused") {
    // The interval restarts on resume: numbers from before the pause say nothing about now.
    r.set({
      phase: "Progressing",
      reason: "Resumed",
      message: `resumed at step ${s.step ?? 1} (${s.weight}%)`,
      stepStartedAt: iso(r.now),
      lastProgressAt: iso(r.now),
    });
    return;
  }
  if (r.deadlineExceeded && !release.ready) {
    r.fail(
      "DeadlineExceeded",
      `the release was not ready within verso.dev/progress-deadline (${policy.progressDeadlineMs / 1000}s)`,
    );
  }
}

/** The annotations and readiness as they are now. */
function observe(r: Run): void {
  if (r.s.phase === "Failed") return;
  if (r.policy.abort) {
    r.fail("Aborted", "aborted by verso.dev/abort");
    return;
  }
  if (r.policy.strategy === "blue-green") observeBlueGreen(r);
  else observeCanary(r);
}

/** Gates called on entering a phase or an interval. */
function entryCalls(r: Run, prev: ReleaseStatus | undefined): void {
  const s = r.s;
  const entered = prev?.phase !== s.phase || prev.version !== s.version;
  if (s.phase === "Failed" && entered) {
    r.forceCall("rollback");
    r.forceCall("post-rollout");
  }
  if (s.phase === "Promoted" && entered) r.forceCall("post-rollout");
  const newInterval =
    s.phase === "Progressing" &&
    s.stepStartedAt !== undefined &&
    s.stepStartedAt !== prev?.stepStartedAt;
  const analysed =
    r.policy.steps !== undefined || s.reason === "Switched" || previewAnalysing(s, r.policy);
  // One rollout call per interval; one still in flight is waited for, not replaced.
  if (
    newInterval &&
    analysed &&
    s.reason !== "AwaitingGate" &&
    r.gate("rollout")?.state !== "called"
  )
    r.forceCall("rollout");
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

/** What the steps (or the hand-set weight) ask for, before any cap. */
function requestedWeight(policy: ReleasePolicy, s: ReleaseStatus): number {
  if (policy.strategy !== "canary") return s.weight;
  if (!policy.steps) return policy.weight;
  return policy.steps[(s.step ?? 1) - 1] ?? s.weight;
}

/** The capacity guard on a live, partial weight (cap.ts); promotion and 0 are never capped. */
function applyCap(r: Run): Transition | undefined {
  const s = r.s;
  const requested = requestedWeight(r.policy, s);
  delete s.cap;
  if (s.phase !== "Progressing" && s.phase !== "Paused") return undefined;
  if (requested <= 0 || s.reason === "Switched") return undefined;
  const capped = capWeight(requested, r.policy, r.release.pods);
  s.weight = capped.weight;
  if (!capped.cap) return undefined;
  s.cap = capped.cap;
  return {
    type: "Normal",
    reason: "WeightCapped",
    message: `weight capped at ${capped.cap.weight}% (asked ${requested}%) by ${capped.cap.by === "max-weight" ? "verso.dev/max-weight" : "verso.dev/pod-share-factor"}`,
  };
}

const errorText = (errors: readonly PolicyError[]): string =>
  errors.map((e) => e.message).join("; ");

/**
 * The Warning Event for invalid annotations, once per distinct set of problems: the previous
 * status already names them when they were reported before.
 */
function policyWarning(
  input: MachineInput,
  prev: ReleaseStatus | undefined,
): Transition | undefined {
  if (input.policyErrors.length === 0) return undefined;
  const text = errorText(input.policyErrors);
  if (prev?.message.includes(text)) return undefined;
  const kept = input.policy
    ? "the last good policy stays in force"
    : "no release policy is in force";
  return { type: "Warning", reason: "PolicyInvalid", message: `${text}; ${kept}` };
}

/** No valid policy, now or before: the status says so and nothing moves. */
function invalid(input: MachineInput, base: ReleaseStatus): MachineOutput {
  const status: ReleaseStatus = {
    ...base,
    reason: "PolicyInvalid",
    message: `invalid annotations: ${errorText(input.policyErrors)}`,
    policyErrors: codesOf(input.policyErrors),
  };
  const warning = policyWarning(input, input.prev);
  return { status, events: warning ? [warning] : [], calls: [], baseline: false };
}

const codesOf = (errors: readonly PolicyError[]): string[] =>
  [...new Set(errors.map((e) => e.code))].sort();

export function nextState(input: MachineInput): MachineOutput {
  const { prev, policy, now } = input;
  const restart = restartNeeded(prev, input);
  const base: ReleaseStatus = restart || !prev ? fresh(input.release, now) : { ...prev };
  if (prev?.applied) base.applied = prev.applied;
  if (!policy) return invalid(input, prev ? { ...prev } : base);

  const r = new Run(base, policy, input.release, now);
  for (const e of input.events) {
    if (e.type === "gate") onGate(r, e.result);
    else if (e.type === "cutOff") onCutOff(r, e);
    else if (r.s.phase !== "Failed" && r.s.phase !== "Promoted")
      onMeasured(r, e.type === "measured" ? e.measurements : undefined);
  }
  expireLostCalls(r);
  observe(r);
  const capped = applyCap(r);
  const before = restart ? undefined : prev;
  entryCalls(r, before);

  const status = r.s;
  status.match = ruleWeights(policy, status);
  if (input.policyErrors.length === 0) {
    status.applied = { ...input.annotations };
    delete status.policyErrors;
  } else {
    status.policyErrors = codesOf(input.policyErrors);
    status.message = `${status.message} (invalid annotations ignored: ${errorText(input.policyErrors)})`;
  }
  for (const k of Object.keys(status) as (keyof ReleaseStatus)[]) {
    if (status[k] === undefined) delete status[k];
  }
  const changed =
    !prev ||
    prev.phase !== status.phase ||
    prev.step !== status.step ||
    prev.weight !== status.weight ||
    prev.reason !== status.reason ||
    prev.version !== status.version ||
    status.analysis !== prev.analysis;
  const events: Transition[] = [];
  if (changed) {
    events.push({
      type: WARNING.has(status.reason) ? "Warning" : "Normal",
      reason: status.reason,
      message: status.message,
    });
  }
  if (capped && (prev?.cap?.weight !== status.cap?.weight || prev?.cap?.by !== status.cap?.by))
    events.push(capped);
  const warning = policyWarning(input, prev);
  if (warning) events.push(warning);
  events.push(...r.events);
  const baseline =
    status.phase === "Progressing" &&
    status.stepStartedAt !== undefined &&
    status.stepStartedAt !== before?.stepStartedAt &&
    (policy.steps !== undefined ||
      status.reason === "Switched" ||
      previewAnalysing(status, policy));
  return { status, events, calls: r.calls, baseline };
}
