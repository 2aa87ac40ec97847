/**
 * Golden files: test/golden/mutation/<case>/pod.yaml (as the apiserver sends it; optional
 * case.yaml: {namespace, operation}) -> expected.json (the pod after applying the returned
 * JSON Patch with fast-json-patch) and expected.outcome.json (outcome, reasons, warnings).
 *
 *   UPDATE_GOLDEN=1 npx vitest run test/golden     (npm run golden:update) rewrites them.
 *
 * On mismatch actual.json / actual.outcome.json are written beside the expected files.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fjp from "fast-json-patch";
import type { Operation } from "fast-json-patch";
import { describe, expect, it } from "vitest";
import { format, resolveConfig } from "prettier";
import { parse } from "yaml";
import { admit } from "../../webhook/admission/admit.ts";
import { DEFAULT_INJECT } from "../../webhook/mutation/config.ts";
import { isObject } from "../../webhook/mutation/pod.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "mutation");
const UPDATE = process.env.UPDATE_GOLDEN === "1";

interface CaseFile {
  namespace?: string;
  operation?: string;
}

/** Fresh objects on every call: no test can leak a mutation into another. */
function loadCase(dir: string): { pod: Record<string, unknown>; meta: CaseFile } {
  const pod: unknown = parse(readFileSync(join(dir, "pod.yaml"), "utf8"));
  if (!isObject(pod)) throw new Error(`${dir}/pod.yaml: not an object`);
  const casePath = join(dir, "case.yaml");
  const meta: unknown = existsSync(casePath) ? parse(readFileSync(casePath, "utf8")) : {};
  if (!isObject(meta)) throw new Error(`${dir}/case.yaml: not an object`);
  return { pod, meta: meta as CaseFile };
}

async function checkGolden(dir: string, name: string, actual: unknown): Promise<void> {
  const expectedPath = join(dir, `expected${name}.json`);
  const actualPath = join(dir, `actual${name}.json`);
  // Written as prettier would, so `prettier --check` stays clean after an update.
  const options = (await resolveConfig(expectedPath)) ?? {};
  const text = await format(JSON.stringify(actual), { ...options, filepath: expectedPath });
  if (UPDATE) {
    writeFileSync(expectedPath, text);
    rmSync(actualPath, { force: true });
    return;
  }
  if (!existsSync(expectedPath)) {
    writeFileSync(actualPath, text);
    throw new Error(`${expectedPath} missing: run npm run golden:update`);
  }
  const expected: unknown = JSON.parse(readFileSync(expectedPath, "utf8"));
  try {
    expect(actual).toEqual(expected);
    rmSync(actualPath, { force: true });
  } catch (e) {
    writeFileSync(actualPath, text);
    throw e;
  }
}

const cases = readdirSync(ROOT, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe("mutation goldens", () => {
  it("has no stale golden folders (each has a pod.yaml)", () => {
    const stale = cases.filter((c) => !existsSync(join(ROOT, c, "pod.yaml")));
    expect(stale).toEqual([]);
  });

  it.each(cases.filter((c) => existsSync(join(ROOT, c, "pod.yaml"))))("%s", async (name) => {
    const dir = join(ROOT, name);
    const { pod, meta } = loadCase(dir);
    const original = structuredClone(pod);
    const metadata = isObject(pod.metadata) ? pod.metadata : {};
    const namespace =
      meta.namespace ?? (typeof metadata.namespace === "string" ? metadata.namespace : "demo");
    const a = admit(
      {
        uid: `golden-${name}`,
        kind: { group: "", version: "v1", kind: "Pod" },
        subResource: undefined,
        namespace,
        operation: meta.operation ?? "CREATE",
        dryRun: false,
        object: pod,
      },
      DEFAULT_INJECT,
    );
    // admit() must not touch its input: the patch is computed against what the apiserver holds.
    expect(pod).toEqual(original);
    expect(a.response.uid).toBe(`golden-${name}`);
    expect(a.response.allowed).toBe(true);

    let result: unknown = structuredClone(original);
    if (a.response.patch !== undefined) {
      expect(a.response.patchType).toBe("JSONPatch");
      const ops: unknown = JSON.parse(Buffer.from(a.response.patch, "base64").toString("utf8"));
      expect(Array.isArray(ops) && ops.length > 0).toBe(true);
      // validate=true: every op must be legal against this exact document (paths exist, etc.).
      result = fjp.applyPatch(result, ops as Operation[], true, false).newDocument;
      const paths = (ops as Operation[]).map((o) => o.path);
      expect(paths.some((p) => p.includes("managedFields"))).toBe(false);
    }
    await checkGolden(dir, "", result);
    await checkGolden(dir, ".outcome", {
      outcome: a.outcome,
      reasons: a.reasons,
      patched: a.response.patch !== undefined,
      warnings: a.response.warnings ?? [],
    });
    // Injection is idempotent: admitting the injected pod again changes nothing.
    if (a.outcome === "injected") {
      const again = admit(
        {
          uid: "again",
          kind: { group: "", version: "v1", kind: "Pod" },
          subResource: undefined,
          namespace,
          operation: "CREATE",
          dryRun: false,
          object: result,
        },
        DEFAULT_INJECT,
      );
      expect(again.reasons).toEqual(["already_injected"]);
      expect(again.response.patch).toBeUndefined();
    }
  });
});
