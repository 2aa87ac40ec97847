import { describe, expect, it } from "vitest";
import type { ReleaseView } from "../model.ts";
import { appendSample, sampleOf } from "./history.ts";

describe("history", () => {
  it("keeps the last N samples", () => {
    let h = appendSample([], { at: 1, phase: "Pending", desiredWeight: 0 }, 2);
    h = appendSample(h, { at: 2, phase: "Pending", desiredWeight: 0 }, 2);
    h = appendSample(h, { at: 3, phase: "Progressing", desiredWeight: 20 }, 2);
    expect(h.map((s) => s.at)).toEqual([2, 3]);
  });
  it("a sample carries the weights and each version's numbers when there are any", () => {
    const view = {
      phase: "Progressing",
      desiredWeight: 20,
      actualWeight: 18.5,
      traffic: {
        windowMs: 1000,
        pods: 2,
        versions: [
          { version: "v1", requests: 10, errors: 0, rps: 10, errorRate: 0, p99Ms: 9 },
          { version: "v2", requests: 0, errors: 0, rps: 0 },
        ],
      },
    } as unknown as ReleaseView;
    expect(sampleOf(view, 5)).toEqual({
      at: 5,
      phase: "Progressing",
      desiredWeight: 20,
      actualWeight: 18.5,
      versions: { v1: { rps: 10, errorRate: 0, p99Ms: 9 }, v2: { rps: 0 } },
    });
    const { traffic: _t, actualWeight: _a, ...bare } = view;
    expect(sampleOf(bare as ReleaseView, 6)).toEqual({
      at: 6,
      phase: "Progressing",
      desiredWeight: 20,
    });
  });
});
