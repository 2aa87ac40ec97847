/**
 * `npm ci --omit=dev` without npm or its registry: the lockfile's production packages, copied
 * from the checkout's node_modules (which `npm ci` installed from the same lockfile).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../../paths.ts";
import { copyInto } from "./rootfs.ts";

interface LockEntry {
  dev?: boolean;
  link?: boolean;
  version?: string;
}

/**
 * The lockfile's packages `npm ci --omit=dev` installs that are present in node_modules
 * (optional packages for other platforms are not), as paths relative to the project. Equals
 * `npm ls --omit=dev --all --parseable` (the process test checks), without running npm.
 */
export function productionPackages(lockText: string, root: string = REPO_ROOT): string[] {
  const lock = JSON.parse(lockText) as {
    lockfileVersion?: number;
    packages?: Record<string, LockEntry>;
  };
  if (!lock.packages || (lock.lockfileVersion ?? 0) < 2)
    throw new Error("package-lock.json: need lockfileVersion >= 2");
  const out: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === "" || entry.dev) continue;
    if (entry.link)
      throw new Error(`package-lock.json: ${path} is a link (workspaces are not supported)`);
    if (existsSync(join(root, path))) out.push(path);
  }
  return out.sort();
}

/** The production closure of `lockText` into `destRoot`, package by package. */
export function copyProductionDeps(lockText: string, destRoot: string): void {
  for (const path of productionPackages(lockText)) {
    const src = join(REPO_ROOT, path);
    // A package's own nested node_modules are entries of their own (dev ones must stay out).
    const nested = join(src, "node_modules");
    copyInto(src, join(destRoot, path), true, (p) => p !== nested);
  }
}
