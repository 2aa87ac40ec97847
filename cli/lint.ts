/**
 * `kubectl verso lint`: the `verso.dev/` annotations of manifests, checked offline. Pure
 * (text in, problems out). Release policy values go through shared/policy.ts, the parser the
 * controller uses, so lint reports exactly the codes and messages the controller would put in
 * a PolicyInvalid Event; the rest is where each annotation belongs and whether it exists.
 *
 * | check                                                   | code                |
 * |---------------------------------------------------------|---------------------|
 * | the YAML does not parse                                 | LINT_YAML           |
 * | a `verso.dev/` name Verso does not know                 | LINT_UNKNOWN        |
 * | a value that is not a string (Kubernetes refuses it)    | LINT_NOT_STRING     |
 * | release policy on a pod template, Pod or other workload | LINT_MISPLACED      |
 * | identity or injection on a Deployment's own metadata    | LINT_MISPLACED      |
 * | release policy without `verso.dev/strategy`             | LINT_NOT_RELEASE    |
 * | `verso.dev/status` or `verso.dev/injected` in a manifest | LINT_OWNED         |
 * | a release whose policy does not parse                   | POLICY_* (parser's) |
 * | its gates ConfigMap, when the same file holds it, is bad | POLICY_* (parser's) |
 *
 * A gates ConfigMap (`verso.dev/gates-configmap`) is checked when the file that holds the
 * release holds it too (one manifest, or `kubectl kustomize` output); one that lives only in
 * the cluster is not looked for (lint is offline).
 */
import { LineCounter, parseAllDocuments, type Document } from "yaml";
import { ANNOTATION, LABEL, PREFIX } from "../shared/annotations.ts";
import { parsePolicy, POLICY_ANNOTATIONS, withGatesConfigMap } from "../shared/policy.ts";

export interface LintProblem {
  file: string;
  /** 1-based position of the document in the file. */
  document: number;
  /** 1-based line of the annotation (or of the error), when known. */
  line?: number;
  /** `Deployment/shop-v2`, when the document says. */
  object?: string;
  annotation?: string;
  code: string;
  message: string;
}

export interface LintResult {
  /** Objects looked at (documents and List items). */
  objects: number;
  /** Objects that are releases (carry verso.dev/strategy). */
  releases: number;
  problems: LintProblem[];
}

const POLICY = new Set<string>(POLICY_ANNOTATIONS);
const OWNED = new Set<string>([ANNOTATION.status, ANNOTATION.injected]);
const POD_LEVEL = new Set<string>(
  Object.values(ANNOTATION).filter((a) => !POLICY.has(a) && !OWNED.has(a)),
);
const KNOWN = new Set<string>(Object.values(ANNOTATION));
/** Kinds whose pod template the webhook sees (through the Pods they make). */
const WORKLOADS = new Set([
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "ReplicaSet",
  "Job",
  "ReplicationController",
]);

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

export function suggest(name: string): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const k of KNOWN) {
    const d = distance(name, k);
    if (!best || d < best.d) best = { name: k, d };
  }
  return best && best.d <= 3 ? best.name : undefined;
}

interface Where {
  file: string;
  document: number;
  doc: Document;
  lines: LineCounter;
  /** Path of the object inside the document (List items). */
  path: (string | number)[];
  /** The file's ConfigMaps' data by name (the gates ConfigMaps releases may name). */
  configMaps: ReadonlyMap<string, Record<string, string>>;
}

/** The objects of a document: itself, or a List's items. */
function objectsOf(value: Json): Json[] {
  if (value.kind === "List" && Array.isArray(value.items)) return value.items.filter(isRecord);
  return [value];
}

/** ConfigMaps' data by name; a value that is not a string is kept as its text. */
function configMapsOf(values: readonly Json[]): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const obj of values.flatMap(objectsOf)) {
    if (obj.kind !== "ConfigMap" || !isRecord(obj.metadata)) continue;
    if (typeof obj.metadata.name !== "string") continue;
    const data: Record<string, string> = {};
    if (isRecord(obj.data)) for (const [k, v] of Object.entries(obj.data)) data[k] = String(v);
    out.set(obj.metadata.name, data);
  }
  return out;
}

function lineOf(w: Where, path: (string | number)[]): number | undefined {
  const node = w.doc.getIn([...w.path, ...path], true) as { range?: [number, number, number] };
  const start = node?.range?.[0];
  return start === undefined ? undefined : w.lines.linePos(start).line;
}

