/**
 * `make demo` on the real node leaves nothing behind however it ends: stopped with Ctrl-C
 * (SIGINT), with SIGTERM, or killed outright (SIGKILL, which no handler sees: the sandbox's
 * watchdog does the teardown). Checked after each: no process of the run, no cgroup, no veth,
 * no route through it, no mount, no working directory.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NODE, REPO_ROOT } from "../harness/paths.ts";
import { waitFor } from "../harness/ports.ts";
import { NO_NODE } from "./nodeFixtures.ts";

const DEMO = join(REPO_ROOT, "test", "harness", "demo.ts");

interface Run {
  cgroup: string;
  slot: number;
  dir: string;
}

/** Starts the bare real-node demo and waits for its `export KUBECONFIG=` line. */
async function startDemo(): Promise<{ pid: number; run: Run; exited: Promise<number | null> }> {
  const child = spawn(NODE, [DEMO, "--no-install"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  const run = await waitFor(
    "the demo's export KUBECONFIG line",
    async () => {
      if (child.exitCode !== null) throw new Error(`demo exited early:\n${out}`);
      const sandbox = /sandbox (verso-node-\S+): node 10\.250\.(\d+)\.2/.exec(out);
      const kubeconfig = /export KUBECONFIG=(\S+)\/cp\/kubeconfig/.exec(out);
      return sandbox && kubeconfig
        ? { cgroup: sandbox[1] as string, slot: Number(sandbox[2]), dir: kubeconfig[1] as string }
        : undefined;
    },
    240_000,
    200,
  );
  return { pid: child.pid ?? -1, run, exited };
}

/** What of the run is still there (empty when nothing is). */
function leftovers(run: Run): string[] {
  const found: string[] = [];
  for (const hierarchy of readdirSync("/sys/fs/cgroup")) {
    if (existsSync(join("/sys/fs/cgroup", hierarchy, run.cgroup)))
      found.push(`cgroup ${hierarchy}/${run.cgroup}`);
  }
  if (existsSync(`/sys/class/net/verso-h${run.slot}`)) found.push(`link verso-h${run.slot}`);
  const routes = spawnSync("ip", ["route", "show"], { encoding: "utf8" }).stdout;
  for (const line of routes.split("\n"))
    if (line.includes(`10.251.${run.slot}.`)) found.push(`route ${line}`);
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmdline.includes(run.dir)) found.push(`process ${pid}: ${cmdline.slice(0, 120)}`);
    } catch {
      // Gone while we looked.
    }
  }
  if (readFileSync("/proc/self/mounts", "utf8").includes(run.dir))
    found.push(`a mount under ${run.dir}`);
  if (existsSync(run.dir)) found.push(`directory ${run.dir}`);
  return found;
}

describe.skipIf(NO_NODE !== undefined)(
  `make demo on the real node leaves nothing behind${NO_NODE ? ` (skipped: ${NO_NODE})` : ""}`,
  () => {
    for (const signal of ["SIGINT", "SIGTERM", "SIGKILL"] as const) {
      it(`when it ends by ${signal}`, async () => {
        const { pid, run, exited } = await startDemo();
        expect(leftovers(run).length).toBeGreaterThan(0); // the check sees a live run
        process.kill(pid, signal);
        await exited;
        const left = await waitFor(
          `nothing left of ${run.cgroup}`,
          async () => (leftovers(run).length === 0 ? [] : undefined),
          30_000,
          250,
        ).catch(() => leftovers(run));
        expect(left).toEqual([]);
      }, 600_000); // the first start may build the images (tens of seconds on a busy machine)
    }
  },
);
