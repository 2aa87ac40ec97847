/**
 * The release loop's scheduling with an in-memory Deployment store behind the KubeApi it
 * writes through, a fixed metrics source and real timers (intervals of a few hundred ms).
 * The real apiserver path is in the cluster suite; this pins what wakes an app up: a change
 * (poke), its own due time, the slow resync, and nothing else; and that only a leader runs.
 * Reconciles are counted through the loop's onReconcile hook.
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
  let failWrites = 0;
  const byName = (name: string) => deployments.find((d) => d.name === name)!;
  const kube = {
    async annotateDeployment(_ns: string, name: string, a: Record<string, string | null>) {
      if (failWrites > 0) {
        failWrites--;
        throw new Error("apiserver down");
      }
      const d = byName(name);
      for (const [k, v] of Object.entries(a)) {
        if (v === null) delete d.annotations[k];
        else d.annotations[k] = v;
      }
      d.resourceVersion = String(++rv);
      return d.resourceVersion;
    },
    async scaleDeployment(_ns: string, name: string, replicas: number) {
      byName(name).replicas = replicas;
      scaled.push(name);
    },
    async event() {},
  } as unknown as KubeApi;
  return {
    kube,
    deployments,
    scaled,
    failNextWrites: (n: number) => (failWrites = n),
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

describe("release loop scheduling", () => {
  const loops: ReleaseLoop[] = [];
  afterEach(() => {
    for (const l of loops.splice(0)) l.stop();
  });

  function start(s: ReturnType<typeof store>, o: Partial<ReleaseLoopDeps> = {}) {
    let reconciles = 0;
    let leader = true;
    const loop = createReleaseLoop({
      kube: s.kube,
      log: createLogger("test", "error"),
      metrics: healthy().source,
      isLeader: () => leader,
      apps: () => [{ namespace: NS, app: APP }],
      state: () => ({ deployments: s.deployments, pods: [] }),
      remembered: () => undefined,
      scaleDownDelayMs: 0,
      resyncMs: 60_000,
      retryMs: 20,
      now: Date.now,
      onReconcile: () => reconciles++,
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
    };
  }

  it("reconciles an app with no release once per change, never on a timer", async () => {
    const s = store([deployment("shop-v1", "v1"), deployment("shop-v2", "v2")]);
    const l = start(s);
    l.setLeader(true);
    expect(l.reconciles()).toBe(1);
    expect(l.loop.armed()).toBe(0);
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
    expect(l.loop.armed()).toBe(0);
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

  it("arms nothing while not leading, and catches up when leadership returns", async () => {
    const s = store([
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50", interval: "200ms" }),
    ]);
    const metrics = healthy();
    const l = start(s, { metrics: metrics.source });
    l.setLeader(true);
    await waitFor("started", async () => s.status("shop-v2")?.step, 5_000, 20);
    await waitFor(
      "interval armed",
      async () => (l.loop.armed() === 1 ? true : undefined),
      5_000,
      20,
    );
    l.setLeader(false);
    expect(l.loop.armed()).toBe(0);
    l.loop.poke(NS, APP); // a change seen by a follower: not its to act on
    await sleep(500); // past the interval's due time
    expect(metrics.measured()).toBe(0);
    expect(l.reconciles()).toBe(1);
    l.setLeader(true); // the due time has passed: acted on at once
    await waitFor(
      "step 2",
      async () => (s.status("shop-v2")?.step === 2 ? true : undefined),
      5_000,
      20,
    );
    expect(metrics.measured()).toBe(1);
  });

  it("retries a failed status write, and the resync reaches an app no event names", async () => {
    const s = store([
      deployment("shop-v2", "v2", { strategy: "canary", steps: "20,50", interval: "1h" }),
    ]);
    s.failNextWrites(2);
    const l = start(s, { resyncMs: 100 });
    l.setLeader(true);
    await waitFor("started after retries", async () => s.status("shop-v2")?.step, 5_000, 20);
    const after = l.reconciles();
    expect(after).toBe(3);
    // The next analysis is an hour away; only the resync brings the app back before that.
    await waitFor(
      "two resyncs",
      async () => (l.reconciles() >= after + 2 ? true : undefined),
      5_000,
      20,
    );
  });
});
