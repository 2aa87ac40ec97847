/**
 * The release loop (I/O only: every decision is the machine's, decide/machine.ts). On every
 * change of an app, when an event arrives for it (a gate's answer, the proxies' cut-off), and
 * when its next due time falls due, the leader reads the release, measures when an interval
 * is due, hands the machine what it observed, and writes what the machine says: status,
 * Events, notifications, gate calls (started, not awaited), scale-downs. Each reconcile ends
 * by asking `nextDueAt` when the app next needs attention and arms one timer for it (none for
 * an app with nothing in progress); a slow resync of every app covers a missed event. Only
 * while leading: losing the lease clears every timer. Nothing is written for an app whose
 * namespace has opted out, whatever timer or resync wakes it. A failed reconcile is retried
 * after retryMs, doubling per consecutive failure of that app. One run per app at a time; the
 * status written last is remembered until the watch catches up, so a stale cache never
 * replays a transition. Time comes from `clock`, so tests move it by hand.
 */
import { ANNOTATION } from "../../../shared/annotations.ts";
import { VersoError } from "../../../shared/errors.ts";
import type { Logger } from "../../../shared/log.ts";
import type { ReleasePolicy } from "../../../shared/policy.ts";
import { nextState, type MachineOutput, type ReleaseEvent } from "../decide/machine.ts";
import { gatePayload, notificationOf, type ReleaseRef } from "../decide/payloads.ts";
import { readyPodsOf, resolvePolicy, selectRelease, type GatesSource } from "../decide/routes.ts";
import {
  analysisDueAt,
  nextDueAt,
  observeDueAt,
  scaleDownDelayOf,
  scaleDownDueAt,
} from "../decide/schedule.ts";
import { formatStatus, type ReleaseStatus } from "../decide/status.ts";
import type { AppState, DeploymentView } from "../decide/views.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import type { CutoffWatch } from "./cutoffWatch.ts";
import type { GateRunner } from "./gateCalls.ts";
import type { Arrival, Inbox } from "./inbox.ts";
import type { EventRef, KubeApi } from "./kube.ts";
import type { MetricsSource, Target } from "./metrics/source.ts";
import type { Notifier } from "./notify.ts";
import type { ReleaseMetrics } from "./releaseMetrics.ts";

export interface ReleaseLoopDeps {
  kube: KubeApi;
  log: Logger;
  metrics: MetricsSource;
  isLeader: () => boolean;
  /** The namespace is still labelled for injection: the only place the loop may write. */
  optedIn: (namespace: string) => boolean;
  apps: () => { namespace: string; app: string }[];
  state: (namespace: string, app: string) => AppState;
  remembered: (uid: string) => ReleasePolicy | undefined;
  /**
   * The ConfigMaps of a namespace, for `verso.dev/gates-configmap` ("pending" until listed);
   * absent: the annotations alone are the policy.
   */
  configMaps?: (namespace: string) => GatesSource;
  /** `--scale-down-delay`; a release's `verso.dev/scale-down-delay` wins. */
  scaleDownDelayMs: number;
  /** Every app is reconciled this often while leading, whatever its timers say. */
  resyncMs: number;
  /** Delay before an app whose reconcile failed runs again; doubles per consecutive failure. */
  retryMs: number;
  clock: Clock;
  /** Events that arrive between reconciles (gate answers, cut-offs), by Deployment uid. */
  inbox: Inbox;
  gates: GateRunner;
  notifier?: Notifier;
  releaseMetrics?: ReleaseMetrics;
  cutoffs?: CutoffWatch;
}

export interface ReleaseLoop {
  /** Reconcile the app now (something it watches changed). */
  poke(namespace: string, app: string): void;
  /** Leadership gained (reconcile every app, start the resync) or lost (clear every timer). */
  lead(leading: boolean): void;
  stop(): void;
}

/** setTimeout's ceiling (about 24.8 days); a later due time is re-armed by the resync anyway. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The longest wait between retries of an app that keeps failing (an RBAC-forbidden scale-down). */
const MAX_RETRY_MS = 5 * 60_000;

