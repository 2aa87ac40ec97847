import { describe, expect, it } from "vitest";
import { parsePolicy, type ReleasePolicy } from "../../shared/policy.ts";
import type { Analysis } from "./analyse.ts";
import type { ReleaseStatus } from "./status.ts";
import {
  analysisDueAt,
  nextDueAt,
  nextState,
  scaleDownDueAt,
  type DueInput,
  type ObservedRelease,
} from "./step.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const policy = (o: Record<string, string>): ReleasePolicy => {
  const r = parsePolicy(
    Object.fromEntries(
      Object.entries({ strategy: "canary", ...o }).map(([k, v]) => [`verso.dev/${k}`, v]),
    ),
  );
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.value;
};
const ready: ObservedRelease = { version: "v2", template: "t1", ready: true };
const notReady: ObservedRelease = { ...ready, ready: false };
const auto = policy({ steps: "10,50", interval: "10s", "progress-deadline": "60s" });
const an = (action: Analysis["action"]): Analysis => ({
  action,
  reason:
    action === "hold"
      ? "NotEnoughTraffic"
      : action === "rollback"
        ? "ErrorRateTooHigh"
        : "GatesPassed",
  message: action,
  measured: { releaseRequests: 1, stableRequests: 1 },
});
const st = (o: Partial<ReleaseStatus>): ReleaseStatus => ({
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

describe("nextState", () => {
  const cases: {
    name: string;
    prev?: ReleaseStatus;
    policy?: ReleasePolicy;
    release?: ObservedRelease;
    analysis?: Analysis;
    at?: number;
    expect: Partial<ReleaseStatus>;
    event?: "Normal" | "Warning" | "none";
  }[] = [
    {
      name: "no status, not ready: Pending",
      release: notReady,
      expect: { phase: "Pending", weight: 0, reason: "Waiting" },
      event: "Normal",
    },
    {
      name: "no status, ready: first step",
      expect: { phase: "Progressing", step: 1, weight: 10, reason: "Started" },
      event: "Normal",
    },
    {
      name: "Pending past the deadline: Failed",
      prev: st({ phase: "Pending", step: undefined, weight: 0, reason: "Waiting" }),
      release: notReady,
      at: T0 + 61_000,
      expect: { phase: "Failed", weight: 0, reason: "DeadlineExceeded" },
      event: "Warning",
    },
    {
      name: "Pending within the deadline: unchanged",
      prev: st({ phase: "Pending", step: undefined, weight: 0, reason: "Waiting" }),
      release: notReady,
      at: T0 + 30_000,
      expect: { phase: "Pending" },
      event: "none",
    },
    {
      name: "advance",
      prev: st({}),
      analysis: an("advance"),
      at: T0 + 10_000,
      expect: { phase: "Progressing", step: 2, weight: 50, reason: "StepAdvanced" },
      event: "Normal",
    },
    {
      name: "promote",
      prev: st({ step: 2, weight: 50 }),
      analysis: an("promote"),
      at: T0 + 10_000,
      expect: { phase: "Promoted", weight: 100, reason: "Promoted" },
      event: "Normal",
    },
    {
      name: "rollback",
      prev: st({}),
      analysis: an("rollback"),
      at: T0 + 10_000,
      expect: { phase: "Failed", weight: 0, reason: "RolledBack" },
      event: "Warning",
    },
    {
      name: "hold restarts the interval",
      prev: st({}),
      analysis: an("hold"),
      at: T0 + 10_000,
      expect: {
        phase: "Progressing",
        weight: 10,
        reason: "Held",
        stepStartedAt: new Date(T0 + 10_000).toISOString(),
      },
      event: "Normal",
    },
    {
      name: "hold past the deadline fails",
      prev: st({}),
      analysis: an("hold"),
      at: T0 + 61_000,
      expect: { phase: "Failed", reason: "DeadlineExceeded" },
      event: "Warning",
    },
    {
      name: "no analysis, ready: unchanged",
      prev: st({}),
      at: T0 + 5_000,
      expect: { phase: "Progressing", step: 1 },
      event: "none",
    },
    {
      name: "no analysis, not ready past deadline: Failed",
      prev: st({}),
      release: notReady,
      at: T0 + 61_000,
      expect: { phase: "Failed", reason: "DeadlineExceeded" },
      event: "Warning",
    },
    {
      name: "paused",
      prev: st({}),
      policy: { ...auto, paused: true },
      expect: { phase: "Paused", weight: 10, step: 1 },
      event: "Normal",
    },
    {
      name: "paused stays paused",
      prev: st({ phase: "Paused", reason: "Paused" }),
      policy: { ...auto, paused: true },
      expect: { phase: "Paused" },
      event: "none",
    },
    {
      name: "resume restarts the interval",
      prev: st({ phase: "Paused", reason: "Paused" }),
      at: T0 + 99_000,
      expect: {
        phase: "Progressing",
        reason: "Resumed",
        stepStartedAt: new Date(T0 + 99_000).toISOString(),
      },
      event: "Normal",
    },
    {
      name: "abort",
      prev: st({}),
      policy: { ...auto, abort: true },
      expect: { phase: "Failed", weight: 0, reason: "Aborted" },
      event: "Warning",
    },
    {
      name: "abort removed: starts again",
      prev: st({ phase: "Failed", weight: 0, reason: "Aborted" }),
      expect: { phase: "Progressing", step: 1, reason: "Started" },
      event: "Normal",
    },
    {
      name: "Failed stays Failed",
      prev: st({ phase: "Failed", weight: 0, reason: "RolledBack" }),
      expect: { phase: "Failed", reason: "RolledBack" },
      event: "none",
    },
    {
      name: "Failed + new pod template: starts again",
      prev: st({ phase: "Failed", weight: 0, reason: "RolledBack" }),
      release: { ...ready, template: "t2" },
      expect: { phase: "Progressing", step: 1, template: "t2" },
      event: "Normal",
    },
    {
      name: "status of another version: starts again",
      prev: st({ version: "v1", phase: "Promoted", weight: 100 }),
      expect: { phase: "Progressing", version: "v2", step: 1 },
      event: "Normal",
    },
    {
      name: "Promoted is terminal",
      prev: st({ phase: "Promoted", weight: 100, reason: "Promoted" }),
      analysis: an("rollback"),
      expect: { phase: "Promoted", weight: 100 },
      event: "none",
    },
    {
      name: "promote now",
      prev: st({}),
      policy: { ...auto, promote: true },
      expect: { phase: "Promoted", weight: 100, reason: "Promoted" },
      event: "Normal",
    },
    {
      name: "manual weight",
      policy: policy({ weight: "30" }),
      expect: { phase: "Progressing", weight: 30, reason: "WeightSet" },
      event: "Normal",
    },
    {
      name: "manual weight unchanged",
      prev: st({ step: undefined, weight: 30, reason: "WeightSet" }),
      policy: policy({ weight: "30" }),
      expect: { weight: 30 },
      event: "none",
    },
    {
      name: "manual, not ready: Pending",
      policy: policy({ weight: "30" }),
      release: notReady,
      expect: { phase: "Pending", weight: 0 },
      event: "Normal",
    },
    {
      name: "blue-green preview",
      policy: policy({ strategy: "blue-green" }),
      expect: { phase: "Progressing", weight: 0, reason: "Preview" },
      event: "Normal",
    },
    {
      name: "blue-green switch",
      prev: st({ step: undefined, weight: 0, reason: "Preview" }),
      policy: policy({ strategy: "blue-green", promote: "true" }),
      expect: { phase: "Promoted", weight: 100 },
      event: "Normal",
    },
    {
      name: "blue-green switch back",
      prev: st({ phase: "Promoted", step: undefined, weight: 100, reason: "Promoted" }),
      policy: policy({ strategy: "blue-green" }),
      expect: { phase: "Progressing", weight: 0, reason: "Preview" },
      event: "Normal",
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const out = nextState({
        prev: c.prev,
        policy: c.policy ?? auto,
        release: c.release ?? ready,
        analysis: c.analysis,
        now: c.at ?? T0,
      });
      expect(out.status).toMatchObject(c.expect);
      if (c.event === "none") expect(out.transition).toBeUndefined();
      else if (c.event) expect(out.transition?.type).toBe(c.event);
      for (const v of Object.values(out.status)) expect(v).not.toBeUndefined();
    });
  }

  it("keeps the recorded last good policy", () => {
    const out = nextState({
      prev: st({ applied: { "verso.dev/strategy": "canary" } }),
      policy: auto,
      release: ready,
      now: T0,
    });
    expect(out.status.applied).toEqual({ "verso.dev/strategy": "canary" });
  });

  it("records the analysis numbers", () => {
    const out = nextState({
      prev: st({}),
      policy: auto,
      release: ready,
      analysis: an("advance"),
      now: T0 + 10_000,
    });
    expect(out.status.analysis).toMatchObject({
      action: "advance",
      reason: "GatesPassed",
      measured: { releaseRequests: 1 },
    });
  });
});

describe("analysisDueAt", () => {
  it("is the step start plus the interval while progressing", () => {
    expect(analysisDueAt(st({}), auto)).toBe(T0 + 10_000);
  });
  it("is undefined when paused, manual or finished", () => {
    expect(analysisDueAt(st({ phase: "Paused" }), auto)).toBeUndefined();
    expect(analysisDueAt(st({}), policy({ weight: "5" }))).toBeUndefined();
    expect(analysisDueAt(st({ phase: "Promoted" }), auto)).toBeUndefined();
    expect(analysisDueAt(undefined, auto)).toBeUndefined();
  });
});

describe("scaleDownDueAt", () => {
  const promotedAt = new Date(T0).toISOString();
  it("is the promotion plus the delay once promoted", () => {
    expect(scaleDownDueAt(st({ phase: "Promoted", promotedAt }), 30_000)).toBe(T0 + 30_000);
  });
  it("is undefined with the delay off or before a promotion", () => {
    expect(scaleDownDueAt(st({ phase: "Promoted", promotedAt }), 0)).toBeUndefined();
    expect(scaleDownDueAt(st({ promotedAt }), 30_000)).toBeUndefined();
    expect(scaleDownDueAt(st({ phase: "Promoted" }), 30_000)).toBeUndefined();
  });
});

describe("nextDueAt", () => {
  const promotedAt = new Date(T0 + 5_000).toISOString();
  const promoted = st({ phase: "Promoted", weight: 100, reason: "Promoted", promotedAt });
  const base: DueInput = {
    status: st({}),
    policy: auto,
    ready: true,
    othersRunning: true,
    scaleDownDelayMs: 0,
  };
  // Mirrors the table above nextDueAt in step.ts; `auto` is steps 10,50, interval 10s, deadline 60s.
  const cases: { name: string; in: Partial<DueInput>; expect: number | undefined }[] = [
    { name: "interval due: progressing, ready", in: {}, expect: T0 + 10_000 },
    {
      name: "interval restarted by a hold counts from the new step start",
      in: { status: st({ reason: "Held", stepStartedAt: new Date(T0 + 7_000).toISOString() }) },
      expect: T0 + 17_000,
    },
    {
      name: "progressing, not ready: the progress deadline, once strictly exceeded",
      in: { ready: false },
      expect: T0 + 60_001,
    },
    {
      name: "pending, not ready: the progress deadline",
      in: { status: st({ phase: "Pending", step: undefined, weight: 0 }), ready: false },
      expect: T0 + 60_001,
    },
    {
      name: "pending manual canary, not ready: the progress deadline",
      in: {
        status: st({ phase: "Pending", step: undefined, weight: 0 }),
        policy: policy({ weight: "10", "progress-deadline": "60s" }),
        ready: false,
      },
      expect: T0 + 60_001,
    },
    { name: "paused: none", in: { status: st({ phase: "Paused" }) }, expect: undefined },
    {
      name: "manual weight progressing: none",
      in: { status: st({ step: undefined }), policy: policy({ weight: "5" }) },
      expect: undefined,
    },
    {
      name: "blue-green preview: none",
      in: { policy: policy({ strategy: "blue-green" }), status: st({ step: undefined }) },
      expect: undefined,
    },
    { name: "no release status: none", in: { status: undefined }, expect: undefined },
    { name: "no valid policy: none", in: { policy: undefined }, expect: undefined },
    {
      name: "failed: none",
      in: { status: st({ phase: "Failed", weight: 0 }), ready: false },
      expect: undefined,
    },
    {
      name: "promoted, scale-down off: none",
      in: { status: promoted },
      expect: undefined,
    },
    {
      name: "promoted with scale-down delay, old version running: promotedAt + delay",
      in: { status: promoted, scaleDownDelayMs: 30_000 },
      expect: T0 + 35_000,
    },
    {
      name: "promoted with scale-down delay, old versions at 0: none",
      in: { status: promoted, scaleDownDelayMs: 30_000, othersRunning: false },
      expect: undefined,
    },
    {
      name: "unreadable timestamps: none rather than a spin",
      in: { status: st({ phase: "Pending", lastProgressAt: "soon" }), ready: false },
      expect: undefined,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(nextDueAt({ ...base, ...c.in })).toBe(c.expect);
    });
  }

  it("acting at the due time moves the release on or pushes the due time forward", () => {
    const due = nextDueAt(base)!;
    const out = nextState({
      prev: st({}),
      policy: auto,
      release: ready,
      analysis: an("hold"),
      now: due,
    });
    expect(nextDueAt({ ...base, status: out.status })).toBe(due + 10_000);
    const late = nextState({ prev: st({}), policy: auto, release: notReady, now: T0 + 60_001 });
    expect(late.status.phase).toBe("Failed");
    expect(nextDueAt({ ...base, status: late.status, ready: false })).toBeUndefined();
  });
});

describe("nextState: per-rule weights in status", () => {
  const regions = policy({
    steps: "10,50",
    interval: "10s",
    match: "header:x-user-type=internal,header:x-region=beijing@20,path:/beta@steps",
  });
  it("each rule with what it sends to the release now; @steps follows the step", () => {
    const out = nextState({
      prev: st({ step: 1, weight: 10 }),
      policy: regions,
      release: ready,
      analysis: an("advance"),
      now: T0 + 10_000,
    });
    expect(out.status.weight).toBe(50);
    expect(out.status.match).toEqual([
      { rule: "header:x-user-type=internal", weight: 100 },
      { rule: "header:x-region=beijing", weight: 20 },
      { rule: "path:/beta", weight: 50 },
    ]);
  });
  it("a failed release shows no rules (the proxies drop them too)", () => {
    const out = nextState({
      prev: st({ step: 1, weight: 10 }),
      policy: regions,
      release: ready,
      analysis: an("rollback"),
      now: T0 + 10_000,
    });
    expect(out.status.phase).toBe("Failed");
    expect(out.status.match).toBeUndefined();
  });
});
