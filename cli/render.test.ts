import { describe, expect, it } from "vitest";
import type { ReleaseRow, ReleaseView } from "./model.ts";
import { age, frame, renderList, renderRelease, table, visibleLength } from "./render.ts";

const NOW = Date.parse("2026-01-01T01:00:00Z");

describe("table and age", () => {
  it("pads columns to the widest cell, ignoring colour codes", () => {
    expect(
      table(
        ["A", "BB"],
        [
          ["\x1b[32mlong\x1b[0m", "x"],
          ["y", "z"],
        ],
      ),
    ).toBe(["A      BB", "\x1b[32mlong\x1b[0m   x", "y      z"].join("\n"));
    expect(visibleLength("\x1b[1mab\x1b[0m")).toBe(2);
  });
  it.each([
    ["2026-01-01T00:59:15Z", "45s"],
    ["2026-01-01T00:48:00Z", "12m"],
    ["2025-12-31T20:00:00Z", "5h"],
    ["2025-12-28T01:00:00Z", "4d"],
    [undefined, "-"],
    ["garbage", "-"],
  ])("age(%s) = %s", (from, want) => expect(age(from, NOW)).toBe(want));
});

const row: ReleaseRow = {
  namespace: "shop",
  app: "shop",
  deployment: "shop-v2",
  version: "v2",
  strategy: "canary",
  phase: "Progressing",
  step: "2/3",
  desiredWeight: 50,
  actualWeight: 48.7,
  created: "2026-01-01T00:58:00Z",
};

describe("renderList", () => {
  it("one row per release", () => {
    expect(
      renderList(
        [
          row,
          {
            ...row,
            app: "cart",
            strategy: "blue-green",
            phase: "Promoted",
            step: undefined,
            desiredWeight: 100,
            actualWeight: undefined,
          },
        ],
        { now: NOW, color: false, allNamespaces: false, namespace: "shop" },
      ),
    ).toBe(
      [
        "APP    STRATEGY     PHASE         STEP   DESIRED   ACTUAL   AGE",
        "shop   canary       Progressing   2/3    50%       48.7%    2m",
        "cart   blue-green   Promoted      -      100%      -        2m",
      ].join("\n"),
    );
  });
  it("-A adds the namespace; colour marks the phase", () => {
    const text = renderList([{ ...row, phase: "Failed" }], {
      now: NOW,
      color: true,
      allNamespaces: true,
      namespace: "x",
    });
    expect(text.split("\n")[0]).toMatch(/^NAMESPACE\s+APP/);
    expect(text).toContain("\x1b[31mFailed\x1b[0m");
  });
  it("nothing to list", () => {
    expect(renderList([], { now: NOW, color: false, allNamespaces: false, namespace: "x" })).toBe(
      "No releases found in namespace x.",
    );
  });
});

const view: ReleaseView = {
  ...row,
  reason: "StepAdvanced",
  message: "step 2 of 3: 50%",
  steps: [20, 50, 100],
  intervalMs: 60_000,
  paused: false,
  aborted: false,
  promoteAnnotation: false,
  match: [{ rule: "header:x-user-type=internal", weight: 100 }],
  policyErrors: [],
  versions: [
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
  ],
  gates: [
    { gate: "error-rate", threshold: 1, unit: "%", value: 0.5, sample: 41, result: "pass" },
    {
      gate: "p99-ratio",
      threshold: 1.2,
      unit: "x",
      value: 1.5,
      sample: 41,
      baselineSample: 160,
      result: "fail",
    },
    { gate: "min-requests", threshold: 20, unit: "requests", result: "no data" },
  ],
  analysis: {
    at: "2026-01-01T00:59:30Z",
    action: "advance",
    reason: "GatesPassed",
    message: "every gate passed",
  },
  traffic: {
    windowMs: 2_000,
    pods: 3,
    releaseShare: 48.7,
    versions: [
      { version: "v1", requests: 80, errors: 0, rps: 40, errorRate: 0, p99Ms: 9.6 },
      { version: "v2", requests: 76, errors: 1, rps: 38, errorRate: 1.32, p99Ms: 12.25 },
    ],
  },
  events: [
    {
      at: "2026-01-01T00:59:00Z",
      type: "Normal",
      reason: "StepAdvanced",
      message: "step 2 of 3: 50%",
      object: "shop-v2",
      count: 1,
    },
    {
      at: "2026-01-01T00:59:50Z",
      type: "Warning",
      reason: "PolicyInvalid",
      message: "bad",
      object: "shop-v2",
      count: 3,
    },
  ],
};

