/**
 * The release loop's scheduling with an in-memory Deployment store behind the KubeApi it
 * writes through, a fixed metrics source and a clock the test moves by hand (manualClock.ts):
 * nothing sleeps, and what is due is exactly what the clock says.
 * The real apiserver path is in the cluster suite; this pins what wakes an app up: a change
 * (poke), its own due time, the slow resync, and nothing else; that only a leader acts, and
 * only on an opted-in namespace; and how failures are retried. A reconcile reads its app's
 * state once, so the tests count reconciles by counting those reads.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ANNOTATION } from "../../../shared/annotations.ts";
import { createLogger } from "../../../shared/log.ts";
import type { GateCall, GateResult } from "../decide/machine.ts";
import type { Clock } from "./clock.ts";
import type { GateRunner } from "./gateCalls.ts";
import { createInbox } from "./inbox.ts";
import type { KubeApi } from "./kube.ts";
import { createManualClock } from "./manualClock.ts";
import type { MetricsSource } from "./metrics/source.ts";
import { createReleaseLoop, type ReleaseLoop, type ReleaseLoopDeps } from "./reconcile.ts";
import { formatStatus, parseStatus, type ReleaseStatus } from "../decide/status.ts";
import { VersoError } from "../../../shared/errors.ts";
import type { DeploymentView } from "../decide/views.ts";

const NS = "shop";
const APP = "shop";

const deployment = (
  name: string,
  version: string,
  annotations: Record<string, string> = {},
): DeploymentView => ({
  namespace: NS,
  name,
  uid: `uid-${name}`,
  resourceVersion: "1",
  created: version === "v1" ? 1 : 2,
  template: "t1",
  app: APP,
  version,
  replicas: 1,
  ready: true,
  annotations: Object.fromEntries(
    Object.entries(annotations).map(([k, v]) => [`verso.dev/${k}`, v]),
  ),
});

/**
 * Deployments as the informer cache would hold them; our writes land in it at once. A status
 * another writer put on the server (`writeBehind`) stays out of the cache until `catchUp`.
 */
function store(deployments: DeploymentView[]) {
  let rv = 1;
  const behind = new Map<string, string>();
  const scaled: string[] = [];
  let writes = 0;
  let failWrites = 0;
  let scaleAttempts = 0;
  let forbidScale = false;
  const byName = (name: string) => deployments.find((d) => d.name === name)!;
  const kube = {
    async annotateDeployment(
      _ns: string,
      name: string,
      a: Record<string, string | null>,
      expect?: { annotation: string; value: string | null },
    ) {
      if (failWrites > 0) {
        failWrites--;
        throw new Error("apiserver down");
      }
      const d = byName(name);
      const onServer = (k: string) => (k === ANNOTATION.status ? behind.get(name) : undefined);
      if (
        expect &&
        (onServer(expect.annotation) ?? d.annotations[expect.annotation] ?? null) !== expect.value
      )
        throw new VersoError("CONTROLLER_STATUS_CONFLICT", "status changed");
      writes++;
      behind.delete(name);
      for (const [k, v] of Object.entries(a)) {
        if (v === null) delete d.annotations[k];
        else d.annotations[k] = v;
      }
      d.resourceVersion = String(++rv);
      return d.resourceVersion;
    },
    async scaleDeployment(_ns: string, name: string, replicas: number) {
      scaleAttempts++;
      if (forbidScale) throw new Error("deployments.apps/scale is forbidden");
      byName(name).replicas = replicas;
      scaled.push(name);
    },
    async event() {},
  } as unknown as KubeApi;
  return {
    kube,
    deployments,
    scaled,
    writes: () => writes,
    scaleAttempts: () => scaleAttempts,
    failNextWrites: (n: number) => (failWrites = n),
    writeBehind: (name: string, status: ReleaseStatus) => behind.set(name, formatStatus(status)),
    catchUp(name: string) {
      const text = behind.get(name);
      if (text === undefined) return;
      byName(name).annotations[ANNOTATION.status] = text;
      byName(name).resourceVersion = String(++rv);
      behind.delete(name);
    },
    forbidScale: (v: boolean) => (forbidScale = v),
    status: (name: string): ReleaseStatus | undefined =>
      parseStatus(byName(name).annotations[ANNOTATION.status]),
  };
}

/** Every interval: plenty of healthy traffic on both versions. */
function healthy() {
  let measured = 0;
  const source: MetricsSource = {
    name: "builtin",
    begin: async () => {},
    async measure() {
      measured++;
      return {
        release: { requests: 50, errors: 0, p99Ms: 5 },
        stable: { requests: 50, errors: 0, p99Ms: 5 },
      };
    },
  };
  return { source, measured: () => measured };
}

