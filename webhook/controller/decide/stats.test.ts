import { describe, expect, it } from "vitest";
import { binomialTailAtLeast, errorRateAbove } from "./stats.ts";

describe("binomialTailAtLeast", () => {
  it("matches closed forms", () => {
    // P(X >= 1) = 1 - (1-p)^n
    expect(binomialTailAtLeast(1, 15, 0.05)).toBeCloseTo(1 - 0.95 ** 15, 12);
    // P(X >= n) = p^n
    expect(binomialTailAtLeast(3, 3, 0.5)).toBeCloseTo(0.125, 12);
    expect(binomialTailAtLeast(0, 10, 0.1)).toBe(1);
    expect(binomialTailAtLeast(11, 10, 0.1)).toBe(0);
  });
  it("stays finite for large samples", () => {
    const p = binomialTailAtLeast(600, 10_000, 0.05);
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(0.001);
  });
});

describe("errorRateAbove at 95 % confidence against a 5 % limit", () => {
  const rows: { errors: number; requests: number; above: boolean; why: string }[] = [
    { errors: 1, requests: 15, above: false, why: "1 in 15 (6.7 %): seen 54 % of the time at 5 %" },
    { errors: 12, requests: 40, above: true, why: "30 % on 40 requests: hopeless at 5 %" },
    { errors: 0, requests: 1000, above: false, why: "no errors" },
    { errors: 70, requests: 1000, above: true, why: "7 % on 1000: beyond chance" },
  ];
  for (const r of rows) {
    it(`${r.errors}/${r.requests} -> ${r.above ? "above" : "not shown above"} (${r.why})`, () => {
      expect(errorRateAbove(r.errors, r.requests, 5, 95).above).toBe(r.above);
    });
  }
});
