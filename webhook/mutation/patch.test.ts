import fjp from "fast-json-patch";
import { describe, expect, it } from "vitest";
import type { Pod } from "./pod.ts";
import { toPatch } from "./patch.ts";

const base = (): Pod => ({
  metadata: { generateName: "x-", labels: { app: "a" } },
  spec: { containers: [{ name: "c" }] },
});

describe("toPatch", () => {
  it("escapes '/' and '~' in keys per RFC 6901", () => {
    const after = base();
    after.metadata!.labels!["verso.dev/app"] = "a";
    after.metadata!.labels!["odd~key"] = "b";
    const ops = toPatch(base(), after);
    expect(ops).toEqual([
      { op: "add", path: "/metadata/labels/verso.dev~1app", value: "a" },
      { op: "add", path: "/metadata/labels/odd~0key", value: "b" },
    ]);
  });

  it("adds a missing map whole (no labels/annotations at all)", () => {
    const before: Pod = { metadata: { generateName: "x-" }, spec: { containers: [{ name: "c" }] } };
    const after = structuredClone(before);
    after.metadata!.annotations = { "verso.dev/injected": "true" };
    expect(toPatch(before, after)).toEqual([
      { op: "add", path: "/metadata/annotations", value: { "verso.dev/injected": "true" } },
    ]);
  });

  it("returns undefined when nothing changed", () => {
    expect(toPatch(base(), base())).toBeUndefined();
  });

  it("never touches managedFields", () => {
    const before = base();
    before.metadata!.managedFields = [{ manager: "kcm" }];
    const after = structuredClone(before);
    after.metadata!.managedFields = [];
    after.metadata!.labels!.b = "c";
    const ops = toPatch(before, after)!;
    expect(ops.map((o) => o.path)).toEqual(["/metadata/labels/b"]);
    const applied = fjp.applyPatch(structuredClone(before), ops, true, false).newDocument;
    expect(applied.metadata?.managedFields).toEqual([{ manager: "kcm" }]);
  });

  it("prepends to an array in a way that applies to the original", () => {
    const before = base();
    before.spec.initContainers = [{ name: "user-init" }];
    const after = structuredClone(before);
    after.spec.initContainers = [
      { name: "verso-init" },
      { name: "verso-proxy" },
      { name: "user-init" },
    ];
    const ops = toPatch(before, after)!;
    const applied = fjp.applyPatch(structuredClone(before), ops, true, false).newDocument;
    expect(applied).toEqual(after);
  });
});
