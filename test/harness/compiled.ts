/**
 * The product compiled as the images build it (`npm run build`, tsconfig.build.json) into a
 * directory of the caller's, for runs that must not use type stripping: benchmarks (numbers of
 * what ships) and a Node without WebAssembly (`--jitless`), which cannot strip types.
 */
import { spawnSync } from "node:child_process";
import { symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./paths.ts";

/** Compiles into `out`; returns the path of the proxy's entry point there. */
export function compileProduct(out: string): { sidecarMain: string } {
  const tsc = spawnSync(
    join(REPO_ROOT, "node_modules", ".bin", "tsc"),
    ["-p", join(REPO_ROOT, "tsconfig.build.json"), "--outDir", out, "--sourceMap", "false"],
    { encoding: "utf8" },
  );
  if (tsc.status !== 0) throw new Error(`tsc failed: ${tsc.stdout}${tsc.stderr}`);
  writeFileSync(join(out, "package.json"), JSON.stringify({ type: "module" }));
  symlinkSync(join(REPO_ROOT, "node_modules"), join(out, "node_modules"));
  return { sidecarMain: join(out, "sidecar", "main.js") };
}
