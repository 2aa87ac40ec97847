import { describe, expect, it } from "vitest";
import { planAction, type ActionCommand } from "./actions.ts";
import { findRelease, groupApps, releaseState } from "./model.ts";
import { dep, status } from "./testing.ts";

const NOW = Date.parse("2026-01-01T00:10:00Z");
const steps = {
  "verso.dev/strategy": "canary",
  "verso.dev/steps": "20,50,100",
  "verso.dev/interval": "1m",
};

function plan(
  command: ActionCommand,
  release: Record<string, string>,
  options: { full?: boolean; weight?: string; stableReplicas?: number } = {},
) {
  const apps = groupApps([
    dep("shop-v1", "v1", {}, { replicas: options.stableReplicas ?? 2 }),
    dep("shop-v2", "v2", release, { created: "2026-01-02T00:00:00Z", replicas: 3, rv: "42" }),
  ]);
  const app = findRelease(apps, "ns", "shop");
  const r = planAction({
    command,
    app,
    state: releaseState(app.release),
    full: options.full,
    weight: options.weight,
    now: NOW,
  });
  return r.ok ? r.value : { error: r.error.code, message: r.error.message };
}

describe("planAction: what each command writes", () => {
  it.each([
    // command, release annotations, options, writes (annotations of shop-v2) or error code
    ["abort", steps, {}, { "verso.dev/abort": "true" }],
    ["abort", { ...steps, "verso.dev/abort": "true" }, {}, "nothing"],
    [
      "pause",
      { ...steps, "verso.dev/status": status({ phase: "Progressing", step: 1, weight: 20 }) },
      {},
      { "verso.dev/paused": "true" },
    ],
    ["pause", { ...steps, "verso.dev/paused": "true" }, {}, "nothing"],
    ["pause", { "verso.dev/strategy": "canary", "verso.dev/weight": "5" }, {}, "CLI_UNSUPPORTED"],
    [
      "pause",
      { ...steps, "verso.dev/status": status({ phase: "Promoted", weight: 100 }) },
      {},
      "CLI_UNSUPPORTED",
    ],
    ["resume", { ...steps, "verso.dev/paused": "true" }, {}, { "verso.dev/paused": null }],
    ["resume", steps, {}, "nothing"],
    [
      "set-weight",
      { "verso.dev/strategy": "canary", "verso.dev/weight": "5" },
      { weight: "12.5" },
      { "verso.dev/weight": "12.5" },
    ],
    ["set-weight", { "verso.dev/strategy": "canary" }, { weight: "140" }, "POLICY_WEIGHT"],
    ["set-weight", { "verso.dev/strategy": "canary" }, { weight: "ten" }, "POLICY_WEIGHT"],
    ["set-weight", steps, { weight: "50" }, "CLI_UNSUPPORTED"],
    ["set-weight", { "verso.dev/strategy": "blue-green" }, { weight: "50" }, "CLI_UNSUPPORTED"],
    [
      "retry",
      { ...steps, "verso.dev/status": status({ phase: "Failed", weight: 0 }) },
      {},
      { "verso.dev/abort": null, "verso.dev/promote": null, "verso.dev/status": null },
    ],
    [
      "retry",
      { ...steps, "verso.dev/abort": "true" },
      {},
      { "verso.dev/abort": null, "verso.dev/promote": null, "verso.dev/status": null },
    ],
    [
      "retry",
      { ...steps, "verso.dev/status": status({ phase: "Progressing", step: 1, weight: 20 }) },
      {},
      "CLI_NOT_FAILED",
    ],
    ["promote", { "verso.dev/strategy": "blue-green" }, {}, { "verso.dev/promote": "true" }],
    ["promote", { "verso.dev/strategy": "blue-green", "verso.dev/promote": "true" }, {}, "nothing"],
    [
      "promote",
      { "verso.dev/strategy": "canary", "verso.dev/weight": "5" },
      {},
      { "verso.dev/promote": "true" },
    ],
    ["promote", steps, { full: true }, { "verso.dev/promote": "true" }],
    ["promote", steps, {}, "CLI_NOT_STARTED"],
    [
      "promote",
      { ...steps, "verso.dev/status": status({ phase: "Pending", weight: 0 }) },
      {},
      "CLI_NOT_STARTED",
    ],
    [
      "promote",
      { ...steps, "verso.dev/status": status({ phase: "Progressing", step: 3, weight: 100 }) },
      {},
      { "verso.dev/promote": "true" },
    ],
    [
      "promote",
      { ...steps, "verso.dev/status": status({ phase: "Promoted", weight: 100 }) },
      {},
      "nothing",
    ],
    [
      "promote",
      { ...steps, "verso.dev/status": status({ phase: "Failed", weight: 0 }) },
      {},
      "CLI_RELEASE_FAILED",
    ],
    ["promote", { ...steps, "verso.dev/abort": "true" }, { full: true }, "CLI_RELEASE_FAILED"],
    ["undo", steps, {}, { "verso.dev/abort": "true" }],
  ] as const)("%s on %j %j -> %j", (command, release, options, want) => {
    const got = plan(command, release, options);
    if (typeof want === "string") {
      if (want === "nothing") expect(got).toMatchObject({ writes: [] });
      else expect(got).toMatchObject({ error: want });
      return;
    }
    expect(got).toMatchObject({ writes: [{ deployment: "shop-v2", annotations: want }] });
    expect("writes" in got && got.writes).toHaveLength(1);
  });

  it("promote by one step writes the next step into the status, guarded by resourceVersion", () => {
    const got = plan("promote", {
      ...steps,
      "verso.dev/status": status({
        phase: "Progressing",
        step: 1,
        weight: 20,
        applied: { a: "b" },
      }),
    });
    expect(got).toMatchObject({
      writes: [{ deployment: "shop-v2", resourceVersion: "42" }],
      verify: { deployment: "shop-v2", step: 2 },
      summary: "shop (shop-v2): step 2 of 3, 50% of traffic to v2",
    });
    const written = "writes" in got ? got.writes[0]?.annotations?.["verso.dev/status"] : undefined;
    expect(JSON.parse(written ?? "{}")).toMatchObject({
      phase: "Progressing",
      step: 2,
      weight: 50,
      reason: "StepAdvanced",
      stepStartedAt: "2026-01-01T00:10:00.000Z",
      lastProgressAt: "2026-01-01T00:10:00.000Z",
      applied: { a: "b" },
    });
  });

  it("undo scales a previous version that was scaled to 0 back to the release's replicas", () => {
    const got = plan("undo", steps, { stableReplicas: 0 });
    expect(got).toMatchObject({
      writes: [
        { deployment: "shop-v1", replicas: 3 },
        { deployment: "shop-v2", annotations: { "verso.dev/abort": "true" } },
      ],
      summary: "shop (shop-v2): all traffic back to v1 (shop-v1), scaled up to 3",
    });
  });

  it("undo without a previous version is refused", () => {
    const app = findRelease(groupApps([dep("shop-v2", "v2", steps)]), "ns", "shop");
    const r = planAction({ command: "undo", app, state: releaseState(app.release), now: NOW });
    expect(r.ok ? r.value : r.error.code).toBe("CLI_NO_PREVIOUS");
  });
});
