import { describe, expect, it } from "vitest";
import { analysisDueAt, nextDueAt, scaleDownDueAt, type DueInput } from "./schedule.ts";
import { an, auto, notReady, policy, run, st, T0 } from "./testFixtures.ts";

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
  it("is due for a blue-green preview analysing its matched traffic, only when the policy asks", () => {
    const bg = (o: Record<string, string>) =>
      policy({ strategy: "blue-green", "auto-promote": "true", interval: "10s", ...o });
    const preview = st({ step: 1, weight: 0, reason: "Preview" });
    expect(analysisDueAt(preview, bg({ "preview-analysis": "2" }))).toBe(T0 + 10_000);
    expect(analysisDueAt({ ...preview, reason: "Held" }, bg({ "preview-analysis": "2" }))).toBe(
      T0 + 10_000,
    );
    expect(analysisDueAt(preview, bg({}))).toBeUndefined();
    expect(analysisDueAt(preview, bg({ "preview-analysis": "0" }))).toBeUndefined();
    const manual = policy({ strategy: "blue-green", "preview-analysis": "2" });
    expect(analysisDueAt(preview, manual)).toBeUndefined();
    const awaiting = st({ step: 2, weight: 0, reason: "AwaitingGate" });
    expect(analysisDueAt(awaiting, bg({ "preview-analysis": "2" }))).toBeUndefined();
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
  // Mirrors the table above nextDueAt in schedule.ts; `auto` is steps 10,50, interval 10s, deadline 60s.
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
      name: "fixed-weight canary taking traffic: an interval (default 1m) from its start, to measure its actual share",
      in: { status: st({ step: undefined }), policy: policy({ weight: "5" }) },
      expect: T0 + 60_000,
    },
    {
      name: "fixed-weight canary: an interval after its last measurement",
      in: {
        status: st({ step: undefined }),
        policy: policy({ weight: "5", interval: "10s" }),
        lastObservedAt: T0 + 25_000,
      },
      expect: T0 + 35_000,
    },
    {
      name: "fixed-weight canary, not ready: none",
      in: { status: st({ step: undefined }), policy: policy({ weight: "5" }), ready: false },
      expect: undefined,
    },
    {
      name: "fixed-weight canary at 0: none",
      in: { status: st({ step: undefined, weight: 0 }), policy: policy({ weight: "0" }) },
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
    const out = run({ prev: st({}), events: [an("hold")], now: due });
    expect(nextDueAt({ ...base, status: out.status })).toBe(due + 10_000);
    const late = run({ prev: st({}), release: notReady, now: T0 + 60_001 });
    expect(late.status.phase).toBe("Failed");
    expect(nextDueAt({ ...base, status: late.status, ready: false })).toBeUndefined();
  });
});
