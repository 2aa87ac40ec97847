/**
 * The proxy built as its image builds it, into a directory of the caller's, for runs that must
 * measure or exercise what ships (benchmarks, the bundle test).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { BUN, REPO_ROOT } from "./paths.ts";

/** The proxy's image bundle (same `bun build` command as Dockerfile.sidecar) at `out`. */
export function bundleProxy(out: string): string {
  const file = join(out, "verso-proxy.js");
  const build = spawnSync(
    BUN,
    ["build", "--target=bun", "--production", "sidecar/main.ts", "--outfile", file],
    { cwd: REPO_ROOT, encoding: "utf8" },
  );
  if (build.status !== 0) throw new Error(`bun build failed: ${build.stdout}${build.stderr}`);
  return file;
}
