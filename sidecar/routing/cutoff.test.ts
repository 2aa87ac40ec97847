import { describe, expect, it } from "vitest";
import { parseRoutingTable } from "../../shared/table.ts";
import { compileTable, type CompiledTable } from "./compile.ts";
import { CutOff } from "./cutoff.ts";
import { decide, viewOf } from "./decide.ts";

const table = (release: Record<string, unknown> | undefined): CompiledTable => {
  const t = parseRoutingTable({
    app: "shop",
    revision: 1,
    endpoints: { v1: ["127.0.0.2:15006"], v2: ["127.0.0.3:15006"] },
    ...(release ? { release } : {}),
  });
  if (!t.ok) throw new Error(t.error);
  return compileTable(t.value);
};
const canary = (o: Record<string, unknown> = {}) =>
  table({ version: "v2", strategy: "canary", weight: 50, cutoffFailures: 3, ...o });

function counter() {
  const seen: [string, boolean][] = [];
  const c = new CutOff({ cutOff: (v, on) => seen.push([v, on]) });
  return { c, seen };
}

describe("CutOff: consecutive failures of the release version", () => {
  it("cuts at N failures in a row, not at N failures with a success between", () => {
    const { c, seen } = counter();
    c.onTable(canary());
    c.record("v2", true);
    c.record("v2", true);
    c.record("v2", false); // a success resets the streak
    c.record("v2", true);
    c.record("v2", true);
    expect(c.active).toBe(false);
    c.record("v2", true);
    expect(c.active).toBe(true);
    expect(seen).toEqual([["v2", true]]);
  });
  it("counts only the release version's answers", () => {
    const { c } = counter();
    c.onTable(canary());
    for (let i = 0; i < 10; i++) c.record("v1", true);
    expect(c.active).toBe(false);
  });
  it("never cuts without a cutoffFailures in the table (0 disables)", () => {
    const { c } = counter();
    c.onTable(canary({ cutoffFailures: 0 }));
    for (let i = 0; i < 10; i++) c.record("v2", true);
    expect(c.active).toBe(false);
  });
  it("holds across tables of the same release; lifts when the release is off or another", () => {
    const { c, seen } = counter();
    c.onTable(canary());
    for (let i = 0; i < 3; i++) c.record("v2", true);
    c.onTable(canary({ weight: 50 })); // new endpoints, same release: still cut
    expect(c.active).toBe(true);
    c.onTable(canary({ weight: 0 })); // rolled back by the controller
    expect(c.active).toBe(false);
    expect(seen).toEqual([
      ["v2", true],
      ["v2", false],
    ]);
  });
  it("a cut release gets no new requests: stable serves, even matching ones", () => {
    const t = canary({ weight: 100, match: [{ header: "x-beta", value: "1" }] });
    const view = viewOf("/", new Headers({ "x-beta": "1" }), false);
    expect(decide(view, t, "v1", () => 0)).toMatchObject({ forward: "v2" });
    expect(decide(view, t, "v1", () => 0, true)).toEqual({ serve: "local", reason: "cut-off" });
    expect(decide(view, t, "v2", () => 0, true)).toMatchObject({
      forward: "v1",
      reason: "cut-off",
    });
  });
});
