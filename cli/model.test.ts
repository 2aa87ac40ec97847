import type { CoreV1Event } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { VersoError } from "../shared/errors.ts";
import { parsePolicy } from "../shared/policy.ts";
import { parseStatus } from "../webhook/controller/decide/status.ts";
import { eventRows, findRelease, gateRows, groupApps, releaseRow, releaseView } from "./model.ts";
import { dep, pod, status } from "./testing.ts";

const canary = {
  "verso.dev/strategy": "canary",
  "verso.dev/steps": "20,50,100",
  "verso.dev/max-error-rate": "1",
  "verso.dev/max-p99": "500ms",
  "verso.dev/max-p99-ratio": "1.5",
  "verso.dev/min-requests": "20",
};

describe("groupApps / findRelease", () => {
  const apps = groupApps([
    dep("shop-v1", "v1"),
    dep("shop-v2", "v2", canary, { created: "2026-01-02T00:00:00Z" }),
    dep("cart-v1", "v1", {}, { app: "cart" }),
  ]);
  it("groups by app and picks the release as the controller does", () => {
    expect(apps.map((a) => [a.app, a.release?.name])).toEqual([
      ["cart", undefined],
      ["shop", "shop-v2"],
    ]);
  });
  it.each([
    ["nosuch", "CLI_UNKNOWN_APP", /no app "nosuch" in namespace "ns".*apps here: cart, shop/],
    ["cart", "CLI_NO_RELEASE", /app "cart" has no release: none of its Deployments \(cart-v1\)/],
  ])("%s -> %s", (name, code, message) => {
    try {
      findRelease(apps, "ns", name);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(VersoError);
      expect((error as VersoError).code).toBe(code);
      expect((error as VersoError).message).toMatch(message);
    }
  });
});

describe("releaseRow: desired weight as the proxies are told", () => {
  it.each([
    [{ ...canary }, undefined, { phase: "Unknown", step: "0/3", desiredWeight: 0 }],
    [
      canary,
      { phase: "Progressing", step: 2, weight: 50 },
      { phase: "Progressing", step: "2/3", desiredWeight: 50 },
    ],
    [
      { ...canary, "verso.dev/abort": "true" },
      { phase: "Progressing", step: 2, weight: 50 },
      { desiredWeight: 0 },
    ],
    [canary, { phase: "Promoted", weight: 100 }, { phase: "Promoted", desiredWeight: 100 }],
    [
      { "verso.dev/strategy": "canary", "verso.dev/weight": "7.5" },
      undefined,
      { strategy: "canary", desiredWeight: 7.5 },
    ],
    [
      { "verso.dev/strategy": "blue-green" },
      undefined,
      { strategy: "blue-green", desiredWeight: 0 },
    ],
    [
      { "verso.dev/strategy": "blue-green", "verso.dev/promote": "true" },
      undefined,
      { desiredWeight: 100 },
    ],
    // A status left by another version is not this release's.
    [
      canary,
      { phase: "Promoted", weight: 100, version: "v1" },
      { phase: "Unknown", desiredWeight: 0 },
    ],
  ] as const)("%j with status %j", (annotations, st, want) => {
    const a: Record<string, string> = { ...annotations };
    if (st) a["verso.dev/status"] = status(st);
    const app = findRelease(
      groupApps([dep("shop-v1", "v1"), dep("shop-v2", "v2", a)]),
      "ns",
      "shop",
    );
    expect(releaseRow(app)).toMatchObject(want);
  });
});

