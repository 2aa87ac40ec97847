/** Shared test fixtures of the machine and schedule tests: policies, statuses, one run. */
import { parsePolicy, type PolicyError, type ReleasePolicy } from "../../../shared/policy.ts";
import type { Measurements } from "./analyse.ts";
import type { ReleaseStatus } from "./status.ts";
import {
  nextState,
  type GateResult,
  type MachineOutput,
  type ObservedRelease,
  type ReleaseEvent,
} from "./machine.ts";

export const T0 = Date.parse("2026-01-01T00:00:00Z");
export const policy = (o: Record<string, string>): ReleasePolicy => {
  const r = parsePolicy(
    Object.fromEntries(
      Object.entries({ strategy: "canary", ...o }).map(([k, v]) => [`verso.dev/${k}`, v]),
    ),
  );
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.value;
};
export const ready: ObservedRelease = { version: "v2", template: "t1", ready: true };
export const notReady: ObservedRelease = { ...ready, ready: false };
export const auto = policy({
  steps: "10,50",
  interval: "10s",
  "progress-deadline": "60s",
  "max-error-rate": "5",
  "min-requests": "10",
});
const numbers: Record<"advance" | "promote" | "hold" | "rollback", Measurements> = {
  advance: { release: { requests: 50, errors: 0 }, stable: { requests: 50, errors: 0 } },
  promote: { release: { requests: 50, errors: 0 }, stable: { requests: 50, errors: 0 } },
  hold: { release: { requests: 1, errors: 0 }, stable: { requests: 50, errors: 0 } },
  rollback: { release: { requests: 50, errors: 25 }, stable: { requests: 50, errors: 0 } },
};
/** An interval ended with numbers that pass, are too few, or fail the error-rate gate. */
export const an = (kind: keyof typeof numbers): ReleaseEvent => ({
  type: "measured",
  measurements: numbers[kind],
});
export const gate = (result: GateResult): ReleaseEvent => ({ type: "gate", result });
export const st = (o: Partial<ReleaseStatus>): ReleaseStatus => ({
  phase: "Progressing",
  step: 1,
  weight: 10,
  reason: "Started",
  message: "",
  version: "v2",
  template: "t1",
  startedAt: new Date(T0).toISOString(),
  stepStartedAt: new Date(T0).toISOString(),
  lastProgressAt: new Date(T0).toISOString(),
  ...o,
});
export const iso = (ms: number): string => new Date(ms).toISOString();

/** One run of the machine with valid annotations unless `policyErrors` says otherwise. */
export function run(o: {
  prev?: ReleaseStatus;
  policy?: ReleasePolicy | undefined;
  release?: ObservedRelease;
  events?: ReleaseEvent[];
  policyErrors?: PolicyError[];
  annotations?: Record<string, string>;
  now?: number;
}): MachineOutput {
  return nextState({
    prev: o.prev,
    policy: "policy" in o ? o.policy : auto,
    policyErrors: o.policyErrors ?? [],
    annotations: o.annotations ?? {},
    release: o.release ?? ready,
    events: o.events ?? [],
    now: o.now ?? T0,
  });
}