describe("renderRelease", () => {
  it("the whole page, plain", () => {
    expect(renderRelease(view, { now: NOW, color: false })).toBe(
      [
        "shop in namespace shop: release shop-v2 (version v2)",
        "Strategy:  canary, steps 20,50,100 every 1m",
        "Phase:     Progressing, step 2 of 3 (StepAdvanced: step 2 of 3: 50%)",
        "Weight:    desired 50%, actual 48.7% (last 2s)",
        "Match:     header:x-user-type=internal -> 100%",
        "Age:       2m",
        "",
        "VERSIONS",
        "VERSION   ROLE      DEPLOYMENT   READY   PODS",
        "v1        stable    shop-v1      2/2     shop-v1-a, shop-v1-b",
        "v2        release   shop-v2      0/1     shop-v2-a (not ready)",
        "",
        "GATES (last analysis 30s ago: advance, GatesPassed: every gate passed)",
        "GATE               VALUE   THRESHOLD   SAMPLE      RESULT",
        "error rate         0.5%    <= 1%       41          pass",
        "p99 / stable p99   1.5x    <= 1.2x     41 vs 160   fail",
        "requests           -       >= 20       -           no data",
        "",
        "TRAFFIC (last 2s, 3 pods scraped twice)",
        "VERSION   REQ/S   ERRORS   P99       REQUESTS",
        "v1        40      0%       9.6ms     80",
        "v2        38      1.32%    12.25ms   76",
        "",
        "EVENTS",
        "AGE   TYPE      REASON          OBJECT    MESSAGE",
        "60s   Normal    StepAdvanced    shop-v2   step 2 of 3: 50%",
        "10s   Warning   PolicyInvalid   shop-v2   bad (x3)",
      ].join("\n"),
    );
  });

  it("control flags, invalid annotations, a note instead of numbers; colour", () => {
    const text = renderRelease(
      {
        ...view,
        paused: true,
        aborted: true,
        policyErrors: ["verso.dev/weight: bad"],
        traffic: undefined,
        actualWeight: undefined,
        trafficNote: 'live numbers need "get" on pods/proxy',
        events: [],
      },
      { now: NOW, color: true },
    );
    expect(text).toContain("\x1b[33mpaused (verso.dev/paused)\x1b[0m");
    expect(text).toContain("\x1b[31maborted (verso.dev/abort)\x1b[0m");
    expect(text).toContain("\x1b[31mInvalid:   verso.dev/weight: bad\x1b[0m");
    expect(text).toContain('live numbers need "get" on pods/proxy');
    expect(text.endsWith("EVENTS\x1b[0m\n  <none>")).toBe(true);
    expect(text).toMatch(/Weight:\s+desired 50%\n/);
  });
});

describe("frame", () => {
  it("on a terminal: home, each line cleared to its end, the rest of the screen wiped", () => {
    expect(frame("a\nb", { inPlace: true, title: "T" })).toBe(
      "\x1b[HT\x1b[K\n\x1b[K\na\x1b[K\nb\x1b[K\n\x1b[J",
    );
  });
  it("piped: plain frames one after another", () => {
    expect(frame("a\nb", { inPlace: false, title: "T" })).toBe("--- T\na\nb\n\n");
  });
});