describe("gateRows: the last analysis against the gates", () => {
  const policy = parsePolicy(canary);
  if (!policy.ok) throw new Error("bad fixture");
  const withAnalysis = (measured: Record<string, number>) =>
    parseStatus(
      status({
        phase: "Progressing",
        weight: 20,
        analysis: { at: "t", action: "hold", reason: "Held", message: "", measured },
      }),
    );
  it("values, thresholds, samples and results", () => {
    const rows = gateRows(
      policy.value,
      withAnalysis({
        releaseRequests: 41,
        releaseErrorRate: 2.5,
        releaseP99Ms: 120,
        stableRequests: 160,
        stableP99Ms: 100,
      }),
    );
    expect(rows).toEqual([
      { gate: "error-rate", threshold: 1, unit: "%", value: 2.5, sample: 41, result: "fail" },
      { gate: "p99", threshold: 500, unit: "ms", value: 120, sample: 41, result: "pass" },
      {
        gate: "p99-ratio",
        threshold: 1.5,
        unit: "x",
        value: 1.2,
        sample: 41,
        baselineSample: 160,
        result: "pass",
      },
      {
        gate: "min-requests",
        threshold: 20,
        unit: "requests",
        value: 41,
        sample: 41,
        result: "pass",
      },
    ]);
  });
  it("no traffic: no values, no data", () => {
    const rows = gateRows(policy.value, withAnalysis({ releaseRequests: 0, stableRequests: 0 }));
    expect(rows.map((r) => [r.gate, r.value, r.result])).toEqual([
      ["error-rate", undefined, "no data"],
      ["p99", undefined, "no data"],
      ["p99-ratio", undefined, "no data"],
      ["min-requests", 0, "fail"],
    ]);
  });
  it("no analysis yet: thresholds only", () => {
    const rows = gateRows(policy.value, undefined);
    expect(rows.map((r) => [r.gate, r.threshold, r.value, r.sample, r.result])).toEqual([
      ["error-rate", 1, undefined, undefined, "no data"],
      ["p99", 500, undefined, undefined, "no data"],
      ["p99-ratio", 1.5, undefined, undefined, "no data"],
      ["min-requests", 20, undefined, undefined, "no data"],
    ]);
  });
});

describe("releaseView", () => {
  const ev = (name: string, reason: string, at: string, type = "Normal"): CoreV1Event => ({
    metadata: {},
    involvedObject: { kind: "Deployment", name },
    reason,
    type,
    message: reason,
    lastTimestamp: at as unknown as Date,
  });
  it("versions with their pods, events of the app's Deployments oldest first", () => {
    const app = findRelease(
      groupApps([
        dep("shop-v1", "v1", {}, { replicas: 2 }),
        dep("shop-v2", "v2", { ...canary, "verso.dev/paused": "true" }, { ready: 0 }),
      ]),
      "ns",
      "shop",
    );
    const view = releaseView({
      app,
      pods: [
        pod("shop-v1-b", "v1"),
        pod("shop-v1-a", "v1"),
        pod("shop-v2-a", "v2", false),
        pod("x", "v1", true, "cart"),
      ],
      events: [
        ev("shop-v2", "Paused", "2026-01-01T00:02:00Z"),
        ev("shop-v2", "Started", "2026-01-01T00:01:00Z"),
        ev("cart-v2", "Started", "2026-01-01T00:00:00Z"),
      ],
    });
    expect(view.versions).toEqual([
      {
        version: "v1",
        role: "stable",
        deployments: ["shop-v1"],
        desiredReplicas: 2,
        readyReplicas: 2,
        pods: [
          { name: "shop-v1-a", ready: true },
          { name: "shop-v1-b", ready: true },
        ],
      },
      {
        version: "v2",
        role: "release",
        deployments: ["shop-v2"],
        desiredReplicas: 1,
        readyReplicas: 0,
        pods: [{ name: "shop-v2-a", ready: false }],
      },
    ]);
    expect(view.events.map((e) => e.reason)).toEqual(["Started", "Paused"]);
    expect(view.paused).toBe(true);
    expect(view.steps).toEqual([20, 50, 100]);
  });
  it("invalid annotations are listed with the parser's message", () => {
    const app = findRelease(
      groupApps([
        dep("shop-v2", "v2", { "verso.dev/strategy": "canary", "verso.dev/weight": "140" }),
      ]),
      "ns",
      "shop",
    );
    expect(releaseView({ app, pods: [], events: [] }).policyErrors).toEqual([
      'verso.dev/weight: "140": use a number from 0 to 100, e.g. "10" or "2.5"',
    ]);
  });
  it("eventRows keeps the last N", () => {
    const many = Array.from({ length: 20 }, (_, i) =>
      ev("d", `R${i}`, new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString()),
    );
    expect(eventRows(many, ["d"], 3).map((e) => e.reason)).toEqual(["R17", "R18", "R19"]);
  });
});

describe("releaseRow: step", () => {
  it.each([
    [{ "verso.dev/strategy": "canary", "verso.dev/weight": "5" }, undefined, false],
    [canary, { phase: "Promoted", weight: 100 }, false],
    [canary, { phase: "Failed", weight: 0 }, false],
    [canary, { phase: "Pending", weight: 0 }, true],
  ] as const)("%j with status %j has a step: %s", (annotations, st, has) => {
    const a: Record<string, string> = { ...annotations };
    if (st) a["verso.dev/status"] = status(st);
    const app = findRelease(groupApps([dep("shop-v2", "v2", a)]), "ns", "shop");
    expect("step" in releaseRow(app)).toBe(has);
  });
});