/** One object (a document, or an item of a List). */
function lintObject(obj: Json, w: Where, result: LintResult): void {
  const kind = typeof obj.kind === "string" ? obj.kind : undefined;
  if (kind === "List" && Array.isArray(obj.items)) {
    obj.items.forEach((item, i) => {
      if (isRecord(item)) lintObject(item, { ...w, path: [...w.path, "items", i] }, result);
    });
    return;
  }
  result.objects++;
  const meta = isRecord(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === "string" ? meta.name : undefined;
  const object = kind ? `${kind}/${name ?? "?"}` : undefined;
  const report = (
    code: string,
    message: string,
    annotation?: string,
    at?: (string | number)[],
  ): void => {
    const p: LintProblem = { file: w.file, document: w.document, code, message };
    const line = at ? lineOf(w, at) : undefined;
    if (line !== undefined) p.line = line;
    if (object) p.object = object;
    if (annotation) p.annotation = annotation;
    result.problems.push(p);
  };

  /** Annotations at `at` (a metadata path): names, string values; returns them as strings. */
  const read = (metadata: unknown, at: (string | number)[]): Record<string, string> => {
    const out: Record<string, string> = {};
    if (!isRecord(metadata) || !isRecord(metadata.annotations)) return out;
    for (const [key, value] of Object.entries(metadata.annotations)) {
      if (!key.startsWith(PREFIX)) continue;
      const keyAt = [...at, "annotations", key];
      if (!KNOWN.has(key)) {
        const hint = suggest(key);
        report(
          "LINT_UNKNOWN",
          `${key}: not a Verso annotation${hint ? `; did you mean ${hint}?` : ""}`,
          key,
          keyAt,
        );
        continue;
      }
      if (typeof value !== "string") {
        report(
          "LINT_NOT_STRING",
          `${key}: annotation values must be strings; quote it: "${String(value)}"`,
          key,
          keyAt,
        );
      }
      out[key] = value === null || value === undefined ? "" : String(value);
    }
    return out;
  };

  const own = read(meta, ["metadata"]);
  for (const key of Object.keys(own)) {
    if (OWNED.has(key))
      report(
        "LINT_OWNED",
        `${key} is written by Verso; a manifest that sets it overwrites the controller's state on every apply: remove it`,
        key,
        ["metadata", "annotations", key],
      );
  }

  const spec = isRecord(obj.spec) ? obj.spec : {};
  const template = isRecord(spec.template) ? spec.template : undefined;
  const templateAnnotations =
    template && WORKLOADS.has(kind ?? "")
      ? read(template.metadata, ["spec", "template", "metadata"])
      : {};
  for (const key of Object.keys(templateAnnotations)) {
    const at = ["spec", "template", "metadata", "annotations", key];
    if (POLICY.has(key))
      report(
        "LINT_MISPLACED",
        `${key} is release policy: it belongs in the Deployment's metadata.annotations, not the pod template`,
        key,
        at,
      );
    else if (OWNED.has(key))
      report("LINT_OWNED", `${key} is written by Verso: remove it from the manifest`, key, at);
  }
  if (template && isRecord(template.metadata) && isRecord(template.metadata.labels)) {
    // A pod label is fine (the webhook writes these); an injection label belongs on a Namespace.
    if (template.metadata.labels[LABEL.injection] !== undefined)
      report(
        "LINT_MISPLACED",
        `${LABEL.injection} is a Namespace label; on a pod template it does nothing`,
        LABEL.injection,
        ["spec", "template", "metadata", "labels", LABEL.injection],
      );
  }

  const policyKeys = Object.keys(own).filter((k) => POLICY.has(k));
  if (kind === "Deployment") {
    for (const key of Object.keys(own)) {
      if (POD_LEVEL.has(key))
        report(
          "LINT_MISPLACED",
          `${key} is read from the pod template: move it to spec.template.metadata.annotations`,
          key,
          ["metadata", "annotations", key],
        );
    }
    if (own[ANNOTATION.strategy] === undefined) {
      if (policyKeys.length > 0)
        report(
          "LINT_NOT_RELEASE",
          `${policyKeys.join(", ")} ignored: without verso.dev/strategy this Deployment is not a release`,
          policyKeys[0],
          ["metadata", "annotations", policyKeys[0]!],
        );
      return;
    }
    result.releases++;
    // Its gates ConfigMap, when this file holds it, is read as the controller would.
    const named = own[ANNOTATION.gatesConfigMap]?.trim();
    const merged =
      named !== undefined && w.configMaps.has(named)
        ? withGatesConfigMap(own, (n) => w.configMaps.get(n))
        : { annotations: own, errors: [] };
    const parsed = parsePolicy(merged.annotations);
    for (const e of [...merged.errors, ...(parsed.ok ? [] : parsed.error)])
      report(e.code, e.message, e.annotation, ["metadata", "annotations", e.annotation]);
    return;
  }
  for (const key of policyKeys)
    report(
      "LINT_MISPLACED",
      `${key} is release policy: only a Deployment's own annotations are read${kind ? ` (this is a ${kind})` : ""}`,
      key,
      ["metadata", "annotations", key],
    );
}

/** Every problem in one file's text (YAML or JSON, several documents allowed). */
export function lintText(file: string, text: string): LintResult {
  const result: LintResult = { objects: 0, releases: 0, problems: [] };
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  const configMaps = configMapsOf(
    docs
      .filter((d) => d.errors.length === 0)
      .map((d): unknown => d.toJS())
      .filter(isRecord),
  );
  docs.forEach((doc, i) => {
    const document = i + 1;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const p: LintProblem = {
          file,
          document,
          code: "LINT_YAML",
          message: `YAML: ${e.message.split("\n")[0]}`,
        };
        const line = e.linePos?.[0]?.line;
        if (line !== undefined) p.line = line;
        result.problems.push(p);
      }
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    if (!isRecord(value)) return;
    lintObject(value, { file, document, doc, lines, path: [], configMaps }, result);
  });
  return result;
}

/** `file:line: Deployment/x: CODE message` lines. */
export function formatProblems(problems: readonly LintProblem[]): string {
  return problems
    .map((p) => {
      const where = `${p.file}:${p.line ?? `doc ${p.document}`}`;
      return `${where}: ${p.object ? `${p.object}: ` : ""}${p.code} ${p.message}`;
    })
    .join("\n");
}
