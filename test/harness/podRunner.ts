/**
 * One pod realised as local processes: volumes as directories, native sidecars first,
 * plain init containers skipped as succeeded (the iptables init step cannot run without a
 * network namespace: the harness uses capture mode `port`), then the containers. Readiness
 * probes run against the pod IP; exits are reported and restarted per restartPolicy;
 * status goes back through pods/status after every change.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { lookupKey, resolveEnv, type EnvContext } from "./containerEnv.ts";
import { programFor, type Program } from "./images.ts";
import { KubeError, type KubeClient } from "./kubeClient.ts";
import { buildStatus, type ContainerView } from "./podStatus.ts";
import type { Container, ContainerState, Pod, PodCondition } from "./podTypes.ts";
import { isNativeSidecar } from "./podTypes.ts";
import { defaultReady, runProbe } from "./probes.ts";
import { sleep } from "./ports.ts";
import { startProcess, type ManagedProcess } from "./processes.ts";
import { materialiseVolumes, type Volumes } from "./volumes.ts";

export interface RunnerDeps {
  client: KubeClient;
  nodeName: string;
  hostIP: string;
  podIP: string;
  /** Pod working dir (volumes/, logs/). */
  dir: string;
  /** Extra env per container after resolution (e.g. where the controller really is). */
  envOverrides?: (container: Container, kind: "demo" | "proxy") => Record<string, string>;
  log: (line: string) => void;
}

interface Run {
  spec: Container;
  init: boolean;
  sidecar: boolean;
  proc?: ManagedProcess;
  ready: boolean;
  started: boolean;
  restartCount: number;
  state: ContainerState;
  lastState: ContainerState | Record<string, never>;
  nextProbeAt: number;
  failures: number;
}

const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, "Z");
const BASE_ENV_KEYS = ["PATH", "HOME", "TMPDIR", "LANG", "TZ"];

export class PodRunner {
  pod: Pod;
  readonly deps: RunnerDeps;
  readonly #runs: Run[];
  readonly #startTime = now();
  #volumes: Volumes | undefined;
  #conditions: PodCondition[] | undefined;
  #lastSent = "";
  #syncing: Promise<void> = Promise.resolve();
  #dirty = false;
  #stopping = false;
  #probeTimer: NodeJS.Timeout | undefined;
  #terminating: Promise<void> | undefined;