/** What a reconcile asks of the scheduler: a wake-up time (epoch ms), none (undefined), or a retry. */
type Next = number | undefined | "retry";

const refOf = (d: DeploymentView): EventRef => ({
  kind: "Deployment",
  namespace: d.namespace,
  name: d.name,
  uid: d.uid,
});

/** What the metrics source measures: the release's version, scraped from the app's pods' admin ports. */
const targetOf = (d: DeploymentView, state: AppState, policy: ReleasePolicy): Target => ({
  namespace: d.namespace,
  app: d.app ?? "",
  releaseVersion: d.version,
  admins: state.pods.flatMap((p) => (p.admin ? [p.admin] : [])),
  intervalMs: policy.intervalMs,
});

const releaseRefOf = (d: DeploymentView, state: AppState): ReleaseRef => ({
  name: d.name,
  namespace: d.namespace,
  app: d.app ?? "",
  version: d.version,
  stableVersions: [
    ...new Set(state.deployments.filter((o) => o.uid !== d.uid).map((o) => o.version)),
  ].sort(),
});

/** Traffic can reach the release: the proxies' cut-off is worth watching for. */
const takesTraffic = (s: ReleaseStatus, policy: ReleasePolicy | undefined): boolean =>
  (s.phase === "Progressing" || s.phase === "Paused") &&
  (s.weight > 0 || (policy?.match?.length ?? 0) > 0);

const rv = (s: string | undefined): bigint => {
  try {
    return BigInt(s ?? "0");
  } catch {
    return 0n;
  }
};

