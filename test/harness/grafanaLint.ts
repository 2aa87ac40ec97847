/**
 * Locates verso-grafana-lint (scripts/grafana-lint/main.go: a dashboard checked against
 * Grafana's own dashboard schema, from the Go types of grafana-foundation-sdk), building it
 * with scripts/build-grafana-lint.sh when it is not cached, and runs it. Like helm.ts: the
 * first build takes about a minute on 2 cores, later calls are instant. The script is always
 * asked (it answers from its cache in milliseconds) because it alone knows whether an edit to
 * main.go or go.mod calls for a rebuild.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { executable, runBuildScript } from "./buildScript.ts";
import { REPO_ROOT } from "./paths.ts";

const BUILD_GRAFANA_LINT = join(REPO_ROOT, "scripts", "build-grafana-lint.sh");

export interface GrafanaLintResult {
  code: number;
  /** One line per problem ("FILE: path: message"), or "FILE: ok: N panels". */
  stdout: string;
  stderr: string;
}

/** Finds or builds the linter; the build's progress goes to `log` (stderr by default). */
export async function ensureGrafanaLint(
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<string> {
  const started = Date.now();
  const path = await runBuildScript(BUILD_GRAFANA_LINT, {}, log, executable);
  const seconds = (Date.now() - started) / 1000;
  if (seconds >= 1) log(`[harness] verso-grafana-lint ready in ${seconds.toFixed(0)}s: ${path}`);
  return path;
}

/** Runs the linter on `files`. Never throws: the caller asserts on the code and output. */
export function runGrafanaLint(binary: string, files: string[]): GrafanaLintResult {
  const r = spawnSync(binary, files, { cwd: REPO_ROOT, encoding: "utf8" });
  return {
    code: r.status ?? 1,
    stdout: r.stdout ?? "",
    stderr: `${r.stderr ?? ""}${r.error ? r.error.message : ""}`,
  };
}
