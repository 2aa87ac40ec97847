/**
 * Nothing is left behind, however a run ends: stopped with Ctrl-C (SIGINT), with SIGTERM, or
 * killed outright (SIGKILL, which no handler of ours sees: the watchdogs do it — the real
 * node's sandbox.sh, and processes.ts's for everything the harness starts).
 * - `make demo` on the real node: no process of the run, no cgroup, no veth, no route through
 *   it, no mount, no working directory;
 * - `make demo` on the stand-in: no process of the run (etcd, kube-apiserver, the webhook...);
 * - `make test` (a vitest run) killed while its control plane runs: no process of it either.
 * `.ci/run` is a shell running `make test`: its children are the vitest run above.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NODE, REPO_ROOT } from "../harness/paths.ts";
import { waitFor } from "../harness/ports.ts";
import { NO_NODE } from "./nodeFixtures.ts";

const DEMO = join(REPO_ROOT, "test", "harness", "demo.ts");
const VITEST = join(REPO_ROOT, "node_modules", "vitest", "vitest.mjs");
const SIGNALS = ["SIGINT", "SIGTERM", "SIGKILL"] as const;

/** What a run made that must go with it; found in its output. */
interface Run {
  dir: string;
  /** The real node only. */
  node?: { cgroup: string; slot: number };
}

interface Started {
  child: ChildProcess;
  run: Run;
  exited: Promise<void>;
}

/** Spawns `args` and waits until `find` recognises the run in its output. */
async function start(args: string[], find: (out: string) => Run | undefined): Promise<Started> {
  const child = spawn(NODE, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const run = await waitFor(
    `${args.join(" ")} running`,
    async () => {
      if (child.exitCode !== null) throw new Error(`exited early:\n${out}`);
      return find(out);
    },
    240_000,
    200,
  );
  return { child, run, exited };
}

const realNodeDemo = (out: string): Run | undefined => {
  const sandbox = /sandbox (verso-node-\S+): node 10\.250\.(\d+)\.2/.exec(out);
  const kubeconfig = /export KUBECONFIG=(\S+)\/cp\/kubeconfig/.exec(out);
  if (!sandbox || !kubeconfig) return undefined;
  return {
    dir: kubeconfig[1] as string,
    node: { cgroup: sandbox[1] as string, slot: Number(sandbox[2]) },
  };
};

/** The stand-in's control plane dir, once it is ready (the demo or a test's). */
const standInReady = (out: string): Run | undefined => {
  const ready = /control plane ready in \d+ms \(logs: (\S+)\/logs\)/.exec(out);
  return ready ? { dir: ready[1] as string } : undefined;
};

function processesOf(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmdline.includes(dir)) found.push(`process ${pid}: ${cmdline.slice(0, 120)}`);
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

/** What of the run is still there (empty when nothing is). */
function leftovers(run: Run): string[] {
  const found = processesOf(run.dir);
  if (run.node === undefined) return found;
  const { cgroup, slot } = run.node;
  for (const hierarchy of readdirSync("/sys/fs/cgroup")) {
    if (existsSync(join("/sys/fs/cgroup", hierarchy, cgroup)))
      found.push(`cgroup ${hierarchy}/${cgroup}`);
  }
  if (existsSync(`/sys/class/net/verso-h${slot}`)) found.push(`link verso-h${slot}`);
  const routes = spawnSync("ip", ["route", "show"], { encoding: "utf8" }).stdout;
  for (const line of routes.split("\n"))
    if (line.includes(`10.251.${slot}.`)) found.push(`route ${line}`);
  if (readFileSync("/proc/self/mounts", "utf8").includes(run.dir))
    found.push(`a mount under ${run.dir}`);
  if (existsSync(run.dir)) found.push(`directory ${run.dir}`);
  return found;
}

/** Signals the run, then waits (bounded) until nothing of it is left; returns what is. */
async function endAndCheck(started: Started, signal: NodeJS.Signals): Promise<string[]> {
  expect(leftovers(started.run).length).toBeGreaterThan(0); // the check sees a live run
  started.child.kill(signal);
  await started.exited;
  return waitFor(
    `nothing left of ${started.run.dir}`,
    async () => (leftovers(started.run).length === 0 ? [] : undefined),
    30_000,
    250,
  ).catch(() => leftovers(started.run));
}

describe.skipIf(NO_NODE !== undefined)(
  `make demo on the real node leaves nothing behind${NO_NODE ? ` (skipped: ${NO_NODE})` : ""}`,
  () => {
    for (const signal of SIGNALS) {
      it(`when it ends by ${signal}`, async () => {
        const demo = await start([DEMO, "--no-install"], realNodeDemo);
        expect(await endAndCheck(demo, signal)).toEqual([]);
      }, 600_000); // the first start may build the images (tens of seconds on a busy machine)
    }
  },
);

describe("make demo on the stand-in and a killed test run leave no process behind", () => {
  for (const signal of SIGNALS) {
    it(`make demo --stand-in, ended by ${signal}`, async () => {
      const demo = await start([DEMO, "--stand-in", "--no-examples"], standInReady);
      expect(await endAndCheck(demo, signal)).toEqual([]);
    });
  }

  it("make test: a vitest run SIGKILLed while its control plane runs", async () => {
    const run = await start(
      [VITEST, "run", "--project", "cluster", "test/cluster/deploy.test.ts"],
      standInReady,
    );
    expect(await endAndCheck(run, "SIGKILL")).toEqual([]);
  });
});