/** Gate calls as made, answered when the test says (never, unless it does). */
function gates() {
  const calls: { call: GateCall; answer: (r: GateResult) => void }[] = [];
  const runner: GateRunner = {
    call: (call, _body, answer) => calls.push({ call, answer }),
    inFlight: () => calls.length,
  };
  return { runner, calls };
}

const loops: ReleaseLoop[] = [];
afterEach(() => {
  for (const l of loops.splice(0)) l.stop();
});

function start(
  s: ReturnType<typeof store>,
  o: Partial<ReleaseLoopDeps> & { clock?: Clock } = {},
  apps = [{ namespace: NS, app: APP }],
) {
  let reconciles = 0;
  let leader = true;
  let optedIn = true;
  const clock = o.clock ?? createManualClock();
  const loop = createReleaseLoop({
    kube: s.kube,
    log: createLogger("test", "error"),
    metrics: healthy().source,
    isLeader: () => leader,
    optedIn: () => optedIn,
    apps: () => apps,
    state: (_ns, app) => {
      reconciles++;
      return { deployments: s.deployments.filter((d) => d.app === app), pods: [] };
    },
    remembered: () => undefined,
    scaleDownDelayMs: 0,
    resyncMs: 60_000,
    retryMs: 20,
    clock,
    inbox: createInbox(),
    gates: gates().runner,
    ...o,
  });
  loops.push(loop);
  return {
    loop,
    reconciles: () => reconciles,
    setLeader(v: boolean) {
      leader = v;
      loop.lead(v);
    },
    /** The namespace label is removed; the app's timers and the resync are left as they were. */
    optOut: () => (optedIn = false),
  };
}

