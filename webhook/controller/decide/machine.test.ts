import { describe, expect, it } from "vitest";
import type { PolicyError, ReleasePolicy } from "../../../shared/policy.ts";
import type { ReleaseStatus } from "./status.ts";
import type { GateResult, ObservedRelease, ReleaseEvent } from "./machine.ts";
import { an, auto, gate, iso, notReady, policy, ready, run, st, T0 } from "./testFixtures.ts";

describe("nextState", () => {
  const cases: {
    name: string;
    prev?: ReleaseStatus;
    policy?: ReleasePolicy;
    release?: ObservedRelease;
    analysis?: ReleaseEvent;
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
      name: "fails with the template it failed with (the edit that broke it)",
      prev: st({}),
      release: { ...ready, template: "t2" },
      analysis: an("rollback"),
      expect: { phase: "Failed", template: "t2" },
      event: "Warning",
    },
    {
      name: "Failed, template unchanged since the failure: stays Failed",
      prev: st({ phase: "Failed", weight: 0, reason: "RolledBack", template: "t2" }),
      release: { ...ready, template: "t2" },
      expect: { phase: "Failed", template: "t2" },
      event: "none",
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
      const out = run({
        prev: c.prev,
        policy: c.policy ?? auto,
        release: c.release ?? ready,
        events: c.analysis ? [c.analysis] : [],
        now: c.at ?? T0,
      });
      expect(out.status).toMatchObject(c.expect);
      if (c.event === "none") expect(out.events).toEqual([]);
      else if (c.event) expect(out.events[0]?.type).toBe(c.event);
      for (const v of Object.values(out.status)) expect(v).not.toBeUndefined();
    });
  }

  it("keeps the recorded last good policy while the annotations are invalid", () => {
    const out = run({
      prev: st({ applied: { "verso.dev/strategy": "canary" } }),
      policyErrors: [{ code: "POLICY_WEIGHT", annotation: "verso.dev/weight", message: "bad" }],
      annotations: { "verso.dev/strategy": "canary", "verso.dev/weight": "140" },
    });
    expect(out.status.applied).toEqual({ "verso.dev/strategy": "canary" });
    expect(out.status.policyErrors).toEqual(["POLICY_WEIGHT"]);
    expect(out.events.map((e) => e.reason)).toEqual(["PolicyInvalid"]);
  });

  it("records valid annotations as the last good policy", () => {
    const annotations = { "verso.dev/strategy": "canary", "verso.dev/steps": "10,50" };
    expect(run({ prev: st({}), annotations }).status.applied).toEqual(annotations);
  });

  it("says PolicyInvalid, and moves nothing, when no good policy was ever seen", () => {
    const errors: PolicyError[] = [
      { code: "POLICY_STRATEGY", annotation: "verso.dev/strategy", message: "bad strategy" },
    ];
    const out = run({ policy: undefined, policyErrors: errors });
    expect(out.status).toMatchObject({ phase: "Pending", reason: "PolicyInvalid" });
    expect(out.status.policyErrors).toEqual(["POLICY_STRATEGY"]);
    expect(out.events).toEqual([
      {
        type: "Warning",
        reason: "PolicyInvalid",
        message: "bad strategy; no release policy is in force",
      },
    ]);
    // Reported once: the same problems again write no second Event.
    expect(run({ prev: out.status, policy: undefined, policyErrors: errors }).events).toEqual([]);
  });

  it("holds on a new leader's first interval (no baseline), decided from the one `now`", () => {
    const out = run({ prev: st({}), events: [{ type: "noBaseline" }], now: T0 + 10_000 });
    expect(out.status).toMatchObject({ reason: "Held", stepStartedAt: iso(T0 + 10_000) });
    expect(out.status.analysis?.reason).toBe("NoBaseline");
    expect(out.baseline).toBe(true);
  });

  it("records the analysis numbers", () => {
    const out = run({ prev: st({}), events: [an("advance")], now: T0 + 10_000 });
    expect(out.status.analysis).toMatchObject({
      action: "advance",
      reason: "GatesPassed",
      measured: { releaseRequests: 50 },
    });
  });
});