export function createReleaseLoop(deps: ReleaseLoopDeps): ReleaseLoop {
  const { kube, log, clock } = deps;
  const running = new Map<string, Promise<void>>();
  const again = new Set<string>();
  /** uid -> what we wrote last and the resourceVersion it produced. */
  const written = new Map<string, { text: string; resourceVersion: bigint }>();
  /** Superseded releases already warned about, so they are not repeated. */
  const warned = new Set<string>();
  /** When each fixed-weight canary (by uid) was last measured for its actual share. */
  const observedAt = new Map<string, number>();
  let stopped = false;

  // Checked before each write, not only when a reconcile starts: leadership and the namespace
  // label can both change during its awaits.
  const mayWrite = (namespace: string): boolean => deps.isLeader() && deps.optedIn(namespace);

  const event = async (
    d: DeploymentView,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ) => {
    if (!mayWrite(d.namespace)) return;
    try {
      await kube.event(refOf(d), type, reason, message);
    } catch (error) {
      log.warn("event failed", { deployment: `${d.namespace}/${d.name}`, reason, error });
    }
  };

  /** The status as we know it: the cache's, unless our own newer write has not arrived yet. */
  function currentStatus(d: DeploymentView, cacheRv: bigint): string | undefined {
    const mine = written.get(d.uid);
    const cached = d.annotations[ANNOTATION.status];
    if (mine && cacheRv < mine.resourceVersion) return mine.text;
    if (mine) written.delete(d.uid);
    return cached;
  }

  /**
   * Where the release's gates ConfigMap is read: the informer's cache; but a ConfigMap the cache
   * lacks is asked for once more, since a ConfigMap and the Deployment naming it, applied
   * together, may reach the controller in either order (a missing one is a PolicyInvalid).
   * So is one of a namespace whose ConfigMaps are not listed yet: a list that keeps failing
   * (a ClusterRole without configmaps) must not hold the release silently for ever; if the
   * read fails too, the release waits with a Warning Event (once) that says why.
   */
  async function gatesSource(d: DeploymentView): Promise<GatesSource> {
    const cached = deps.configMaps?.(d.namespace);
    const name = d.annotations[ANNOTATION.gatesConfigMap]?.trim();
    if (cached === undefined || !name) return cached;
    if (typeof cached === "function" && cached(name) !== undefined) return cached;
    try {
      const data = await kube.readConfigMap(d.namespace, name);
      return (n) => (n === name ? data : typeof cached === "function" ? cached(n) : undefined);
    } catch (error) {
      log.warn("gates ConfigMap read failed", { configMap: `${d.namespace}/${name}`, error });
      const k = `gates-unreadable/${d.uid}/${name}`;
      if (cached === "pending" && !warned.has(k)) {
        warned.add(k);
        await event(
          d,
          "Warning",
          "GatesUnreadable",
          `cannot read the gates ConfigMap ${name}: ${(error as Error).message}; the release waits (last good policy in force)`,
        );
      }
      return cached;
    }
  }

  /** The interval's numbers as an event for the machine; also the actual-weight series. */
  async function measure(
    d: DeploymentView,
    state: AppState,
    policy: ReleasePolicy,
  ): Promise<ReleaseEvent> {
    const m = await deps.metrics.measure(targetOf(d, state, policy));
    if (!m) return { type: "noBaseline" };
    deps.releaseMetrics?.measured(
      { namespace: d.namespace, app: d.app ?? "", version: d.version },
      m,
    );
    return { type: "measured", measurements: m };
  }

  /** After the status is written: Events, notifications, gate calls, metrics. */
  function act(
    d: DeploymentView,
    state: AppState,
    policy: ReleasePolicy | undefined,
    out: MachineOutput,
  ): Promise<void>[] {
    const ref = releaseRefOf(d, state);
    const writes: Promise<void>[] = [];
    for (const t of out.events) {
      writes.push(event(d, t.type, t.reason, t.message));
      const n = deps.notifier && notificationOf(t, ref, out.status, clock.now());
      if (n)
        deps.notifier?.send(n, policy?.notifyUrl, (message) => {
          void event(d, "Warning", "NotificationFailed", message);
        });
    }
    for (const c of out.calls) {
      deps.gates.call(c, gatePayload(c.kind, ref, out.status), (result) => {
        deps.inbox.push(d.uid, { event: { type: "gate", result }, at: clock.now() });
        poke(d.namespace, d.app ?? "");
      });
    }
    return writes;
  }

  /** Reconciles one app; resolves to when it next needs attention (epoch ms, if ever) or "retry". */
  async function reconcile(namespace: string, app: string): Promise<Next> {
    // The Deployments cache spans every namespace: an opted-out one is not ours to act on.
    if (!mayWrite(namespace)) return undefined;
    const state = deps.state(namespace, app);
    const choice = selectRelease(state.deployments);
    const d = choice.release;
    if (!d) {
      deps.cutoffs?.unwatch(`${namespace}/${app}`);
      return undefined;
    }
    for (const s of choice.superseded) {
      const k = `superseded/${s.uid}/${d.uid}`;
      if (warned.has(k) || !mayWrite(namespace)) continue;
      warned.add(k);
      await event(
        s,
        "Warning",
        "Superseded",
        `Deployment ${d.name} is a newer release of app ${app}; the release annotations here are ignored`,
      );
    }
    const statusText = currentStatus(d, rv(d.resourceVersion));
    const view: DeploymentView = { ...d, annotations: { ...d.annotations } };
    if (statusText === undefined) delete view.annotations[ANNOTATION.status];
    else view.annotations[ANNOTATION.status] = statusText;
    const gates = await gatesSource(d);
    const resolved = resolvePolicy(view, deps.remembered(d.uid), gates);
    // Its gates ConfigMap could not be read: the listing's end pokes the app again, and it
    // is retried meanwhile.
    if (resolved.pending) return "retry";
    const { policy, status: prev } = resolved;
    // One `now` for this reconcile: what is due, and every time the machine writes.
    const now = clock.now();

    const arrivals: Arrival[] = deps.inbox.take(d.uid);
    const events: ReleaseEvent[] = arrivals.map((a) => a.event);
    let signalAt = arrivals.length > 0 ? Math.min(...arrivals.map((a) => a.at)) : undefined;
    const own = prev?.version === d.version ? prev : undefined;
    const due = policy ? analysisDueAt(own, policy) : undefined;
    if (policy && due !== undefined && now >= due && d.ready) {
      events.push(await measure(d, state, policy));
      signalAt ??= clock.now();
    }
    const out = nextState({
      prev,
      policy,
      policyErrors: resolved.errors,
      annotations: resolved.annotations,
      release: {
        version: d.version,
        template: d.template,
        ready: d.ready,
        pods: readyPodsOf(state.pods, d.version),
      },
      events,
      now,
    });
    const next = out.status;
    if (out.baseline && policy) {
      void deps.metrics
        .begin(targetOf(d, state, policy))
        .catch((error) => log.warn("metrics baseline failed", { app, error }));
    }

    const text = formatStatus(next);
    if (text !== statusText) {
      if (!mayWrite(namespace)) return undefined;
      try {
        // Compare-and-swap on the status itself: decided from a status someone else has
        // since replaced (an old leader still writing, `kubectl verso`), it is not written.
        const newRv = await kube.annotateDeployment(
          d.namespace,
          d.name,
          { [ANNOTATION.status]: text },
          { annotation: ANNOTATION.status, value: statusText ?? null },
        );
        written.set(d.uid, { text, resourceVersion: rv(newRv) });
        log.info("release status", {
          deployment: `${d.namespace}/${d.name}`,
          phase: next.phase,
          step: next.step,
          weight: next.weight,
          reason: next.reason,
        });
      } catch (error) {
        if (error instanceof VersoError && error.code === "CONTROLLER_STATUS_CONFLICT") {
          // Ours is not the last word: decide again from the status the watch brings.
          written.delete(d.uid);
          log.info("status changed under us; deciding again", {
            deployment: `${d.namespace}/${d.name}`,
          });
        } else log.warn("status write failed", { deployment: `${d.namespace}/${d.name}`, error });
        deps.inbox.putBack(d.uid, arrivals);
        return "retry";
      }
      const labels = { namespace: d.namespace, app, version: d.version };
      if (next.phase === "Failed" && prev?.phase !== "Failed" && signalAt !== undefined)
        deps.releaseMetrics?.rollback(labels, next.reason, (clock.now() - signalAt) / 1000);
      await Promise.all(act(d, state, policy, out));
    } else if (out.events.length > 0) {
      await Promise.all(act(d, state, policy, out));
    }
    deps.releaseMetrics?.status({ namespace: d.namespace, app, version: d.version }, next, policy);
    if (deps.cutoffs) {
      const key = `${namespace}/${app}`;
      if (policy && policy.cutoffFailures > 0 && takesTraffic(next, policy)) {
        deps.cutoffs.watch(key, {
          app,
          version: d.version,
          admins: state.pods.flatMap((p) => (p.admin ? [p.admin] : [])),
        });
      } else deps.cutoffs.unwatch(key);
    }

    const delayMs = scaleDownDelayOf(policy, deps.scaleDownDelayMs);
    const others = state.deployments.filter((o) => o.uid !== d.uid && o.replicas > 0);
    let othersRunning = others.length > 0;
    const scaleAt = scaleDownDueAt(next, delayMs);
    if (othersRunning && scaleAt !== undefined && now >= scaleAt) {
      if (await scaleDown(d, others, next)) return "retry";
      // Done: their watch events bring the cache's replicas to 0, no timer needed meanwhile.
      othersRunning = false;
    }
    // A canary at a fixed weight is not analysed, but its actual share is still measured.
    const observeAt = policy ? observeDueAt(next, policy, observedAt.get(d.uid)) : undefined;
    if (policy && observeAt !== undefined && now >= observeAt && d.ready) {
      observedAt.set(d.uid, clock.now());
      await measure(d, state, policy);
    } else if (observeAt === undefined) observedAt.delete(d.uid);
    return nextDueAt({
      status: next,
      policy,
      ready: d.ready,
      othersRunning,
      scaleDownDelayMs: delayMs,
      lastObservedAt: observedAt.get(d.uid),
    });
  }

  /** Scales the promoted release's `others` to 0; resolves to true if a scale failed. */
  async function scaleDown(
    d: DeploymentView,
    others: DeploymentView[],
    status: ReleaseStatus,
  ): Promise<boolean> {
    let failed = false;
    for (const old of others) {
      // Not ours to write any more: nothing left to retry either.
      if (!mayWrite(old.namespace)) return false;
      try {
        await kube.scaleDeployment(old.namespace, old.name, 0);
        await event(
          old,
          "Normal",
          "ScaledDown",
          `scaled to 0: ${d.name} (version ${d.version}) was promoted at ${status.promotedAt}`,
        );
      } catch (error) {
        failed = true;
        log.warn("scale-down failed", { deployment: `${old.namespace}/${old.name}`, error });
      }
    }
    return failed;
  }

  let leading = false;
  let resync: TimerHandle | undefined;
  /** app key -> the one timer armed for its next due time. */
  const timers = new Map<string, TimerHandle>();
  /** app key -> consecutive failed reconciles, for the retry backoff. */
  const failures = new Map<string, number>();

  /**
   * Doubles the wait per consecutive failure of the app, up to MAX_RETRY_MS: a write the
   * apiserver refuses for good (RBAC) is not retried, and warned about, every retryMs.
   */
  function retryAt(k: string): number {
    const n = failures.get(k) ?? 0;
    failures.set(k, n + 1);
    return clock.now() + Math.min(deps.retryMs * 2 ** n, MAX_RETRY_MS);
  }

  function schedule(namespace: string, app: string, due: number | undefined): void {
    const k = `${namespace}/${app}`;
    clock.clearTimeout(timers.get(k));
    timers.delete(k);
    if (due === undefined || stopped || !leading) return;
    // Failures come back as their own retry time, so a due time already past means only that
    // the timer fired a little before the clock reached it: go again as soon as it has.
    const delay = Math.min(Math.max(1, due - clock.now()), MAX_TIMER_MS);
    const timer = clock.setTimeout(() => {
      timers.delete(k);
      run(namespace, app);
    }, delay);
    timers.set(k, timer);
  }

  function run(namespace: string, app: string): void {
    const k = `${namespace}/${app}`;
    if (stopped || !leading || !deps.isLeader()) return;
    if (running.has(k)) {
      again.add(k);
      return;
    }
    const startedAt = clock.now();
    const p = reconcile(namespace, app)
      .catch((error): Next => {
        log.error("release reconcile failed", { app: k, error });
        deps.releaseMetrics?.reconcileError(namespace, app);
        return "retry";
      })
      .then((next) => {
        running.delete(k);
        // A due time that had passed before this reconcile began, and was not acted on, would
        // re-run the app every millisecond: a bug in nextDueAt, so back off like a failure.
        const stuck = typeof next === "number" && next <= startedAt;
        if (stuck) log.warn("release due time did not advance; backing off", { app: k, due: next });
        if (next !== "retry" && !stuck) failures.delete(k);
        const due = next === "retry" || stuck ? retryAt(k) : next;
        if (again.delete(k)) run(namespace, app);
        else schedule(namespace, app, due);
      });
    running.set(k, p);
  }

  const poke = (namespace: string, app: string): void => run(namespace, app);

  const runAll = (): void => {
    for (const { namespace, app } of deps.apps()) run(namespace, app);
  };

  function lead(v: boolean): void {
    if (stopped || v === leading) return;
    leading = v;
    if (v) {
      resync = clock.setInterval(runAll, deps.resyncMs);
      runAll();
      return;
    }
    clock.clearInterval(resync);
    resync = undefined;
    for (const t of timers.values()) clock.clearTimeout(t);
    timers.clear();
    again.clear();
    failures.clear();
    deps.cutoffs?.stop();
  }

  return {
    poke,
    lead,
    stop() {
      lead(false);
      stopped = true;
    },
  };
}
