/**
 * The real node's sandbox: a network and mount namespace (sandbox.sh holds them open), a
 * cgroup tree every process of the node is put in, and a veth to the host with routes to
 * the pod and service ranges. `spawn()` starts a process inside; `stop()`, or the harness
 * dying in any way, tears all of it down (sandbox.sh: the watchdog is its stdin).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { waitFor } from "../ports.ts";
import { startProcess, type ManagedProcess, type ProcessSpec } from "../processes.ts";
import { run as must } from "./images/host.ts";
import { MAX_SLOT, nodeNetwork, type NodeNetwork } from "./network.ts";

const SANDBOX_SH = join(dirname(fileURLToPath(import.meta.url)), "sandbox.sh");
const CGROUP_FS = "/sys/fs/cgroup";

export interface Sandbox {
  readonly pid: number;
  /** The cgroup tree, e.g. `verso-node-3`: the kubelet's cgroupRoot. */
  readonly cgroup: string;
  readonly dir: string;
  readonly net: NodeNetwork;
  /** Starts a process in the sandbox's namespaces and cgroup tree. */
  spawn(spec: ProcessSpec): ManagedProcess;
  /** Runs a command in the sandbox to completion. */
  run(command: string, args: string[]): { code: number; stdout: string; stderr: string };
  /** Kills everything in the sandbox; the namespaces, veth and routes go with it. */
  stop(): Promise<void>;
}

/** Why the real node cannot run here, or undefined when it can. */
export function sandboxUnavailable(): string | undefined {
  if (process.platform !== "linux") return "the real node needs Linux";
  if (process.getuid?.() !== 0) return "the real node needs root (namespaces, cgroups, iptables)";
  if (!existsSync(join(CGROUP_FS, "freezer"))) return "no cgroup v1 freezer hierarchy";
  for (const tool of ["unshare", "nsenter", "ip", "iptables", "containerd", "runc"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `${tool} not installed`;
  }
  if (!existsSync("/usr/lib/cni/bridge")) return "CNI plugins not installed (/usr/lib/cni)";
  return undefined;
}

function run(command: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const res = spawnSync(command, args, { encoding: "utf8" });
  return { code: res.status ?? 1, stdout: res.stdout ?? "", stderr: res.stderr ?? "" };
}

/** The cgroup v1 hierarchies (the v2 one, `unified`, is not the kubelet's here). */
function hierarchies(): string[] {
  return readdirSync(CGROUP_FS)
    .filter((name) => name !== "unified")
    .map((name) => join(CGROUP_FS, name))
    .filter((path) => existsSync(join(path, "cgroup.procs")));
}

/**
 * Creates /<name> in every v1 hierarchy. cpuset starts empty in v1 (a task can't join it):
 * it gets its parent's cpus and mems, as the kubelet does for the cgroups it makes.
 */
function createCgroups(name: string): void {
  for (const root of hierarchies()) {
    const path = join(root, name);
    mkdirSync(path, { recursive: true });
    if (root.endsWith("cpuset")) {
      for (const file of ["cpuset.cpus", "cpuset.mems"]) {
        writeFileSync(join(path, file), readFileSync(join(root, file), "utf8").trim());
      }
    }
  }
}

/** Claims the first free slot: the host link's name is the lock (`ip link add` is atomic). */
function claimSlot(pid: number): NodeNetwork {
  for (let slot = 1; slot <= MAX_SLOT; slot++) {
    const net = nodeNetwork(slot);
    if (existsSync(`/sys/class/net/${net.hostLink}`)) continue;
    const res = run("ip", [
      ...["link", "add", net.hostLink, "type", "veth"],
      ...["peer", "name", "eth0", "netns", String(pid)],
    ]);
    if (res.code === 0) return net;
  }
  throw new Error(`no free node slot: verso-h1..verso-h${MAX_SLOT} all exist`);
}

function wire(pid: number, net: NodeNetwork): void {
  const inside = (args: string[]): string => must("nsenter", ["-t", String(pid), "-n", ...args]);
  inside(["ip", "addr", "add", `${net.nodeIp}/${net.linkPrefix}`, "dev", "eth0"]);
  inside(["ip", "link", "set", "eth0", "up"]);
  inside(["ip", "route", "add", "default", "via", net.hostIp]);
  must("ip", ["addr", "add", `${net.hostIp}/${net.linkPrefix}`, "dev", net.hostLink]);
  must("ip", ["link", "set", net.hostLink, "up"]);
  for (const cidr of [net.podCidr, net.serviceCidr]) {
    must("ip", ["route", "add", cidr, "via", net.nodeIp, "dev", net.hostLink]);
  }
}

export async function startSandbox(dir: string, log: (line: string) => void): Promise<Sandbox> {
  mkdirSync(dir, { recursive: true });
  // The slot is not known before the veth exists; the cgroup only needs to be unique.
  const cgroup = `verso-node-${process.pid}-${Date.now().toString(36)}`;
  createCgroups(cgroup);
  const logFile = join(dir, "sandbox.log");
  // Its log goes to a file, not through us: the teardown after our death must not write to
  // a pipe nobody reads (SIGPIPE would end it halfway).
  const logFd = openSync(logFile, "a");
  const holder: ChildProcess = spawn(
    "unshare",
    ["--net", "--mount", "--propagation", "private", "--fork", "bash", SANDBOX_SH, cgroup, dir],
    { stdio: ["pipe", "pipe", logFd], detached: true },
  );
  closeSync(logFd);
  const exited = new Promise<void>((resolve) => holder.once("exit", () => resolve()));
  let stdout = "";
  holder.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  const pid = await waitFor(
    "node sandbox",
    async () => {
      if (holder.exitCode !== null) throw new Error(`sandbox exited: ${readLog(logFile)}`);
      const match = /ready (\d+)/.exec(stdout);
      return match ? Number(match[1]) : undefined;
    },
    10_000,
    20,
  );
  const stop = async (): Promise<void> => {
    holder.stdin?.end("stop\n");
    await exited;
  };
  try {
    const net = claimSlot(pid);
    wire(pid, net);
    log(
      `[node] sandbox ${cgroup}: node ${net.nodeIp}, pods ${net.podCidr}, services ${net.serviceCidr}`,
    );
    // The wrapper joins the cgroup tree before it enters the namespaces, so whatever it
    // becomes (exec) is found and killed by the teardown.
    const procs = join(CGROUP_FS, "freezer", cgroup, "cgroup.procs");
    const enter = (command: string, args: string[]): [string, string[]] => [
      "bash",
      [
        "-c",
        `echo $$ > ${procs} && exec nsenter -t ${pid} -n -m -- "$@"`,
        "sandbox-exec",
        command,
        ...args,
      ],
    ];
    return {
      pid,
      cgroup,
      dir,
      net,
      spawn: (spec) => {
        const [command, args] = enter(spec.command, spec.args);
        return startProcess({ ...spec, command, args });
      },
      run: (command, args) => run(...enter(command, args)),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function readLog(path: string): string {
  return existsSync(path) ? readFileSync(path, "utf8") : "(no log)";
}