describe("nextState: per-rule weights in status", () => {
  const regions = policy({
    steps: "10,50",
    interval: "10s",
    match: "header:x-user-type=internal,header:x-region=beijing@20,path:/beta@steps",
  });
  it("each rule with what it sends to the release now; @steps follows the step", () => {
    const out = run({
      prev: st({ step: 1, weight: 10 }),
      policy: regions,
      events: [an("advance")],
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
    const out = run({
      prev: st({ step: 1, weight: 10 }),
      policy: { ...regions, gates: auto.gates },
      events: [an("rollback")],
      now: T0 + 10_000,
    });
    expect(out.status.phase).toBe("Failed");
    expect(out.status.match).toBeUndefined();
  });
});

describe("truth table of the release engine (rows of the table above nextState)", () => {
  const URL = "http://127.0.0.1:1/gate";
  const gated = (kinds: string[], o: Record<string, string> = {}): ReleasePolicy =>
    policy({
      steps: "10,50",
      interval: "10s",
      "progress-deadline": "60s",
      "max-error-rate": "5",
      "min-requests": "10",
      ...Object.fromEntries(kinds.map((k) => [`webhook-${k}`, URL])),
      ...o,
    });
  const bg = (o: Record<string, string> = {}, kinds: string[] = []): ReleasePolicy =>
    policy({
      strategy: "blue-green",
      "auto-promote": "true",
      interval: "10s",
      "post-switch-window": "20s",
      "progress-deadline": "60s",
      "max-error-rate": "5",
      "min-requests": "10",
      ...Object.fromEntries(kinds.map((k) => [`webhook-${k}`, URL])),
      ...o,
    });
  const called = (kind: string, at = T0) => ({
    [kind]: { id: `${kind}@${iso(at)}`, state: "called" as const, at: iso(at) },
  });
  const answer = (kind: string, ok: boolean, at = T0): ReleaseEvent =>
    gate({
      kind: kind as GateResult["kind"],
      id: `${kind}@${iso(at)}`,
      ok,
      code: ok ? 200 : 503,
      message: ok ? "200" : "503",
    });
  const pending = st({ phase: "Pending", step: undefined, weight: 0, reason: "Waiting" });
  /** BGp: blue-green, auto-promote, 2 preview intervals of the matched traffic. */
  const bgp = (o: Record<string, string> = {}, kinds: string[] = []): ReleasePolicy =>
    bg({ match: "header:x-preview=1", "preview-analysis": "2", ...o }, kinds);
  const previewAt = (step: number): ReleaseStatus =>
    st({ step, weight: 0, reason: "Preview", lastProgressAt: iso(T0) });
  const rows: {
    row: string;
    prev?: ReleaseStatus;
    policy: ReleasePolicy;
    release?: ObservedRelease;
    events?: ReleaseEvent[];
    at?: number;
    expect: Partial<ReleaseStatus>;
    calls?: string[];
    events_?: string[];
    absent?: string[];
    baseline?: boolean;
  }[] = [
    {
      row: "Pending, ready, pre-rollout not answered: AwaitingGate, call pre-rollout",
      prev: pending,
      policy: gated(["pre-rollout"]),
      expect: { phase: "Pending", reason: "AwaitingGate", weight: 0 },
      calls: ["pre-rollout"],
      events_: ["AwaitingGate", "GateCalled"],
    },
    {
      row: "Pending, pre-rollout passed: Started, call rollout",
      prev: { ...pending, reason: "AwaitingGate", gates: called("pre-rollout") },
      policy: gated(["pre-rollout", "rollout"]),
      events: [answer("pre-rollout", true)],
      at: T0 + 1_000,
      expect: { phase: "Progressing", step: 1, weight: 10, reason: "Started" },
      calls: ["rollout"],
      events_: ["Started", "GatePassed", "GateCalled"],
    },
    {
      row: "Pending, pre-rollout failed: still AwaitingGate, not called again within the interval",
      prev: { ...pending, reason: "AwaitingGate", gates: called("pre-rollout") },
      policy: gated(["pre-rollout"]),
      events: [answer("pre-rollout", false)],
      at: T0 + 1_000,
      expect: { phase: "Pending", reason: "AwaitingGate" },
      calls: [],
      events_: ["GateFailed"],
    },
    {
      row: "Pending, pre-rollout not ok past the deadline: Failed, rollback gate notified",
      prev: {
        ...pending,
        reason: "AwaitingGate",
        gates: { "pre-rollout": { id: "x", state: "failed", at: iso(T0 + 55_000) } },
      },
      policy: gated(["pre-rollout", "rollback"]),
      at: T0 + 61_000,
      expect: { phase: "Failed", reason: "DeadlineExceeded", weight: 0 },
      calls: ["rollback"],
    },
    {
      row: "Progressing, rollout gate failed: Failed (GateFailed)",
      prev: st({ gates: called("rollout") }),
      policy: gated(["rollout"]),
      events: [answer("rollout", false)],
      expect: { phase: "Failed", reason: "GateFailed", weight: 0 },
    },
    {
      row: "Progressing, measured while the rollout gate is unanswered: AwaitingGate hold",
      prev: st({ gates: called("rollout") }),
      policy: gated(["rollout"]),
      events: [an("advance")],
      at: T0 + 10_000,
      expect: { phase: "Progressing", step: 1, reason: "Held" },
      calls: [],
    },
    {
      row: "last step passed, confirm-promotion not ok: AwaitingGate, call confirm-promotion",
      prev: st({ step: 2, weight: 50 }),
      policy: gated(["confirm-promotion"]),
      events: [an("promote")],
      at: T0 + 10_000,
      expect: { phase: "Progressing", weight: 50, reason: "AwaitingGate" },
      calls: ["confirm-promotion"],
    },
    {
      row: "AwaitingGate, confirm-promotion answers non-2xx: holds at the last step",
      prev: st({ step: 2, weight: 50, reason: "AwaitingGate", gates: called("confirm-promotion") }),
      policy: gated(["confirm-promotion"]),
      events: [answer("confirm-promotion", false)],
      at: T0 + 1_000,
      expect: { phase: "Progressing", weight: 50, reason: "AwaitingGate" },
      events_: ["GateFailed"],
    },
    {
      row: "AwaitingGate, confirm-promotion passed: Promoted, call post-rollout",
      prev: st({ step: 2, weight: 50, reason: "AwaitingGate", gates: called("confirm-promotion") }),
      policy: gated(["confirm-promotion", "post-rollout"]),
      events: [answer("confirm-promotion", true)],
      at: T0 + 1_000,
      expect: { phase: "Promoted", weight: 100, reason: "Promoted" },
      calls: ["post-rollout"],
    },
    {
      row: "rollback notifies the rollback and post-rollout gates",
      prev: st({}),
      policy: gated(["rollback", "post-rollout"]),
      events: [an("rollback")],
      at: T0 + 10_000,
      expect: { phase: "Failed", reason: "RolledBack" },
      calls: ["rollback", "post-rollout"],
    },
    {
      row: "a gate call lost (no answer past timeout + 5 s) counts as failed",
      prev: st({ gates: called("rollout") }),
      policy: gated(["rollout"]),
      at: T0 + 15_001,
      expect: { phase: "Failed", reason: "GateFailed" },
    },
    {
      row: "a late answer to an older call is ignored",
      prev: st({ gates: called("rollout", T0 + 5) }),
      policy: gated(["rollout"]),
      events: [answer("rollout", false, T0)],
      expect: { phase: "Progressing", reason: "Started" },
    },
    {
      row: "cutOff while Progressing: Failed (CutOff) at once",
      prev: st({}),
      policy: auto,
      events: [{ type: "cutOff", version: "v2", proxies: 2 }],
      at: T0 + 1_000,
      expect: { phase: "Failed", reason: "CutOff", weight: 0 },
    },
    {
      row: "cutOff disabled by cutoff-failures 0: ignored",
      prev: st({}),
      policy: gated([], { "cutoff-failures": "0" }),
      events: [{ type: "cutOff", version: "v2", proxies: 2 }],
      expect: { phase: "Progressing", reason: "Started" },
    },
    {
      row: "inconclusive below the limit: Held, counted",
      prev: st({}),
      policy: gated([], { "inconclusive-limit": "2", "on-inconclusive": "fail" }),
      events: [an("hold")],
      at: T0 + 10_000,
      expect: { phase: "Progressing", reason: "Held", inconclusive: 1 },
    },
    {
      row: "inconclusive at the limit, policy fail: Failed (Inconclusive)",
      prev: st({ inconclusive: 1 }),
      policy: gated([], { "inconclusive-limit": "2", "on-inconclusive": "fail" }),
      events: [an("hold")],
      at: T0 + 10_000,
      expect: { phase: "Failed", reason: "Inconclusive" },
    },
    {
      row: "inconclusive at the limit, policy promote: as a pass (next step)",
      prev: st({ inconclusive: 1 }),
      policy: gated([], { "inconclusive-limit": "2", "on-inconclusive": "promote" }),
      events: [an("hold")],
      at: T0 + 10_000,
      expect: { phase: "Progressing", step: 2, reason: "StepAdvanced" },
    },
    {
      row: "a conclusive interval resets the inconclusive count",
      prev: st({ inconclusive: 1 }),
      policy: gated([], { "inconclusive-limit": "2", "on-inconclusive": "fail" }),
      events: [an("advance")],
      at: T0 + 10_000,
      expect: { step: 2 },
      absent: ["inconclusive"],
    },
    {
      row: "pass with a warning: advances, Warning AnalysisWarning",
      prev: st({}),
      policy: auto,
      events: [
        {
          type: "measured",
          measurements: {
            release: { requests: 100, errors: 2 },
            stable: { requests: 100, errors: 0 },
          },
        },
      ],
      at: T0 + 10_000,
      expect: { phase: "Progressing", step: 2 },
      events_: ["StepAdvanced", "AnalysisWarning"],
    },
    {
      row: "max-weight caps a step; status says so",
      prev: st({}),
      policy: gated([], { "max-weight": "30" }),
      events: [an("advance")],
      at: T0 + 10_000,
      expect: { step: 2, weight: 30, cap: { requested: 50, weight: 30, by: "max-weight" } },
      events_: ["StepAdvanced", "WeightCapped"],
    },
    {
      row: "pod-share cap: 1 ready pod of 10, factor 2, step 50: 20 %",
      prev: st({ step: 2, weight: 50 }),
      policy: gated([], { "pod-share-factor": "2" }),
      release: { ...ready, pods: { release: 1, total: 10 } },
      expect: { step: 2, weight: 20, cap: { requested: 50, weight: 20, by: "pod-share" } },
    },
    {
      row: "BG, ready, smoke-test not answered: AwaitingGate at 0 %, call smoke-test",
      policy: bg({}, ["smoke-test"]),
      expect: { phase: "Progressing", weight: 0, reason: "AwaitingGate" },
      calls: ["smoke-test"],
    },
    {
      row: "BG, smoke-test failed: Failed (GateFailed), never any traffic",
      prev: st({ step: undefined, weight: 0, reason: "AwaitingGate", gates: called("smoke-test") }),
      policy: bg({}, ["smoke-test"]),
      events: [answer("smoke-test", false)],
      expect: { phase: "Failed", weight: 0, reason: "GateFailed" },
    },
    {
      row: "BG manual, smoke-test failed, promote=true: still Failed at 0 %",
      prev: st({ step: undefined, weight: 0, reason: "AwaitingGate", gates: called("smoke-test") }),
      policy: { ...bg({}, ["smoke-test"]), autoPromote: false, promote: true },
      events: [answer("smoke-test", false)],
      expect: { phase: "Failed", weight: 0 },
    },
    {
      row: "BGp, preview interval fails on its matched traffic: Failed (GateFailed) at 0 %, numbers said",
      prev: previewAt(1),
      policy: bgp({}, ["rollback", "post-rollout"]),
      events: [an("rollback")],
      at: T0 + 10_000,
      expect: {
        phase: "Failed",
        weight: 0,
        reason: "GateFailed",
        message: expect.stringMatching(
          /^failed in preview, preview interval 1 of 2 on 50 matched requests: error rate 50% is above the maximum 5% \(25 of 50 requests\); the release never got unmatched traffic$/,
        ) as string,
      },
      calls: ["rollback", "post-rollout"],
      events_: ["GateFailed", "GateCalled", "GateCalled"],
      baseline: false,
    },
    {
      row: "BGp, too few matched requests below the limit: Held at 0 %, counted, new interval",
      prev: previewAt(1),
      policy: bgp({ "inconclusive-limit": "2", "on-inconclusive": "fail" }),
      events: [an("hold")],
      at: T0 + 10_000,
      expect: {
        phase: "Progressing",
        weight: 0,
        step: 1,
        reason: "Held",
        inconclusive: 1,
        stepStartedAt: iso(T0 + 10_000),
        message: expect.stringContaining("preview held at interval 1 of 2") as string,
      },
      baseline: true,
    },
    {
      row: "BGp, no baseline yet (new leader): Held at 0 %",
      prev: previewAt(1),
      policy: bgp(),
      events: [{ type: "noBaseline" }],
      at: T0 + 10_000,
      expect: { phase: "Progressing", weight: 0, step: 1, reason: "Held" },
      baseline: true,
    },
    {
      row: "BGp, held past the deadline: Failed (DeadlineExceeded) at 0 %",
      prev: { ...previewAt(1), reason: "Held" },
      policy: bgp(),
      events: [an("hold")],
      at: T0 + 61_000,
      expect: { phase: "Failed", weight: 0, reason: "DeadlineExceeded" },
    },
    {
      row: "BGp, inconclusive at the limit, policy fail: Failed (Inconclusive) at 0 %",
      prev: { ...previewAt(1), reason: "Held", inconclusive: 1 },
      policy: bgp({ "inconclusive-limit": "2", "on-inconclusive": "fail" }),
      events: [an("hold")],
      at: T0 + 10_000,
      expect: {
        phase: "Failed",
        weight: 0,
        reason: "Inconclusive",
        message: expect.stringContaining("in preview, 2 inconclusive intervals") as string,
      },
    },
    {
      row: "BGp, interval 1 of 2 passed: Preview interval 2 at 0 %, rollout gate, baseline",
      prev: previewAt(1),
      policy: bgp({}, ["rollout"]),
      events: [an("advance")],
      at: T0 + 10_000,
      expect: {
        phase: "Progressing",
        weight: 0,
        step: 2,
        reason: "Preview",
        stepStartedAt: iso(T0 + 10_000),
        lastProgressAt: iso(T0 + 10_000),
      },
      calls: ["rollout"],
      baseline: true,
    },
    {
      row: "BGp, held, then a pass: Preview interval 2",
      prev: { ...previewAt(1), reason: "Held", inconclusive: 1 },
      policy: bgp(),
      events: [an("advance")],
      at: T0 + 10_000,
      expect: { phase: "Progressing", weight: 0, step: 2, reason: "Preview" },
      absent: ["inconclusive"],
    },
    {
      row: "BGp, inconclusive at the limit, policy promote: as a pass (interval 2)",
      prev: { ...previewAt(1), reason: "Held", inconclusive: 1 },
      policy: bgp({ "inconclusive-limit": "2", "on-inconclusive": "promote" }),
      events: [an("hold")],
      at: T0 + 10_000,
      expect: { phase: "Progressing", weight: 0, step: 2, reason: "Preview" },
    },
    {
      row: "BGp, interval 2 of 2 passed, confirm-promotion not ok: AwaitingGate at 0 %, call confirm-promotion",
      prev: previewAt(2),
      policy: bgp({}, ["confirm-promotion", "rollout"]),
      events: [an("advance")],
      at: T0 + 10_000,
      expect: {
        phase: "Progressing",
        weight: 0,
        step: 2,
        reason: "AwaitingGate",
        message: expect.stringContaining("preview passed 2 analysis intervals") as string,
      },
      calls: ["confirm-promotion"],
      baseline: false,
    },
    {
      row: "BGp, preview starts over (pods were unready) with a confirmation from before: it is dropped, asked again after",
      prev: {
        ...pending,
        gates: { "confirm-promotion": { id: "c", state: "passed", at: iso(T0 - 5_000) } },
      },
      policy: bgp({}, ["confirm-promotion", "rollout"]),
      expect: { phase: "Progressing", weight: 0, step: 1, reason: "Preview" },
      absent: ["gates.confirm-promotion"],
    },
    {
      row: "BGp, interval 2 of 2 passed, no confirm gate: Switched at 100 %, baseline",
      prev: previewAt(2),
      policy: bgp(),
      events: [an("advance")],
      at: T0 + 10_000,
      expect: { phase: "Progressing", weight: 100, reason: "Switched" },
      absent: ["step"],
      baseline: true,
    },
    {
      row: "BGp, preview passed, confirm-promotion refused: stays AwaitingGate, not analysed again",
      prev: { ...previewAt(2), reason: "AwaitingGate", gates: called("confirm-promotion") },
      policy: bgp({}, ["confirm-promotion"]),
      events: [answer("confirm-promotion", false)],
      at: T0 + 1_000,
      expect: { phase: "Progressing", weight: 0, step: 2, reason: "AwaitingGate" },
      baseline: false,
    },
    {
      row: "BGp, preview passed, confirm-promotion passed: Switched at 100 %",
      prev: { ...previewAt(2), reason: "AwaitingGate", gates: called("confirm-promotion") },
      policy: bgp({}, ["confirm-promotion"]),
      events: [answer("confirm-promotion", true)],
      at: T0 + 1_000,
      expect: { phase: "Progressing", weight: 100, reason: "Switched" },
    },
    {
      row: "BGp, smoke-test passed: Preview interval 1 at 0 %, rollout gate, baseline",
      prev: st({ step: undefined, weight: 0, reason: "AwaitingGate", gates: called("smoke-test") }),
      policy: bgp({}, ["smoke-test", "rollout"]),
      events: [answer("smoke-test", true)],
      at: T0 + 1_000,
      expect: {
        phase: "Progressing",
        weight: 0,
        step: 1,
        reason: "Preview",
        stepStartedAt: iso(T0 + 1_000),
      },
      calls: ["rollout"],
      baseline: true,
    },
    {
      row: "BGp, ready without a smoke test: Preview interval 1 at 0 %",
      prev: pending,
      policy: bgp(),
      at: T0 + 1_000,
      expect: { phase: "Progressing", weight: 0, step: 1, reason: "Preview" },
      baseline: true,
    },
    {
      row: "BGp, measured while the preview's rollout gate is unanswered: Held at 0 %",
      prev: { ...previewAt(1), gates: called("rollout") },
      policy: bgp({}, ["rollout"]),
      events: [an("advance")],
      at: T0 + 10_000,
      expect: { phase: "Progressing", weight: 0, step: 1, reason: "Held" },
      calls: [],
    },
    {
      row: "BGa, preview analysis 0 (off): smoke-test passed switches as before",
      prev: st({ step: undefined, weight: 0, reason: "AwaitingGate", gates: called("smoke-test") }),
      policy: bgp({ "preview-analysis": "0" }, ["smoke-test"]),
      events: [answer("smoke-test", true)],
      at: T0 + 1_000,
      expect: { phase: "Progressing", weight: 100, reason: "Switched" },
    },
    {
      row: "BGa, smoke-test passed: Switched at 100 %, baseline taken",
      prev: st({ step: undefined, weight: 0, reason: "AwaitingGate", gates: called("smoke-test") }),
      policy: bg({}, ["smoke-test"]),
      events: [answer("smoke-test", true)],
      at: T0 + 1_000,
      expect: {
        phase: "Progressing",
        weight: 100,
        reason: "Switched",
        switchedAt: iso(T0 + 1_000),
      },
    },
    {
      row: "BGa, switched, measured fail: Failed (SwitchedBack) at 0 %",
      prev: st({ step: undefined, weight: 100, reason: "Switched", switchedAt: iso(T0) }),
      policy: bg(),
      events: [an("rollback")],
      at: T0 + 10_000,
      expect: { phase: "Failed", weight: 0, reason: "SwitchedBack" },
    },
    {
      row: "BGa, switched, pass within the window: stays Switched",
      prev: st({ step: undefined, weight: 100, reason: "Switched", switchedAt: iso(T0) }),
      policy: bg(),
      events: [an("advance")],
      at: T0 + 10_000,
      expect: {
        phase: "Progressing",
        weight: 100,
        reason: "Switched",
        stepStartedAt: iso(T0 + 10_000),
      },
    },
    {
      row: "BGa, switched, pass with the window over: Promoted",
      prev: st({ step: undefined, weight: 100, reason: "Switched", switchedAt: iso(T0) }),
      policy: bg(),
      events: [an("advance")],
      at: T0 + 20_000,
      expect: { phase: "Promoted", weight: 100, promotedAt: iso(T0 + 20_000) },
    },
    {
      row: "BGa, switched, cutOff: switched back",
      prev: st({ step: undefined, weight: 100, reason: "Switched", switchedAt: iso(T0) }),
      policy: bg(),
      events: [{ type: "cutOff", version: "v2", proxies: 1 }],
      at: T0 + 1_000,
      expect: { phase: "Failed", weight: 0, reason: "SwitchedBack" },
    },
  ];
  for (const r of rows) {
    it(r.row, () => {
      const out = run({
        prev: r.prev,
        policy: r.policy,
        release: r.release ?? ready,
        events: r.events ?? [],
        now: r.at ?? T0,
      });
      expect(out.status).toMatchObject(r.expect);
      for (const k of r.absent ?? []) expect(out.status).not.toHaveProperty(k);
      if (r.calls) expect(out.calls.map((c) => c.kind)).toEqual(r.calls);
      if (r.events_) expect(out.events.map((e) => e.reason)).toEqual(r.events_);
      if (r.baseline !== undefined) expect(out.baseline).toBe(r.baseline);
    });
  }
});