describe("release loop scheduling", () => {
  it("reconciles an app with no release once per change, never on a timer", async () => {
    const c = createManualClock();
    const s = store([deployment("shop-v1", "v1"), deployment("shop-v2", "v2")]);
    const l = start(s, { clock: c });
    l.setLeader(true);
    await c.settle();
    expect(l.reconciles()).toBe(1);
    await c.advance(500); // 25 retry delays: a blanket tick of that size would have run ~25 times
    expect(l.reconciles()).toBe(1);
    l.loop.poke(NS, APP);
    expect(l.reconciles()).toBe(2);
    await c.advance(300);
    expect(l.reconciles()).toBe(2);
    expect(c.pending()).toBe(1); // the resync only
  });

  it("acts on each analysis interval as it falls due, and on nothing in between", async () => {
    const c = createManualClock();
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50,100", interval: "200ms" }),
    ]);
    const metrics = healthy();
    const l = start(s, { metrics: metrics.source, clock: c });
    l.setLeader(true);
    await c.settle();
    expect(s.status("shop-v2")?.step).toBe(1);
    await c.advance(199);
    expect(metrics.measured()).toBe(0);
    await c.advance(1);
    expect(s.status("shop-v2")?.step).toBe(2);
    await c.advance(400);
    const promoted = s.status("shop-v2");
    expect(promoted?.phase).toBe("Promoted");
    expect(promoted?.analysis?.reason).toBe("LastStepPassed");
    // One analysis per step (20, 50, 100): none early, none repeated.
    expect(metrics.measured()).toBe(3);
    // Started + three due times, nothing else.
    expect(l.reconciles()).toBe(4);
    await c.advance(5_000);
    expect(l.reconciles()).toBe(4);
  });

  it("scales the old version to 0 when the delay after promotion is over, then stops", async () => {
    const c = createManualClock();
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", { strategy: "canary", promote: "true" }),
    ]);
    const l = start(s, { scaleDownDelayMs: 200, clock: c });
    l.setLeader(true);
    await c.advance(199);
    expect(s.scaled).toEqual([]);
    await c.advance(1);
    expect(s.scaled).toEqual(["shop-v1"]);
    expect(s.status("shop-v2")?.phase).toBe("Promoted");
    const settled = l.reconciles();
    expect(settled).toBe(2);
    await c.advance(400);
    expect(s.scaled).toEqual(["shop-v1"]);
    expect(l.reconciles()).toBe(settled);
  });

  it("takes the release's own verso.dev/scale-down-delay over the flag", async () => {
    const c = createManualClock();
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", {
        strategy: "canary",
        promote: "true",
        "scale-down-delay": "1s",
      }),
    ]);
    const l = start(s, { scaleDownDelayMs: 200, clock: c });
    l.setLeader(true);
    await c.advance(999);
    expect(s.scaled).toEqual([]);
    await c.advance(1);
    expect(s.scaled).toEqual(["shop-v1"]);
  });

  it("acts on nothing while not leading, and catches up when leadership returns", async () => {
    const c = createManualClock();
    const s = store([
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50", interval: "200ms" }),
    ]);
    const metrics = healthy();
    const l = start(s, { metrics: metrics.source, clock: c });
    l.setLeader(true);
    await c.settle();
    expect(s.status("shop-v2")?.step).toBe(1);
    l.setLeader(false);
    const seen = l.reconciles();
    await c.advance(1_000); // the interval is over; no timer is left to fire
    l.loop.poke(NS, APP); // a change seen by a follower: not its to act on
    await c.settle();
    expect(metrics.measured()).toBe(0);
    expect(l.reconciles()).toBe(seen);
    l.setLeader(true); // the due time has passed: acted on at once
    await c.settle();
    expect(s.status("shop-v2")?.step).toBe(2);
    expect(metrics.measured()).toBe(1);
  });

  it("acts as soon as the clock reaches the due time when the timer fires early", async () => {
    const c = createManualClock();
    // A timer that fires 3 ms before the clock reads its due time (real timers do).
    const early: number[] = [];
    const clock: Clock = { ...c, now: () => early.shift() ?? c.now() };
    const s = store([
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50", interval: "200ms" }),
    ]);
    // A retry this long would outlast the test: the step must not wait for one.
    const l = start(s, { clock, retryMs: 60_000 });
    l.setLeader(true);
    await c.settle();
    expect(s.status("shop-v2")?.step).toBe(1);
    const due = c.now() + 200;
    await c.advance(199);
    early.push(due - 3, due - 3);
    await c.advance(1);
    // That reconcile found nothing due and re-armed for 1 ms later, not for a retry.
    await c.advance(5);
    expect(s.status("shop-v2")?.step).toBe(2);
  });

  it("retries a failed status write, doubling the wait", async () => {
    const c = createManualClock();
    const s = store([
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50", interval: "1h" }),
    ]);
    s.failNextWrites(2);
    const l = start(s, { clock: c });
    l.setLeader(true);
    await c.settle();
    expect(l.reconciles()).toBe(1);
    await c.advance(20);
    expect(l.reconciles()).toBe(2);
    await c.advance(39);
    expect(l.reconciles()).toBe(2);
    await c.advance(1);
    expect(l.reconciles()).toBe(3); // the first try, then retries after 20 and 40 ms
    expect(s.status("shop-v2")?.step).toBe(1);
  });

  it("never overwrites a status someone else wrote since the cache was read; decides again from it", async () => {
    const c = createManualClock();
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50,100", interval: "200ms" }),
    ]);
    const l = start(s, { clock: c });
    l.setLeader(true);
    await c.settle();
    const started = s.status("shop-v2")!;
    expect(started.step).toBe(1);
    // An old leader, still writing, rolled the release back on the server; our cache
    // still says step 1 when the interval ends.
    const failed: ReleaseStatus = { ...started, phase: "Failed", reason: "RolledBack", weight: 0 };
    s.writeBehind("shop-v2", failed);
    const writes = s.writes();
    await c.advance(200);
    expect(s.writes()).toBe(writes); // step 2 was decided from a stale status: not written
    const refusedAt = l.reconciles();
    s.catchUp("shop-v2");
    await c.advance(100);
    expect(l.reconciles()).toBeGreaterThan(refusedAt); // the retry ran, and decided again
    // Decided again from the status on the server: Failed stays Failed, nothing moves.
    expect(s.status("shop-v2")).toMatchObject({ phase: "Failed", reason: "RolledBack", weight: 0 });
    expect(s.writes()).toBe(writes);
  });

  it("reaches an app no event names through the resync", async () => {
    const c = createManualClock();
    const s = store([
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50", interval: "1h" }),
    ]);
    const l = start(s, { resyncMs: 100, clock: c });
    l.setLeader(true);
    await c.settle();
    const after = l.reconciles();
    // The next analysis is an hour away; only the resync brings the app back before that.
    await c.advance(200);
    expect(l.reconciles()).toBe(after + 2);
  });

  it("neither measures nor moves a canary once its namespace opts out", async () => {
    const c = createManualClock();
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50", interval: "200ms" }),
    ]);
    const metrics = healthy();
    const l = start(s, { metrics: metrics.source, clock: c, resyncMs: 50 });
    l.setLeader(true);
    await c.settle();
    l.optOut();
    const writes = s.writes();
    await c.advance(1_000); // past the interval: its timer and every resync now find it due
    expect(metrics.measured()).toBe(0);
    expect(s.writes()).toBe(writes);
    expect(s.status("shop-v2")?.step).toBe(1);
  });

  it("leaves the old version running when the namespace opts out during the scale-down delay", async () => {
    const c = createManualClock();
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", { strategy: "canary", promote: "true" }),
    ]);
    const l = start(s, { clock: c, scaleDownDelayMs: 200, resyncMs: 50 });
    l.setLeader(true);
    await c.settle();
    expect(s.status("shop-v2")?.phase).toBe("Promoted");
    l.optOut();
    await c.advance(1_000); // the scale-down delay is over
    expect(s.scaleAttempts()).toBe(0);
  });

  it("backs off a scale-down the apiserver refuses, and scales once it is allowed", async () => {
    const c = createManualClock();
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", { strategy: "canary", promote: "true" }),
    ]);
    s.forbidScale(true);
    const l = start(s, { clock: c, scaleDownDelayMs: 1 });
    l.setLeader(true);
    await c.advance(700);
    // At 1 ms, then retries after 20, 40, 80, 160, 320 ms: 6 attempts (35 without the backoff).
    expect(s.scaleAttempts()).toBe(6);
    s.forbidScale(false);
    await c.advance(640);
    expect(s.scaled).toEqual(["shop-v1"]);
    const attempts = s.scaleAttempts();
    await c.advance(3_000);
    expect(s.scaled).toEqual(["shop-v1"]);
    expect(s.scaleAttempts()).toBe(attempts);
  });
});