  constructor(pod: Pod, deps: RunnerDeps) {
    this.pod = pod;
    this.deps = deps;
    const make = (spec: Container, init: boolean): Run => ({
      spec,
      init,
      sidecar: init && isNativeSidecar(spec),
      ready: false,
      started: false,
      restartCount: 0,
      state: { waiting: { reason: "ContainerCreating" } },
      lastState: {},
      nextProbeAt: 0,
      failures: 0,
    });
    this.#runs = [
      ...(pod.spec.initContainers ?? []).map((c) => make(c, true)),
      ...pod.spec.containers.map((c) => make(c, false)),
    ];
  }

  get name(): string {
    return `${this.pod.metadata.namespace}/${this.pod.metadata.name}`;
  }

  async start(): Promise<void> {
    mkdirSync(join(this.deps.dir, "logs"), { recursive: true });
    try {
      this.#volumes = await materialiseVolumes(
        this.deps.client,
        this.pod,
        join(this.deps.dir, "volumes"),
        this.#context(new Map()),
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.deps.log(`[kubelet] ${this.name}: volumes failed: ${message}`);
      for (const run of this.#runs)
        run.state = { waiting: { reason: "CreateContainerConfigError", message } };
      this.#sync();
      return;
    }
    for (const run of this.#runs.filter((r) => r.init)) {
      if (this.#stopping) return;
      if (!run.sidecar) {
        // Plain init containers (verso-init's iptables step) cannot run here: reported as done.
        run.state = {
          terminated: { exitCode: 0, reason: "Completed", startedAt: now(), finishedAt: now() },
        };
        continue;
      }
      await this.#startContainer(run);
      await this.#waitStarted(run, 30_000);
    }
    for (const run of this.#runs.filter((r) => !r.init)) await this.#startContainer(run);
    this.#probeTimer = setInterval(() => void this.#probeAll(), 500);
    this.#sync();
  }

  /** A newer version of the pod from the watch. */
  update(pod: Pod): void {
    this.pod = pod;
  }

  /** Graceful stop (containers, then sidecars in reverse), then removes the pod object. */
  terminate(): Promise<void> {
    this.#terminating ??= this.#terminate();
    return this.#terminating;
  }

  async #terminate(): Promise<void> {
    const graceS = Math.min(this.pod.metadata.deletionGracePeriodSeconds ?? 30, 10);
    await this.kill(graceS * 1000);
    const { namespace, name, uid } = this.pod.metadata;
    try {
      await this.deps.client.delete(`/api/v1/namespaces/${namespace}/pods/${name}`, {
        apiVersion: "v1",
        kind: "DeleteOptions",
        gracePeriodSeconds: 0,
        preconditions: { uid },
      });
    } catch (error) {
      if (!(error instanceof KubeError && (error.status === 404 || error.status === 409))) {
        this.deps.log(`[kubelet] ${this.name}: delete failed: ${String(error)}`);
      }
    }
  }

  /** Stops every process; the pod object is left alone. */
  async kill(graceMs = 2_000): Promise<void> {
    this.#stopping = true;
    if (this.#probeTimer) clearInterval(this.#probeTimer);
    this.#volumes?.stop();
    const regular = this.#runs.filter((r) => !r.init && r.proc);
    await Promise.all(regular.map((r) => r.proc?.stop(graceMs)));
    for (const r of this.#runs.filter((x) => x.sidecar && x.proc).reverse()) {
      await r.proc?.stop(graceMs);
    }
  }

  #context(mounts: ReadonlyMap<string, string>, lookups?: ReadonlyMap<string, string>): EnvContext {
    return {
      pod: this.pod,
      podIP: this.deps.podIP,
      hostIP: this.deps.hostIP,
      nodeName: this.deps.nodeName,
      mounts,
      lookups,
    };
  }

  #mountsOf(container: Container): Map<string, string> {
    const mounts = new Map<string, string>();
    for (const m of container.volumeMounts ?? []) {
      const dir = this.#volumes?.dirs.get(m.name);
      if (dir) mounts.set(m.mountPath, m.subPath ? join(dir, m.subPath) : dir);
    }
    return mounts;
  }

  async #lookups(container: Container): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    const ns = this.pod.metadata.namespace ?? "default";
    for (const v of container.env ?? []) {
      const cm = v.valueFrom?.configMapKeyRef;
      const secret = v.valueFrom?.secretKeyRef;
      const ref = cm ?? secret;
      if (!ref) continue;
      const kind = cm ? "configmap" : "secret";
      const obj = await this.deps.client.getOptional<{ data?: Record<string, string> }>(
        `/api/v1/namespaces/${ns}/${cm ? "configmaps" : "secrets"}/${ref.name}`,
      );
      const raw = obj?.data?.[ref.key];
      if (raw !== undefined) {
        found.set(
          lookupKey(kind, ref.name, ref.key),
          cm ? raw : Buffer.from(raw, "base64").toString(),
        );
      }
    }
    return found;
  }

  async #startContainer(run: Run): Promise<void> {
    if (this.#stopping) return;
    const program: Program = programFor(run.spec, this.deps.podIP);
    if (!program.ok) {
      run.state = { waiting: { reason: "HarnessImageUnsupported", message: program.reason } };
      this.#sync();
      return;
    }
    const ctx = this.#context(this.#mountsOf(run.spec), await this.#lookups(run.spec));
    const resolved = resolveEnv(run.spec, ctx);
    if (!resolved.ok) {
      run.state = { waiting: { reason: "CreateContainerConfigError", message: resolved.reason } };
      this.#sync();
      return;
    }
    const base: Record<string, string> = {};
    for (const key of BASE_ENV_KEYS) {
      const value = process.env[key];
      if (value !== undefined) base[key] = value;
    }
    const forced: Record<string, string> =
      program.kind === "demo" ? { HOST: program.env.HOST ?? "", PORT: program.env.PORT ?? "" } : {};
    const env = {
      ...base,
      HOSTNAME: this.pod.metadata.name,
      ...program.env,
      ...resolved.env,
      ...(this.deps.envOverrides?.(run.spec, program.kind) ?? {}),
      ...forced,
    };
    const proc = startProcess({
      name: `${this.name}/${run.spec.name}`,
      command: program.command,
      args: program.args,
      env,
      cwd: this.deps.dir,
      logFile: join(this.deps.dir, "logs", `${run.spec.name}.log`),
    });
    const startedAt = now();
    run.proc = proc;
    run.started = true;
    run.ready = false;
    run.failures = 0;
    run.nextProbeAt = Date.now() + (run.spec.readinessProbe?.initialDelaySeconds ?? 0) * 1000;
    run.state = { running: { startedAt } };
    this.#sync();
    void proc.exited.then((exit) => this.#onExit(run, proc, startedAt, exit.code, exit.signal));
  }

  #onExit(
    run: Run,
    proc: ManagedProcess,
    startedAt: string,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    if (run.proc !== proc) return;
    const exitCode = code ?? (signal ? 128 + 15 : 1);
    run.ready = false;
    run.started = false;
    run.state = {
      terminated: {
        exitCode,
        reason: exitCode === 0 ? "Completed" : "Error",
        startedAt,
        finishedAt: now(),
        containerID: `harness://${proc.pid}`,
      },
    };
    if (this.#stopping) return;
    this.deps.log(
      `[kubelet] ${this.name}/${run.spec.name} exited ${exitCode}; log: ${proc.logFile}`,
    );
    const policy = this.pod.spec.restartPolicy ?? "Always";
    const restart =
      run.sidecar || policy === "Always" || (policy === "OnFailure" && exitCode !== 0);
    this.#sync();
    if (!restart) return;
    const backoffMs = Math.min(10_000, 1_000 * 2 ** run.restartCount);
    void sleep(backoffMs).then(async () => {
      if (this.#stopping) return;
      run.lastState = run.state;
      run.restartCount += 1;
      await this.#startContainer(run);
    });
  }

  /**
   * A native sidecar holds back the next containers until it has started: its startupProbe
   * passes (else its readiness probe, else its first port accepts).
   */
  async #waitStarted(run: Run, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const probe = run.spec.startupProbe;
    while (Date.now() < deadline && !this.#stopping && run.proc?.running()) {
      if (await this.#probeOnce(run, probe)) return;
      await sleep(200);
    }
    this.deps.log(`[kubelet] ${this.name}/${run.spec.name} not started after ${timeoutMs}ms`);
  }

  #probeOnce(run: Run, probe = run.spec.readinessProbe): Promise<boolean> {
    return probe
      ? runProbe(probe, this.deps.podIP, run.spec)
      : defaultReady(run.spec, this.deps.podIP);
  }

  async #probeAll(): Promise<void> {
    const t = Date.now();
    await Promise.all(
      this.#runs.map(async (run) => {
        if (!run.proc?.running() || t < run.nextProbeAt || this.#stopping) return;
        const probe = run.spec.readinessProbe;
        // Probe fast until first ready, then at the probe's period (capped at 5s).
        const period = run.ready ? Math.min(probe?.periodSeconds ?? 10, 5) * 1000 : 500;
        run.nextProbeAt = t + period;
        const ok = await this.#probeOnce(run);
        const threshold = probe?.failureThreshold ?? 3;
        run.failures = ok ? 0 : run.failures + 1;
        const ready = ok ? true : run.ready && run.failures < threshold;
        if (ready !== run.ready) {
          run.ready = ready;
          this.#sync();
        }
      }),
    );
  }

  /** Coalesced status write: at most one in flight, the latest view wins. */
  #sync(): void {
    this.#dirty = true;
    this.#syncing = this.#syncing.then(async () => {
      if (!this.#dirty || this.#stopping) return;
      this.#dirty = false;
      const views: ContainerView[] = this.#runs.map((r) => ({
        name: r.spec.name,
        image: r.spec.image ?? "",
        init: r.init,
        sidecar: r.sidecar,
        ready: r.ready,
        started: r.started,
        restartCount: r.restartCount,
        ...(r.proc ? { containerID: `harness://${r.proc.pid}` } : {}),
        state: r.state,
        lastState: r.lastState,
      }));
      const status = buildStatus({
        podIP: this.deps.podIP,
        hostIP: this.deps.hostIP,
        startTime: this.#startTime,
        restartPolicy: this.pod.spec.restartPolicy ?? "Always",
        containers: views,
        previous: this.#conditions,
        now: now(),
      });
      const body = JSON.stringify({ status });
      if (body === this.#lastSent) return;
      const { namespace, name } = this.pod.metadata;
      try {
        await this.deps.client.patch(`/api/v1/namespaces/${namespace}/pods/${name}/status`, {
          status,
        });
        this.#lastSent = body;
        this.#conditions = status.conditions;
      } catch (error) {
        if (!(error instanceof KubeError && error.status === 404)) {
          this.deps.log(`[kubelet] ${this.name}: status update failed: ${String(error)}`);
          this.#dirty = true;
          setTimeout(() => this.#sync(), 1_000).unref();
        }
      }
    });
  }
}
