/**
 * Child processes the harness owns: each runs in its own process group (so a shell or a
 * node loader it spawns goes with it), logs to a file, and is reaped on stop, on
 * process exit and on SIGINT/SIGTERM, and by a watchdog when this process is killed outright
 * (SIGKILL: no handler of ours runs). Nothing is left running behind a test or a demo.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { waitFor } from "./ports.ts";

export interface ProcessSpec {
  /** Short name for logs, e.g. `etcd`. */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdout and stderr are appended here. */
  logFile: string;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves once the process has exited. */
  readonly exited: Promise<Exit>;
  /** True until the process exits. */
  running(): boolean;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves when it is gone. */
  stop(graceMs?: number): Promise<Exit>;
}

const live = new Set<ManagedProcess>();

/**
 * The watchdog: one small shell per harness process, reading `+pid` / `-pid` lines (a group
 * started, a group gone) on a pipe from us. When the pipe closes, which the kernel does however
 * we end, it kills every group still listed. Detached, so a Ctrl-C to our group does not end it
 * before it has done its job; it exits on its own right after.
 */
const WATCHDOG = `
groups=" "
while read -r line; do
  case "$line" in
    +*) groups="$groups\${line#+} " ;;
    -*) groups="$(echo "$groups" | sed "s/ \${line#-} / /")" ;;
  esac
done
for pid in $groups; do kill -s KILL -- "-$pid" 2>/dev/null; done
`;
let watchdog: ChildProcess | undefined;

function watch(line: string): void {
  if (watchdog === undefined) {
    watchdog = spawn("sh", ["-c", WATCHDOG], {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
    });
    // Never keeps us alive, and a write after it is gone is not our error.
    watchdog.unref();
    watchdog.stdin?.on("error", () => undefined);
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  }
  watchdog.stdin?.write(`${line}\n`);
}

export function startProcess(spec: ProcessSpec): ManagedProcess {
  mkdirSync(dirname(spec.logFile), { recursive: true });
  const log = createWriteStream(spec.logFile, { flags: "a" });
  const child: ChildProcess = spawn(spec.command, spec.args, {
    cwd: spec.cwd,
    env: spec.env ?? process.env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  let isRunning = true;
  const exited = new Promise<Exit>((resolve) => {
    child.once("error", (error) => {
      log.write(`[harness] spawn failed: ${error.message}\n`);
      isRunning = false;
      resolve({ code: 127, signal: null });
    });
    child.once("exit", (code, signal) => {
      isRunning = false;
      live.delete(proc);
      watch(`-${proc.pid}`);
      log.write(`[harness] exited code=${code} signal=${signal}\n`);
      resolve({ code, signal });
    });
  });
  // "exit" can come before the last output is read: the log ends once stdio has closed too
  // (or spawning failed), so late output is never written to an ended stream.
  child.once("close", () => log.end());
  child.once("error", () => log.end());
  const proc: ManagedProcess = {
    name: spec.name,
    pid: child.pid ?? -1,
    logFile: spec.logFile,
    exited,
    running: () => isRunning,
    stop: async (graceMs = 5_000) => {
      if (!isRunning) return exited;
      signalGroup(proc.pid, "SIGTERM");
      const timer = setTimeout(() => signalGroup(proc.pid, "SIGKILL"), graceMs);
      const exit = await exited;
      clearTimeout(timer);
      // Children of the group leader may outlive it; the group goes with it.
      signalGroup(proc.pid, "SIGKILL");
      return exit;
    },
  };
  if (child.pid !== undefined) {
    live.add(proc);
    watch(`+${child.pid}`);
  }
  return proc;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * The first match of `pattern` in the process's log, polled until `timeoutMs`. The log is
 * written a little behind the process, so this also serves for a line printed just before it
 * exited; if the process has exited without it, the timeout error carries the log.
 */
export function waitForLog(
  proc: ManagedProcess,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpExecArray> {
  return waitFor(
    `${String(pattern)} in ${proc.logFile}`,
    async () => {
      const log = readFileSync(proc.logFile, "utf8");
      const match = pattern.exec(log);
      if (match === null && !proc.running()) throw new Error(`${proc.name} exited:\n${log}`);
      return match ?? undefined;
    },
    timeoutMs,
    20,
  );
}

/** Stops every live process, in reverse start order. */
export async function stopAll(graceMs = 5_000): Promise<void> {
  const procs = [...live].reverse();
  for (const proc of procs) await proc.stop(graceMs);
}

let handlersInstalled = false;
let signalsInstalled = false;

/**
 * Last-resort cleanup: on exit (synchronous, so SIGKILL only) and, when `signals` is set
 * (CLIs, not test workers), on SIGINT/SIGTERM/SIGHUP (graceful, then exit). Callers should
 * still stop what they start.
 */
export function installExitHandlers(options: { signals: boolean }): void {
  if (!handlersInstalled) {
    handlersInstalled = true;
    process.on("exit", () => {
      for (const proc of live) signalGroup(proc.pid, "SIGKILL");
    });
    // A test worker (forked by the runner, with an IPC channel) outlives a runner killed
    // outright, waiting forever for answers: the channel closing is its cue to go. Its groups
    // first; then itself by signal, since the runner replaces process.exit in its workers.
    if (process.connected) {
      process.once("disconnect", () => {
        for (const proc of live) signalGroup(proc.pid, "SIGKILL");
        process.kill(process.pid, "SIGKILL");
      });
    }
  }
  if (!options.signals || signalsInstalled) return;
  signalsInstalled = true;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      void stopAll(2_000).finally(() => process.exit(130));
    });
  }
}