describe("release loop: gates are events, never waits", () => {
  it("a gate that never answers holds its own release and nobody else's", async () => {
    const c = createManualClock();
    const g = gates();
    const cart = (name: string, version: string, a: Record<string, string> = {}) => ({
      ...deployment(name, version, a),
      app: "cart",
      uid: `uid-${name}`,
    });
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", {
        strategy: "canary",
        steps: "20,50",
        interval: "200ms",
        "webhook-pre-rollout": "http://127.0.0.1:1/never",
      }),
      cart("cart-v1", "v1"),
      cart("cart-v2", "v2", { strategy: "canary", steps: "20,50", interval: "200ms" }),
    ]);
    start(s, { clock: c, gates: g.runner }, [
      { namespace: NS, app: "shop" },
      { namespace: NS, app: "cart" },
    ]).setLeader(true);
    await c.advance(400);
    expect(s.status("shop-v2")).toMatchObject({ phase: "Pending", reason: "AwaitingGate" });
    expect(s.status("shop-v2")?.gates?.["pre-rollout"]?.state).toBe("called");
    expect(s.status("cart-v2")?.phase).toBe("Promoted");
    expect(g.calls.map((x) => x.call.kind)).toEqual(["pre-rollout"]);

    // The answer arrives: fed back as an event, the release starts at once.
    g.calls[0]!.answer({ kind: "pre-rollout", id: g.calls[0]!.call.id, ok: true, message: "200" });
    await c.settle();
    expect(s.status("shop-v2")).toMatchObject({ phase: "Progressing", step: 1, weight: 20 });
    expect(s.status("shop-v2")?.gates?.["pre-rollout"]).toMatchObject({ state: "passed" });
  });

  it("a confirm-promotion gate holds the last step until it answers 2xx", async () => {
    const c = createManualClock();
    const g = gates();
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", {
        strategy: "canary",
        steps: "50",
        interval: "200ms",
        "webhook-confirm-promotion": "http://127.0.0.1:1/approve",
      }),
    ]);
    start(s, { clock: c, gates: g.runner }).setLeader(true);
    await c.advance(200);
    expect(s.status("shop-v2")).toMatchObject({ reason: "AwaitingGate", weight: 50 });
    g.calls[0]!.answer({
      kind: "confirm-promotion",
      id: g.calls[0]!.call.id,
      ok: false,
      code: 403,
      message: "HTTP 403",
    });
    await c.settle();
    expect(s.status("shop-v2")).toMatchObject({ phase: "Progressing", reason: "AwaitingGate" });
    await c.advance(200); // the next interval passes again: asked again
    expect(g.calls).toHaveLength(2);
    g.calls[1]!.answer({
      kind: "confirm-promotion",
      id: g.calls[1]!.call.id,
      ok: true,
      code: 200,
      message: "HTTP 200",
    });
    await c.settle();
    expect(s.status("shop-v2")).toMatchObject({ phase: "Promoted", weight: 100 });
  });
});

