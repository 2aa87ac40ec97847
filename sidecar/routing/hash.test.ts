import { describe, expect, it } from "vitest";
import { parseRoutingTable } from "../../shared/table.ts";
import { compileTable } from "./compile.ts";
import { decide, viewOf } from "./decide.ts";
import { BUCKETS, bucketOf, thresholdFor } from "./hash.ts";

/** mulberry32: a seeded PRNG, so the random-split test is reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const canary = (weight: number, sticky?: object) => {
  const parsed = parseRoutingTable({
    app: "shop",
    revision: 1,
    release: { version: "v2", strategy: "canary", weight, ...(sticky ? { sticky } : {}) },
    endpoints: { v1: ["127.0.0.2:15006"], v2: ["127.0.0.3:15006"] },
  });
  if (!parsed.ok) throw new Error(parsed.error);
  return compileTable(parsed.value);
};

const N = 200_000;
/**
 * Binomial bound: the release count X ~ Bin(N, p) has sd sqrt(N p (1-p)); we accept
 * |X - N p| <= 6 sd (a false failure has probability about 2e-9). For N = 200,000 that is, in
 * percentage points: 0.5% -> ±0.095, 5% -> ±0.29, 10% -> ±0.40, 50% -> ±0.67.
 */
const bound = (p: number) => 6 * Math.sqrt(N * p * (1 - p));

describe("weight split: distribution accuracy", () => {
  for (const weight of [0.5, 5, 10, 50]) {
    const p = weight / 100;
    it(`random split at ${weight}% over ${N} requests is within 6 sd`, () => {
      const t = canary(weight);
      const roll = seeded(42 + weight);
      let release = 0;
      for (let i = 0; i < N; i++) {
        if ("forward" in decide(viewOf("/", new Headers(), false), t, "v1", roll)) release++;
      }
      expect(Math.abs(release - N * p)).toBeLessThanOrEqual(bound(p));
    });
    it(`sticky split at ${weight}% over ${N} distinct keys is within 6 sd`, () => {
      const t = canary(weight, { header: "x-user-id" });
      let release = 0;
      for (let i = 0; i < N; i++) {
        const d = decide(
          viewOf("/", new Headers({ "x-user-id": `user-${i}` }), false),
          t,
          "v1",
          () => {
            throw new Error("sticky must not roll");
          },
        );
        if ("forward" in d) release++;
      }
      expect(Math.abs(release - N * p)).toBeLessThanOrEqual(bound(p));
    });
  }

  it("weights map to exact bucket thresholds (0.01% resolution)", () => {
    expect(thresholdFor(0.5)).toBe(50);
    expect(thresholdFor(12.25)).toBe(1225);
    expect(thresholdFor(100)).toBe(BUCKETS);
    expect(thresholdFor(0)).toBe(0);
  });
});

describe("sticky split: stickiness and monotonic growth", () => {
  const keys = Array.from({ length: 20_000 }, (_, i) => `customer-${i * 7919}`);

  it("the same key always lands on the same version at a given weight", () => {
    const t = canary(20, { cookie: "uid" });
    let released = 0;
    for (const key of keys.slice(0, 2_000)) {
      const first =
        "forward" in
        decide(viewOf("/", new Headers({ cookie: `uid=${key}` }), false), t, "v1", Math.random);
      for (let i = 0; i < 5; i++) {
        const again =
          "forward" in
          decide(viewOf("/", new Headers({ cookie: `uid=${key}` }), false), t, "v1", Math.random);
        expect(again).toBe(first);
      }
      if (first) released++;
    }
    // Both sides occur: the stickiness above is not a constant answer.
    expect(released).toBeGreaterThan(0);
    expect(released).toBeLessThan(2_000);
  });

  it("a key on the release stays there as the weight grows 1 -> 5 -> 20 -> 50 -> 100", () => {
    const steps = [1, 5, 20, 50, 100];
    let previous = new Set<string>();
    for (const w of steps) {
      const t = canary(w, { header: "x-user-id" });
      const now = new Set(
        keys.filter(
          (k) =>
            "forward" in
            decide(viewOf("/", new Headers({ "x-user-id": k }), false), t, "v1", Math.random),
        ),
      );
      for (const k of previous) expect(now.has(k)).toBe(true);
      expect(now.size).toBeGreaterThan(previous.size);
      previous = now;
    }
    expect(previous.size).toBe(keys.length);
  });

  it("buckets are spread: neighbouring keys do not cluster", () => {
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) counts[Math.floor(bucketOf(`u${i}`) / 1000)]++;
    for (const c of counts)
      expect(Math.abs(c - 10_000)).toBeLessThan(6 * Math.sqrt(100_000 * 0.1 * 0.9));
  });
});
