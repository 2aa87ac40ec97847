/**
 * The NotInjected reporter with a hand-moved clock and an in-memory Event store that answers
 * 409 for a name it holds, as the apiserver does: one Event per pod whoever leads, only from
 * the leader, a failed create retried on the next sweep, a series per tracked app.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../../shared/log.ts";
import type { InjectionCheck } from "../decide/notInjected.ts";
import type { KubeApi } from "./kube.ts";
import { createManualClock } from "./manualClock.ts";
import { createNotInjectedReporter, NOT_INJECTED_REASON } from "./notInjected.ts";

const pod = (name: string, ns = "shop"): V1Pod => ({
  metadata: { name, namespace: ns, uid: `uid-${name}` },
});

function world() {
  const stored = new Map<string, { reason: string; message: string; on: string }>();
  let failNext = 0;
  const kube = {
    async eventOnce(ref, name, _type, reason, message) {
      if (failNext > 0) {
        failNext--;
        throw Object.assign(new Error("apiserver away"), { code: 503 });
      }
      if (stored.has(name)) return false;
      stored.set(name, { reason, message, on: ref.name });
      return true;
    },
  } as Partial<KubeApi> as KubeApi;
  const clock = createManualClock();
  const pods: V1Pod[] = [];
  let leading = true;
  const missing = new Set<string>();
  const reporter = () =>
    createNotInjectedReporter({
      kube,
      log: createLogger("test", "error"),
      clock,
      isLeader: () => leading,
      pods: () => pods,
      check: (p): InjectionCheck =>
        missing.has(p.metadata?.name ?? "")
          ? { missing: true, app: "shop", deployment: { name: "shop-v1", uid: "d1" } }
          : { missing: false, reason: "injected" },
      apps: () => [
        { namespace: "shop", app: "shop" },
        { namespace: "shop", app: "cart" },
      ],
      sweepMs: 30_000,
    });
  return {
    stored,
    clock,
    pods,
    missing,
    reporter,
    setLeading: (v: boolean) => (leading = v),
    failNext: (n: number) => (failNext = n),
  };
}

describe("NotInjected reporter", () => {
  it("reports each pod once, on its Deployment, with the remedy", async () => {
    const w = world();
    w.pods.push(pod("a"), pod("b"));
    w.missing.add("a");
    const r = w.reporter();
    r.lead(true);
    r.seen(pod("a"));
    r.seen(pod("a"));
    await w.clock.advance(60_000);
    expect([...w.stored.values()]).toEqual([
      {
        reason: NOT_INJECTED_REASON,
        on: "shop-v1",
        message: expect.stringContaining("rollout restart deployment/shop-v1") as string,
      },
    ]);
  });

  it("a new leader that looks again creates no second Event (the name is taken)", async () => {
    const w = world();
    w.pods.push(pod("a"));
    w.missing.add("a");
    w.reporter().lead(true);
    await w.clock.settle();
    const next = w.reporter();
    next.lead(true);
    await w.clock.advance(30_000);
    expect(w.stored.size).toBe(1);
  });

  it("writes nothing while not leading, nor before lead(true)", async () => {
    const w = world();
    w.pods.push(pod("a"));
    w.missing.add("a");
    const r = w.reporter();
    r.seen(pod("a"));
    w.setLeading(false);
    r.lead(true);
    r.seen(pod("a"));
    await w.clock.advance(60_000);
    expect(w.stored.size).toBe(0);
    w.setLeading(true);
    await w.clock.advance(30_000);
    expect(w.stored.size).toBe(1);
  });

  it("retries a failed create on the next sweep", async () => {
    const w = world();
    w.pods.push(pod("a"));
    w.missing.add("a");
    w.failNext(1);
    w.reporter().lead(true);
    await w.clock.settle();
    expect(w.stored.size).toBe(0);
    await w.clock.advance(30_000);
    expect(w.stored.size).toBe(1);
  });

  it("counts pods outside the release per tracked app, 0 for the others", () => {
    const w = world();
    w.pods.push(pod("a"), pod("b"), pod("c"));
    w.missing.add("a");
    w.missing.add("c");
    expect(w.reporter().counts()).toEqual([
      { namespace: "shop", app: "shop", pods: 2 },
      { namespace: "shop", app: "cart", pods: 0 },
    ]);
  });

  it("stops for good", async () => {
    const w = world();
    w.pods.push(pod("a"));
    w.missing.add("a");
    const r = w.reporter();
    r.stop();
    r.lead(true);
    r.seen(pod("a"));
    await w.clock.advance(60_000);
    expect(w.stored.size).toBe(0);
  });
});