describe("release loop: gates declared in a ConfigMap (verso.dev/gates-configmap)", () => {
  it("reads the named ConfigMap from the apiserver while the namespace's are not listed", async () => {
    const c = createManualClock();
    const annotations = { strategy: "canary", steps: "20,50", "gates-configmap": "gates" };
    const s = store([deployment("shop-v1", "v1"), deployment("shop-v2", "v2", annotations)]);
    const g = gates();
    const url = "https://gates.example/pre";
    const kube = {
      ...s.kube,
      readConfigMap: async (_ns: string, name: string) =>
        name === "gates" ? { "pre-rollout": url } : undefined,
    } as KubeApi;
    // The namespace's list never completes (a watch that keeps failing).
    const l = start(s, { clock: c, kube, gates: g.runner, configMaps: () => "pending" });
    l.setLeader(true);
    await c.settle();
    expect(g.calls.map((x) => x.call.url)).toEqual([url]);
    expect(s.status("shop-v2")).toMatchObject({ phase: "Pending", reason: "AwaitingGate" });
  });

  it("waits while the namespace's ConfigMaps are not listed, then calls the ConfigMap's gate and records it as applied", async () => {
    const c = createManualClock();
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", {
        strategy: "canary",
        steps: "20,50",
        interval: "1s",
        "gates-configmap": "gates",
      }),
    ]);
    const g = gates();
    let listed = false;
    const url = "https://gates.example/pre";
    const warnings: string[] = [];
    const kube = {
      ...s.kube,
      readConfigMap: async () => {
        throw new Error("configmaps is forbidden");
      },
      event: async (_ref: unknown, _type: string, reason: string) => void warnings.push(reason),
    } as unknown as KubeApi;
    const l = start(s, {
      clock: c,
      kube,
      gates: g.runner,
      configMaps: () =>
        listed ? (name) => (name === "gates" ? { "pre-rollout": url } : undefined) : "pending",
    });
    l.setLeader(true);
    await c.settle();
    // Not listed, and the read refused: nothing decided, nothing written, no gate skipped;
    // said once, retried meanwhile.
    expect(s.writes()).toBe(0);
    expect(g.calls).toEqual([]);
    const before = l.reconciles();
    await c.advance(1_000);
    expect(l.reconciles()).toBeGreaterThan(before);
    expect(warnings).toEqual(["GatesUnreadable"]);
    listed = true;
    l.loop.poke(NS, APP);
    await c.settle();
    expect(g.calls.map((x) => [x.call.kind, x.call.url])).toEqual([["pre-rollout", url]]);
    const st = s.status("shop-v2");
    expect(st).toMatchObject({ phase: "Pending", reason: "AwaitingGate" });
    expect(st?.applied?.["verso.dev/webhook-pre-rollout"]).toBe(url);
  });

  it("asks the apiserver for a ConfigMap the cache lacks before reporting it missing", async () => {
    const c = createManualClock();
    const annotations = { strategy: "canary", steps: "20,50", "gates-configmap": "gates" };
    const s = store([deployment("shop-v1", "v1"), deployment("shop-v2", "v2", annotations)]);
    const g = gates();
    const url = "https://gates.example/pre";
    let exists = true;
    const asked: string[] = [];
    const kube = {
      ...s.kube,
      async readConfigMap(ns: string, name: string) {
        asked.push(`${ns}/${name}`);
        return exists ? { "pre-rollout": url } : undefined;
      },
    } as KubeApi;
    // The informer has not seen it (yet): its cache answers "no such ConfigMap".
    const l = start(s, { clock: c, kube, gates: g.runner, configMaps: () => () => undefined });
    l.setLeader(true);
    await c.settle();
    expect(asked).toEqual([`${NS}/gates`]);
    expect(g.calls.map((x) => x.call.url)).toEqual([url]);
    expect(s.status("shop-v2")?.policyErrors).toBeUndefined();
    // Gone for real: reported, and the last good policy (its gate included) stays.
    exists = false;
    l.loop.poke(NS, APP);
    await c.settle();
    const st = s.status("shop-v2");
    expect(st?.policyErrors).toEqual(["POLICY_CONFIGMAP"]);
    expect(st?.applied?.["verso.dev/webhook-pre-rollout"]).toBe(url);
  });
});
