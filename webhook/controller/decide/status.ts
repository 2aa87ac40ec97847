/**
 * `verso.dev/status`: the release's progress, written by the leader on the release
 * Deployment. It is also the controller's memory: a new leader resumes from it, and every
 * replica derives the streamed weight from it, so all replicas serve the same table.
 */
import { GATE_KINDS, type GateKind } from "../../../shared/annotations.ts";
import type { Analysis } from "./analyse.ts";

export type Phase = "Pending" | "Progressing" | "Paused" | "Promoted" | "Failed";

/** Stable reason codes: the Event reason, the status `reason`, a log field. */
export type StatusReason =
  | "Waiting"
  | "Started"
  | "StepAdvanced"
  | "Held"
  | "Promoted"
  | "RolledBack"
  | "Aborted"
  | "DeadlineExceeded"
  | "Paused"
  | "Resumed"
  | "WeightSet"
  | "Preview"
  | "PolicyInvalid"
  /** Held until a gate answers 2xx (pre-rollout, smoke-test, confirm-promotion). */
  | "AwaitingGate"
  /** A gate answered non-2xx, timed out or could not be reached. */
  | "GateFailed"
  /** The proxies cut the release off after consecutive failures. */
  | "CutOff"
  /** Too few requests for too many intervals, and the policy says fail. */
  | "Inconclusive"
  /** Blue-green: all traffic switched to the release, post-switch analysis running. */
  | "Switched"
  /** Blue-green: switched back to the old colour after a failure in the post-switch window. */
  | "SwitchedBack";

/** Reasons of Events that are not a status reason: gate calls, warnings, caps, notifications. */
export type EventReason =
  | StatusReason
  | "GateCalled"
  | "GatePassed"
  | "AnalysisWarning"
  | "WeightCapped"
  | "NotificationFailed"
  | "ScaledDown"
  | "Superseded";

/** One gate call and its outcome, as kept in status (the last one per kind). */
export interface GateRecord {
  /** Distinguishes calls of one kind: a late answer to an older call is ignored. */
  id: string;
  state: "called" | "passed" | "failed";
  /** When called, or when the outcome arrived. */
  at: string;
  /** For `rollout`: the step the call belongs to. */
  step?: number;
  /** HTTP status, when there was an answer. */
  code?: number;
  message?: string;
}

/** A weight cap in force: what the steps (or the hand-set weight) asked for, and what is sent. */
export interface CapRecord {
  requested: number;
  weight: number;
  by: "max-weight" | "pod-share";
}

export interface AnalysisRecord {
  at: string;
  action: Analysis["action"];
  reason: Analysis["reason"];
  message: string;
  measured: Analysis["measured"];
}

export interface ReleaseStatus {
  phase: Phase;
  /** 1-based index into `verso.dev/steps` (automated canary only). */
  step?: number;
  /** Percent of the app's traffic the release gets now (what the proxies are told). */
  weight: number;
  /**
   * The match rules in force, in order, each with the percent of the requests it matches that
   * go to the release (its own weight, 100, or the release weight for an `@steps` rule).
   * Absent without rules or once the release has failed.
   */
  match?: { rule: string; weight: number }[];
  reason: StatusReason;
  message: string;
  /** Release version this status belongs to; a new version starts afresh. */
  version: string;
  /**
   * Hash of the release's pod template when it started, and again when it failed: a template
   * change after the failure (a fixed image) restarts a failed release. Not metadata.generation: the apiserver bumps a Deployment's
   * generation on annotation changes too, including our own status writes.
   */
  template: string;
  startedAt: string;
  stepStartedAt?: string;
  lastProgressAt: string;
  promotedAt?: string;
  analysis?: AnalysisRecord;
  /** The policy annotations last seen valid; used while the current ones are invalid. */
  applied?: Record<string, string>;
  /** Present while the current annotations are invalid: the codes of the problems. */
  policyErrors?: string[];
  /** Gate calls by kind: the last call of each and its outcome. */
  gates?: Partial<Record<GateKind, GateRecord>>;
  /** Present while a cap keeps the weight below what was asked for. */
  cap?: CapRecord;
  /** Consecutive inconclusive (too few requests) analyses at this step. */
  inconclusive?: number;
  /** Blue-green: when all traffic was switched to the release. */
  switchedAt?: string;
}

const PHASES = new Set<Phase>(["Pending", "Progressing", "Paused", "Promoted", "Failed"]);

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Tolerant read of the annotation: anything unreadable is "no status". */
export function parseStatus(text: string | undefined): ReleaseStatus | undefined {
  if (text === undefined) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(raw) || !PHASES.has(raw.phase as Phase)) return undefined;
  if (typeof raw.weight !== "number" || typeof raw.version !== "string") return undefined;
  if (typeof raw.startedAt !== "string" || typeof raw.lastProgressAt !== "string") return undefined;
  const applied = isRecord(raw.applied)
    ? Object.fromEntries(
        Object.entries(raw.applied).filter((e): e is [string, string] => typeof e[1] === "string"),
      )
    : undefined;
  const status: ReleaseStatus = {
    phase: raw.phase as Phase,
    weight: raw.weight,
    reason: (typeof raw.reason === "string" ? raw.reason : "Waiting") as StatusReason,
    message: typeof raw.message === "string" ? raw.message : "",
    version: raw.version,
    template: typeof raw.template === "string" ? raw.template : "",
    startedAt: raw.startedAt,
    lastProgressAt: raw.lastProgressAt,
  };
  if (typeof raw.step === "number") status.step = raw.step;
  if (typeof raw.stepStartedAt === "string") status.stepStartedAt = raw.stepStartedAt;
  if (typeof raw.promotedAt === "string") status.promotedAt = raw.promotedAt;
  if (isRecord(raw.analysis)) status.analysis = raw.analysis as unknown as AnalysisRecord;
  if (applied) status.applied = applied;
  if (Array.isArray(raw.policyErrors)) status.policyErrors = raw.policyErrors.map(String);
  if (isRecord(raw.gates)) status.gates = gatesOf(raw.gates);
  if (isRecord(raw.cap)) status.cap = raw.cap as unknown as CapRecord;
  if (typeof raw.inconclusive === "number") status.inconclusive = raw.inconclusive;
  if (typeof raw.switchedAt === "string") status.switchedAt = raw.switchedAt;
  return status;
}

function gatesOf(raw: Record<string, unknown>): ReleaseStatus["gates"] {
  const out: Partial<Record<GateKind, GateRecord>> = {};
  for (const kind of GATE_KINDS) {
    const g = raw[kind];
    if (isRecord(g) && typeof g.id === "string" && typeof g.at === "string")
      out[kind] = g as unknown as GateRecord;
  }
  return out;
}

/** Key order fixed so an unchanged status serialises to the same bytes (no needless writes). */
export function formatStatus(s: ReleaseStatus): string {
  return JSON.stringify({
    phase: s.phase,
    step: s.step,
    weight: s.weight,
    reason: s.reason,
    message: s.message,
    version: s.version,
    template: s.template,
    startedAt: s.startedAt,
    stepStartedAt: s.stepStartedAt,
    lastProgressAt: s.lastProgressAt,
    promotedAt: s.promotedAt,
    analysis: s.analysis,
    applied: s.applied,
    policyErrors: s.policyErrors,
    gates: s.gates,
    cap: s.cap,
    inconclusive: s.inconclusive,
    switchedAt: s.switchedAt,
  });
}
