import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { formatProblems, lintText, suggest } from "./lint.ts";

const codes = (text: string) => lintText("f.yaml", text).problems.map((p) => p.code);
const deployment = (annotations: string, template = ""): string =>
  `kind: Deployment
metadata:
  name: shop-v2
  annotations:
${annotations}
spec:
  template:
    metadata:
      annotations:
${template || "        x: y"}
`;

const gated = deployment(
  "    verso.dev/strategy: canary\n    verso.dev/steps: '5,20'\n    verso.dev/gates-configmap: shop-gates",
);
const gates = (data: string): string =>
  `kind: ConfigMap\nmetadata:\n  name: shop-gates\ndata:\n${data}\n`;

describe("lintText", () => {
  it.each([
    [
      "a valid release",
      deployment('    verso.dev/strategy: canary\n    verso.dev/steps: "5,20"'),
      [],
    ],
    [
      "the parser's codes",
      deployment("    verso.dev/strategy: rolling\n    verso.dev/interval: soon"),
      ["POLICY_STRATEGY", "POLICY_DURATION"],
    ],
    [
      "an unquoted number",
      deployment("    verso.dev/strategy: canary\n    verso.dev/weight: 10"),
      ["LINT_NOT_STRING"],
    ],
    [
      "a misspelt name",
      deployment("    verso.dev/strategy: canary\n    verso.dev/stepz: '5'"),
      ["LINT_UNKNOWN"],
    ],
    ["policy without a strategy", deployment("    verso.dev/weight: '10'"), ["LINT_NOT_RELEASE"]],
    [
      "a gates ConfigMap in the same file, valid",
      `${gated}---\n${gates("  pre-rollout: https://checks.example/pre\n  timeout: 15s")}`,
      [],
    ],
    [
      "a gates ConfigMap in the same file, with an unknown key and a bad URL",
      `${gated}---\n${gates("  pre-rolout: https://x.example\n  rollout: ftp://x.example")}`,
      ["POLICY_CONFIGMAP", "POLICY_URL"],
    ],
    ["a gates ConfigMap only in the cluster (not looked for)", gated, []],
    [
      "policy on the pod template",
      deployment("    verso.dev/strategy: canary", "        verso.dev/abort: 'true'"),
      ["LINT_MISPLACED"],
    ],
    [
      "identity on the Deployment",
      deployment("    verso.dev/strategy: canary\n    verso.dev/version: v2"),
      ["LINT_MISPLACED"],
    ],
    [
      "status in a manifest",
      deployment("    verso.dev/strategy: canary\n    verso.dev/status: '{}'"),
      ["LINT_OWNED"],
    ],
    [
      "policy on a StatefulSet",
      "kind: StatefulSet\nmetadata:\n  annotations:\n    verso.dev/strategy: canary\n",
      ["LINT_MISPLACED"],
    ],
    [
      "identity on a Pod is fine",
      "kind: Pod\nmetadata:\n  annotations:\n    verso.dev/version: v2\n",
      [],
    ],
    ["other annotations are not ours", deployment("    example.com/x: '1'"), []],
    [
      "a List's items",
      "kind: List\nitems:\n  - kind: Deployment\n    metadata:\n      annotations:\n        verso.dev/strategy: bad\n",
      ["POLICY_STRATEGY"],
    ],
    ["broken YAML", "kind: Deployment\nmetadata: [\n", ["LINT_YAML"]],
    ["empty documents", "---\n---\n", []],
  ])("%s", (_name, text, want) => expect(codes(text)).toEqual(want));

  it("problems carry file, document, line, object and annotation", () => {
    const r = lintText(
      "m.yaml",
      `kind: Service\n---\n${deployment("    verso.dev/strategy: canary\n    verso.dev/weight: '140'")}`,
    );
    expect(r).toMatchObject({ objects: 2, releases: 1 });
    expect(r.problems).toEqual([
      {
        file: "m.yaml",
        document: 2,
        line: 8,
        object: "Deployment/shop-v2",
        annotation: "verso.dev/weight",
        code: "POLICY_WEIGHT",
        message: 'verso.dev/weight: "140": use a number from 0 to 100, e.g. "10" or "2.5"',
      },
    ]);
    expect(formatProblems(r.problems)).toBe(
      'm.yaml:8: Deployment/shop-v2: POLICY_WEIGHT verso.dev/weight: "140": use a number from 0 to 100, e.g. "10" or "2.5"',
    );
  });

  it("suggests the closest known name", () => {
    expect(suggest("verso.dev/intervall")).toBe("verso.dev/interval");
    expect(suggest("verso.dev/max-p90")).toBe("verso.dev/max-p99");
    expect(suggest("verso.dev/completely-different")).toBeUndefined();
  });

  it("the testdata files: good has none, bad has every kind", () => {
    const read = (f: string) => readFileSync(new URL(`./testdata/${f}`, import.meta.url), "utf8");
    expect(lintText("good.yaml", read("good.yaml")).problems).toEqual([]);
    expect(new Set(codes(read("bad.yaml")))).toEqual(
      new Set([
        "LINT_NOT_STRING",
        "LINT_UNKNOWN",
        "LINT_MISPLACED",
        "LINT_NOT_RELEASE",
        "LINT_OWNED",
        "POLICY_WEIGHT",
        "POLICY_STEPS",
        "POLICY_MATCH_WEIGHT",
      ]),
    );
  });
});
