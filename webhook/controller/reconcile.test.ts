/**
 * The release loop's scheduling with an in-memory Deployment store behind the KubeApi it
 * writes through, a fixed metrics source and real timers (intervals of a few hundred ms).
 * The real apiserver path is in the cluster suite; this pins what wakes an app up: a change
 * (poke), its own due time, the slow resync, and nothing else; that only a leader acts, and
 * only on an opted-in namespace; and how failures are retried. A reconcile reads its app's
 * state once, so the tests count reconciles by counting those reads. Where a test must not
 * depend on how fast this machine is, the loop's clock is one the test moves by hand.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ANNOTATION } from "../../shared/annotations.ts";
import { createLogger } from "../../shared/log.ts";
import { sleep, waitFor } from "../../test/harness/ports.ts";
import type { KubeApi } from "./kube.ts";
import type { MetricsSource } from "./metrics/source.ts";
import { createReleaseLoop, type ReleaseLoop, type ReleaseLoopDeps } from "./reconcile.ts";
import { parseStatus, type ReleaseStatus } from "./status.ts";
import type { DeploymentView } from "./views.ts";

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

/** Deployments as the informer cache would hold them; our writes land in it at once. */
function store(deployments: DeploymentView[]) {
  let rv = 1;
  const scaled: string[] = [];
  let writes = 0;
  let failWrites = 0;
  let scaleAttempts = 0;
  let forbidScale = false;
  const byName = (name: string) => deployments.find((d) => d.name === name)!;
  const kube = {
    async annotateDeployment(_ns: string, name: string, a: Record<string, string | null>) {
      if (failWrites > 0) {
        failWrites--;
        throw new Error("apiserver down");
      }
      writes++;
      const d = byName(name);
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

/**
 * The loop's clock, moved by hand: real timers fire, but what is due is what the test says.
 * `readOnce` queues readings that come before the current time (a timer firing early).
 */
function clock() {
  let t = Date.now();
  const queued: number[] = [];
  return {
    now: () => queued.shift() ?? t,
    set: (v: number) => (t = v),
    readOnce: (v: number) => queued.push(v),
  };
}

describe("release loop scheduling", () => {
  const loops: ReleaseLoop[] = [];
  afterEach(() => {
    for (const l of loops.splice(0)) l.stop();
  });

  function start(s: ReturnType<typeof store>, o: Partial<ReleaseLoopDeps> = {}) {
    let reconciles = 0;
    let leader = true;
    let optedIn = true;
    const loop = createReleaseLoop({
      kube: s.kube,
      log: createLogger("test", "error"),
      metrics: healthy().source,
      isLeader: () => leader,
      optedIn: () => optedIn,
      apps: () => [{ namespace: NS, app: APP }],
      state: () => {
        reconciles++;
        return { deployments: s.deployments, pods: [] };
      },
      remembered: () => undefined,
      scaleDownDelayMs: 0,
      resyncMs: 60_000,
      retryMs: 20,
      now: Date.now,
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

  it("reconciles an app with no release once per change, never on a timer", async () => {
    const s = store([deployment("shop-v1", "v1"), deployment("shop-v2", "v2")]);
    const l = start(s);
    l.setLeader(true);
    expect(l.reconciles()).toBe(1);
    await sleep(500); // 25 retry delays: a blanket tick of that size would have run ~25 times
    expect(l.reconciles()).toBe(1);
    l.loop.poke(NS, APP);
    expect(l.reconciles()).toBe(2);
    await sleep(300);
    expect(l.reconciles()).toBe(2);
  });

  it("acts on each analysis interval as it falls due, and on nothing in between", async () => {
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50,100", interval: "200ms" }),
    ]);
    const metrics = healthy();
    const l = start(s, { metrics: metrics.source });
    l.setLeader(true);
    const promoted = await waitFor(
      "shop-v2 promoted",
      async () => (s.status("shop-v2")?.phase === "Promoted" ? s.status("shop-v2") : undefined),
      10_000,
      20,
    );
    expect(promoted.analysis?.reason).toBe("LastStepPassed");
    // One analysis per step (20, 50, 100): none early, none repeated.
    expect(metrics.measured()).toBe(3);
    // Started + three due times; a timer that fires a millisecond early re-arms once.
    expect(l.reconciles()).toBeGreaterThanOrEqual(4);
    expect(l.reconciles()).toBeLessThanOrEqual(8);
    const settled = l.reconciles();
    await sleep(500);
    expect(l.reconciles()).toBe(settled);
  });

  it("scales the old version to 0 when the delay after promotion is over, then stops", async () => {
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", { strategy: "canary", promote: "true" }),
    ]);
    const l = start(s, { scaleDownDelayMs: 200 });
    l.setLeader(true);
    await waitFor(
      "shop-v1 scaled",
      async () => (s.scaled.length > 0 ? true : undefined),
      5_000,
      20,
    );
    expect(s.status("shop-v2")?.phase).toBe("Promoted");
    const settled = l.reconciles();
    expect(settled).toBeLessThanOrEqual(4);
    await sleep(400);
    expect(s.scaled).toEqual(["shop-v1"]);
    expect(l.reconciles()).toBe(settled);
  });

  it("acts on nothing while not leading, and catches up when leadership returns", async () => {
    const s = store([
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50", interval: "200ms" }),
    ]);
    const metrics = healthy();
    const c = clock();
    const started = c.now();
    const l = start(s, { metrics: metrics.source, now: c.now });
    l.setLeader(true);
    await waitFor("started", async () => s.status("shop-v2")?.step, 5_000, 20);
    l.setLeader(false);
    const seen = l.reconciles();
    c.set(started + 1_000); // the interval is over by the loop's clock
    l.loop.poke(NS, APP); // a change seen by a follower: not its to act on
    await sleep(500); // any timer left armed (at most 200 ms) fires
    expect(metrics.measured()).toBe(0);
    expect(l.reconciles()).toBe(seen);
    l.setLeader(true); // the due time has passed: acted on at once
    await waitFor(
      "step 2",
      async () => (s.status("shop-v2")?.step === 2 ? true : undefined),
      5_000,
      20,
    );
    expect(metrics.measured()).toBe(1);
  });

  it("acts as soon as the clock reaches the due time when the timer fires early", async () => {
    const s = store([
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50", interval: "200ms" }),
    ]);
    const c = clock();
    const due = c.now() + 200;
    // A retry this long would outlast the wait below: the step must not wait for one.
    const l = start(s, { now: c.now, retryMs: 60_000 });
    l.setLeader(true);
    await waitFor("started", async () => s.status("shop-v2")?.step, 5_000, 20);
    // The reconcile that wrote it ends in microtasks (an in-memory store): let it arm its timer.
    await new Promise((r) => setImmediate(r));
    // The timer fires 3 ms before the clock reads `due`; by the end of that reconcile it does.
    c.readOnce(due - 3);
    c.set(due);
    await waitFor(
      "step 2",
      async () => (s.status("shop-v2")?.step === 2 ? true : undefined),
      2_000,
      20,
    );
  });

  it("retries a failed status write, doubling the wait", async () => {
    const s = store([
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50", interval: "1h" }),
    ]);
    s.failNextWrites(2);
    const l = start(s);
    l.setLeader(true);
    await waitFor("started after retries", async () => s.status("shop-v2")?.step, 5_000, 20);
    expect(l.reconciles()).toBe(3); // the first try, then retries after 20 and 40 ms
  });

  it("reaches an app no event names through the resync", async () => {
    const s = store([
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50", interval: "1h" }),
    ]);
    const l = start(s, { resyncMs: 100 });
    l.setLeader(true);
    await waitFor("started", async () => s.status("shop-v2")?.step, 5_000, 20);
    const after = l.reconciles();
    // The next analysis is an hour away; only the resync brings the app back before that.
    await waitFor(
      "two resyncs",
      async () => (l.reconciles() >= after + 2 ? true : undefined),
      5_000,
      20,
    );
  });

  it("neither measures nor moves a canary once its namespace opts out", async () => {
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50", interval: "200ms" }),
    ]);
    const metrics = healthy();
    const c = clock();
    const started = c.now();
    const l = start(s, { metrics: metrics.source, now: c.now, resyncMs: 50 });
    l.setLeader(true);
    await waitFor("started", async () => s.status("shop-v2")?.step, 5_000, 20);
    l.optOut();
    const writes = s.writes();
    c.set(started + 1_000); // past the interval: its timer and every resync now find it due
    await sleep(500);
    expect(metrics.measured()).toBe(0);
    expect(s.writes()).toBe(writes);
    expect(s.status("shop-v2")?.step).toBe(1);
  });

  it("leaves the old version running when the namespace opts out during the scale-down delay", async () => {
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", { strategy: "canary", promote: "true" }),
    ]);
    const c = clock();
    const started = c.now();
    const l = start(s, { now: c.now, scaleDownDelayMs: 200, resyncMs: 50 });
    l.setLeader(true);
    await waitFor(
      "promoted",
      async () => (s.status("shop-v2")?.phase === "Promoted" ? true : undefined),
      5_000,
      20,
    );
    l.optOut();
    c.set(started + 1_000); // the scale-down delay is over
    await sleep(500);
    expect(s.scaleAttempts()).toBe(0);
  });

  it("backs off a scale-down the apiserver refuses, and scales once it is allowed", async () => {
    const s = store([
      deployment("shop-v1", "v1"),
      deployment("shop-v2", "v2", { strategy: "canary", promote: "true" }),
    ]);
    s.forbidScale(true);
    const l = start(s, { scaleDownDelayMs: 1 });
    l.setLeader(true);
    await sleep(700);
    // Retries after 20, 40, 80, 160, 320 ms: 6 attempts in 700 ms (35 without the backoff).
    expect(s.scaleAttempts()).toBeGreaterThanOrEqual(3);
    expect(s.scaleAttempts()).toBeLessThanOrEqual(10);
    s.forbidScale(false);
    await waitFor(
      "shop-v1 scaled",
      async () => (s.scaled.length > 0 ? true : undefined),
      10_000,
      20,
    );
    const attempts = s.scaleAttempts();
    await sleep(300);
    expect(s.scaled).toEqual(["shop-v1"]);
    expect(s.scaleAttempts()).toBe(attempts);
  });
});
