import { describe, expect, it } from "vitest";
import { parsePolicy } from "../../../shared/policy.ts";
import type { ReleaseStatus } from "../decide/status.ts";
import { gateReadings } from "./releaseMetrics.ts";

const withAnalysis = (
  measured: NonNullable<ReleaseStatus["analysis"]>["measured"],
): ReleaseStatus => ({ phase: "Progressing", weight: 20, analysis: { measured } }) as ReleaseStatus;

describe("gateReadings: the last analysis per gate, against the policy", () => {
  it("is empty before any analysis", () => {
    expect(gateReadings({ phase: "Progressing", weight: 5 } as ReleaseStatus, undefined)).toEqual(
      [],
    );
  });

  it("gives each gate its measured value and the policy's limit", () => {
    const parsed = parsePolicy({
      "verso.dev/strategy": "canary",
      "verso.dev/steps": "10,50,100",
      "verso.dev/max-error-rate": "2",
      "verso.dev/max-p99": "300ms",
      "verso.dev/min-requests": "20",
    });
    expect(parsed.ok).toBe(true);
    const policy = parsed.ok ? parsed.value : undefined;
    const status = withAnalysis({
      releaseRequests: 40,
      releaseErrorRate: 2.5,
      releaseP99Ms: 120,
      stableRequests: 400,
      stableP99Ms: 60,
    });
    expect(gateReadings(status, policy)).toEqual([
      { gate: "error_rate", value: 2.5, threshold: 2 },
      { gate: "p99_ms", value: 120, threshold: 300 },
      { gate: "p99_ratio", value: 2, threshold: undefined },
      { gate: "requests", value: 40, threshold: 20 },
    ]);
  });
});
