import { describe, expect, it } from "vitest";
import { gatePayload, notificationOf, slackPayload, type ReleaseRef } from "./payloads.ts";
import { st, T0 } from "./testFixtures.ts";

const ref: ReleaseRef = {
  name: "shop-v2",
  namespace: "shop",
  app: "shop",
  version: "v2",
  stableVersions: ["v1"],
};

describe("payloads", () => {
  it("a gate call describes the release", () => {
    expect(gatePayload("confirm-promotion", ref, st({ step: 2, weight: 50 }))).toEqual({
      name: "shop-v2",
      namespace: "shop",
      app: "shop",
      type: "confirm-promotion",
      phase: "Progressing",
      reason: "Started",
      weight: 50,
      step: 2,
      version: "v2",
      stableVersions: ["v1"],
    });
  });
  it("notifies the documented transitions only, with severity", () => {
    const s = st({ phase: "Failed", weight: 0, reason: "RolledBack" });
    const n = notificationOf({ type: "Warning", reason: "RolledBack", message: "5xx" }, ref, s, T0);
    expect(n).toMatchObject({
      kind: "verso.release",
      event: "RolledBack",
      severity: "warning",
      version: "v2",
      phase: "Failed",
      weight: 0,
      message: "5xx",
      at: "2026-01-01T00:00:00.000Z",
    });
    expect(slackPayload(n!).text).toBe(":warning: *shop/shop* v2: RolledBack (Failed, 0%) 5xx");
    expect(notificationOf({ type: "Normal", reason: "GateCalled", message: "" }, ref, s, T0)).toBe(
      undefined,
    );
  });
});
