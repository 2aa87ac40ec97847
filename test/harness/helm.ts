/**
 * Locates helm, building it with scripts/build-helm.sh (from its Go module, cached by version
 * under $VERSO_CACHE) when it is not at hand, and runs it. Like binaries.ts for the
 * Kubernetes binaries: the first build takes minutes on 2 cores, later calls are instant.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { executable, runBuildScript } from "./buildScript.ts";
import { cacheRoot, REPO_ROOT } from "./paths.ts";

export const HELM_VERSION = process.env.VERSO_HELM_VERSION ?? "v4.3.1";
const BUILD_HELM = join(REPO_ROOT, "scripts", "build-helm.sh");

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The cached binary for HELM_VERSION, or undefined when a build is needed. */
export function findHelm(): string | undefined {
  const cached = join(cacheRoot(), "helm", HELM_VERSION, "bin", "helm");
  return executable(cached) ? cached : undefined;
}

/** Finds or builds helm; the build's progress goes to `log` (stderr by default). */
export async function ensureHelm(
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<string> {
  const found = findHelm();
  if (found) return found;
  log(`[harness] helm ${HELM_VERSION} not cached; running ${BUILD_HELM} (first build is slow)`);
  const started = Date.now();
  const path = await runBuildScript(
    BUILD_HELM,
    { VERSO_HELM_VERSION: HELM_VERSION },
    log,
    executable,
  );
  log(`[harness] helm ready in ${((Date.now() - started) / 1000).toFixed(0)}s: ${path}`);
  return path;
}

/**
 * Runs helm in the repository root with its own config, cache and data directories under
 * `home` (no user's repositories or plugins leak in); `kubeconfig` for commands that reach a
 * cluster. Never throws: the caller asserts on the code and output.
 */
export function runHelm(
  binary: string,
  args: string[],
  opts: { home: string; kubeconfig?: string },
): Promise<HelmResult> {
  return new Promise((resolve) => {
    const child = spawn(binary, args, {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        HELM_CONFIG_HOME: join(opts.home, "config"),
        HELM_CACHE_HOME: join(opts.home, "cache"),
        HELM_DATA_HOME: join(opts.home, "data"),
        KUBECONFIG: opts.kubeconfig ?? join(opts.home, "no-kubeconfig"),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", (e) => resolve({ code: 127, stdout, stderr: stderr + e.message }));
    child.once("exit", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
