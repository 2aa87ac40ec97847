import { describe, expect, it } from "vitest";
import type { Gates } from "../../../shared/policy.ts";
import { analyse, type AnalysisAction, type AnalysisReason, type Measurements } from "./analyse.ts";

const gates: Gates = {
  maxErrorRate: 1,
  maxP99Ms: 500,
  maxP99Ratio: 1.5,
  minRequests: 10,
  warnMarginPct: 10,
};
const m = (
  r: [number, number, number?],
  s: [number, number, number?] = [100, 0, 100],
): Measurements => ({
  release: { requests: r[0], errors: r[1], ...(r[2] !== undefined ? { p99Ms: r[2] } : {}) },
  stable: { requests: s[0], errors: s[1], ...(s[2] !== undefined ? { p99Ms: s[2] } : {}) },
});

// Mirrors the truth table above analyse(), one row (or edge of a row) per case.
const cases: {
  name: string;
  m: Measurements;
  gates?: Gates;
  last?: boolean;
  action: AnalysisAction;
  reason: AnalysisReason;
}[] = [
  {
    name: "below min-requests holds",
    m: m([9, 0, 10]),
    action: "hold",
    reason: "NotEnoughTraffic",
  },
  {
    name: "no traffic holds even with no min-requests",
    m: m([0, 0]),
    gates: { minRequests: 0, warnMarginPct: 10 },
    action: "hold",
    reason: "NotEnoughTraffic",
  },
  {
    name: "too few requests hold even when all fail",
    m: m([5, 5, 10]),
    action: "hold",
    reason: "NotEnoughTraffic",
  },
  {
    name: "error rate above max rolls back",
    m: m([100, 2, 10]),
    action: "rollback",
    reason: "ErrorRateTooHigh",
  },
  {
    name: "error rate equal to max passes",
    m: m([100, 1, 10]),
    action: "advance",
    reason: "GatesPassed",
  },
  {
    name: "p99 above max rolls back",
    m: m([100, 0, 501]),
    action: "rollback",
    reason: "P99TooHigh",
  },
  {
    name: "error gate checked before p99",
    m: m([100, 50, 900]),
    action: "rollback",
    reason: "ErrorRateTooHigh",
  },
  {
    name: "p99 ratio above max rolls back",
    m: m([100, 0, 200], [100, 0, 100]),
    action: "rollback",
    reason: "P99RatioTooHigh",
  },
  {
    name: "ratio skipped when stable served nothing",
    m: m([100, 0, 200], [0, 0]),
    action: "advance",
    reason: "GatesPassed",
  },
  {
    name: "ratio skipped when stable p99 unknown",
    m: m([100, 0, 200], [10, 0]),
    action: "advance",
    reason: "GatesPassed",
  },
  {
    name: "all gates pass advances",
    m: m([100, 0, 120]),
    action: "advance",
    reason: "GatesPassed",
  },
  {
    name: "all gates pass at last step promotes",
    m: m([100, 0, 120]),
    last: true,
    action: "promote",
    reason: "LastStepPassed",
  },
  {
    name: "unset gates never fail",
    m: m([1, 1, 9999]),
    gates: { minRequests: 0, warnMarginPct: 10 },
    action: "advance",
    reason: "GatesPassed",
  },
];

describe("analyse", () => {
  for (const c of cases) {
    it(c.name, () => {
      const a = analyse(c.m, c.gates ?? gates, c.last ?? false);
      expect({ action: a.action, reason: a.reason }).toEqual({
        action: c.action,
        reason: c.reason,
      });
      expect(a.measured.releaseRequests).toBe(c.m.release.requests);
    });
  }
  it("reports measured rates in percent", () => {
    const a = analyse(m([200, 3, 42.1234], [50, 1, 40]), gates, false);
    expect(a.measured).toEqual({
      releaseRequests: 200,
      releaseErrorRate: 1.5,
      releaseP99Ms: 42.123,
      stableRequests: 50,
      stableErrorRate: 2,
      stableP99Ms: 40,
    });
  });
});

describe("analyse: statistical error-rate gate (verso.dev/confidence: 95, max 5 %)", () => {
  const stat: Gates = { maxErrorRate: 5, minRequests: 10, warnMarginPct: 10, confidencePct: 95 };
  it("does not roll back 1 error in 15 requests (6.7 %, within chance of 5 %)", () => {
    const a = analyse(m([15, 1], [200, 0]), stat, false);
    expect(a.action).toBe("advance");
    expect(a.measured.pValue).toBeGreaterThan(0.05);
    // Without the test the same numbers fail the gate.
    const plain = analyse(m([15, 1], [200, 0]), { ...stat, confidencePct: undefined }, false);
    expect(plain.reason).toBe("ErrorRateTooHigh");
  });
  it("rolls back 30 % errors on 40 requests", () => {
    const a = analyse(m([40, 12], [200, 0]), stat, false);
    expect(a.action).toBe("rollback");
    expect(a.reason).toBe("ErrorRateTooHigh");
    expect(a.measured.pValue).toBeLessThan(0.05);
  });
  it("does not blame the release for stable's own error rate", () => {
    // 8 % on both sides: the limit becomes stable's 8 %.
    expect(analyse(m([100, 8], [1000, 80]), stat, false).action).toBe("advance");
  });
});

describe("analyse: warn level", () => {
  it("passes with a warning when the release errs more than stable by the margin", () => {
    const a = analyse(m([200, 1], [200, 0]), { ...gates, maxErrorRate: 5 }, false);
    expect(a.action).toBe("advance");
    expect(a.warning).toMatch(/above stable's 0% by more than 10%/);
  });
  it("stays quiet within the margin", () => {
    const a = analyse(m([1000, 10], [1000, 10]), { ...gates, maxErrorRate: 5 }, false);
    expect(a.warning).toBeUndefined();
  });
});
