import { describe, expect, it } from "vitest";
import { capWeight } from "./cap.ts";

describe("capWeight", () => {
  const rows: {
    name: string;
    requested: number;
    policy: { maxWeight?: number; podShareFactor?: number };
    pods?: { release: number; total: number };
    weight: number;
    by?: "max-weight" | "pod-share";
  }[] = [
    { name: "no cap", requested: 50, policy: {}, weight: 50 },
    { name: "under max-weight", requested: 20, policy: { maxWeight: 30 }, weight: 20 },
    {
      name: "max-weight binds",
      requested: 50,
      policy: { maxWeight: 30 },
      weight: 30,
      by: "max-weight",
    },
    {
      name: "1 ready canary pod of 10, factor 2: 20 % not 50 %",
      requested: 50,
      policy: { podShareFactor: 2 },
      pods: { release: 1, total: 10 },
      weight: 20,
      by: "pod-share",
    },
    {
      name: "the tighter of the two wins",
      requested: 50,
      policy: { maxWeight: 15, podShareFactor: 2 },
      pods: { release: 1, total: 10 },
      weight: 15,
      by: "max-weight",
    },
    {
      name: "no ready pods: no share claimed",
      requested: 50,
      policy: { podShareFactor: 2 },
      pods: { release: 0, total: 0 },
      weight: 50,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const c = capWeight(r.requested, r.policy, r.pods);
      expect(c.weight).toBe(r.weight);
      expect(c.cap?.by).toBe(r.by);
      if (r.by) expect(c.cap?.requested).toBe(r.requested);
    });
  }
});
