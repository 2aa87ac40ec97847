/**
 * The host edges every build step shares: running a tool (its output, or an error carrying
 * its stderr), requiring a file the build takes from this machine (with the fix when it is
 * missing), computing a host stand-in once a run, and replacing a cache file atomically.
 */
import { spawnSync } from "node:child_process";
import { existsSync, renameSync } from "node:fs";

/** Runs `cmd` to completion; its stdout, or an error with the command, status and output. */
export function run(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  const r = spawnSync(cmd, args, { ...opts, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const why = r.status === null ? `signal ${r.signal}` : `exit ${r.status}`;
    throw new Error(`${cmd} ${args.join(" ")} failed (${why}):\n${r.stderr}${r.stdout}`.trim());
  }
  return r.stdout;
}

/** `path`, or an error saying how to get it (`hint`): the build never guesses a substitute. */
export function need(path: string, hint: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${hint}`);
  return path;
}

/** Computed on first use, then kept for the run: ldd and `busybox --list-full` are cheap, not free. */
export const memo = <T>(make: () => T): (() => T) => {
  let value: T | undefined;
  return () => (value ??= make());
};

/**
 * Writes `path` through `write(partial)` and a rename: a concurrent reader (another checkout
 * sharing the cache) sees the old file or the new one, never half of one.
 */
export function replaceAtomically(path: string, write: (partial: string) => void): void {
  const partial = `${path}.partial-${process.pid}`;
  write(partial);
  renameSync(partial, path);
}
