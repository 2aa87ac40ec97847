/**
 * What the controller sends outside: the JSON body of a gate call, and the notification
 * payloads (generic JSON, Slack incoming webhook). Pure; the HTTP is in io/gateCalls.ts and
 * io/notify.ts. Field names are documented in docs/controller.md ("Gates", "Notifications"):
 * add fields, rename none.
 */
import type { GateKind } from "../../../shared/annotations.ts";
import type { Transition } from "./machine.ts";
import type { AnalysisRecord, Phase, ReleaseStatus } from "./status.ts";

/** The release a call or a notification is about. */
export interface ReleaseRef {
  /** The release Deployment. */
  name: string;
  namespace: string;
  app: string;
  version: string;
  /** The app's other versions (what serves when the release does not). */
  stableVersions: string[];
}

/** The body of every gate call (Flagger's `name`, `namespace`, `phase`, plus ours). */
export interface GatePayload {
  name: string;
  namespace: string;
  app: string;
  /** The gate kind being called: `pre-rollout`, `rollout`, ... */
  type: GateKind;
  phase: Phase;
  reason: string;
  weight: number;
  step?: number;
  version: string;
  stableVersions: string[];
  analysis?: AnalysisRecord;
}

export function gatePayload(kind: GateKind, ref: ReleaseRef, s: ReleaseStatus): GatePayload {
  const body: GatePayload = {
    name: ref.name,
    namespace: ref.namespace,
    app: ref.app,
    type: kind,
    phase: s.phase,
    reason: s.reason,
    weight: s.weight,
    version: ref.version,
    stableVersions: ref.stableVersions,
  };
  if (s.step !== undefined) body.step = s.step;
  if (s.analysis) body.analysis = s.analysis;
  return body;
}

/** Transitions worth telling people about; every other Event stays in Kubernetes only. */
const NOTIFIED = new Set<string>([
  "Started",
  "StepAdvanced",
  "Paused",
  "Promoted",
  "Switched",
  "AnalysisWarning",
  "RolledBack",
  "Aborted",
  "DeadlineExceeded",
  "GateFailed",
  "CutOff",
  "Inconclusive",
  "SwitchedBack",
]);

/** The generic notification (`--notify-url`, `verso.dev/notify-url`). */
export interface Notification {
  /** Always "verso.release": lets one receiver tell Verso's messages apart. */
  kind: "verso.release";
  /** The Event reason: Started, StepAdvanced, Paused, Promoted, AnalysisWarning, RolledBack, ... */
  event: string;
  severity: "info" | "warning";
  namespace: string;
  app: string;
  name: string;
  version: string;
  phase: Phase;
  weight: number;
  step?: number;
  message: string;
  /** ISO time the controller decided it. */
  at: string;
}

export function notificationOf(
  t: Transition,
  ref: ReleaseRef,
  s: ReleaseStatus,
  now: number,
): Notification | undefined {
  if (!NOTIFIED.has(t.reason)) return undefined;
  const n: Notification = {
    kind: "verso.release",
    event: t.reason,
    severity: t.type === "Warning" ? "warning" : "info",
    namespace: ref.namespace,
    app: ref.app,
    name: ref.name,
    version: ref.version,
    phase: s.phase,
    weight: s.weight,
    message: t.message,
    at: new Date(now).toISOString(),
  };
  if (s.step !== undefined) n.step = s.step;
  return n;
}

/** Slack's incoming-webhook payload: `text` is what every client shows. */
export function slackPayload(n: Notification): { text: string } {
  const icon = n.severity === "warning" ? ":warning:" : ":information_source:";
  return {
    text: `${icon} *${n.namespace}/${n.app}* ${n.version}: ${n.event} (${n.phase}, ${n.weight}%) ${n.message}`,
  };
}
