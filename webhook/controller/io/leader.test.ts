/**
 * Lease logic with an in-memory Lease store (optimistic on resourceVersion like the
 * apiserver) and a hand-driven clock. The real apiserver path is in the cluster suite; this
 * pins the timing rules: who may take a lease, and that a leader stops writing on its own
 * clock when renewals fail, before anyone else can have taken over.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../../shared/log.ts";
import type { KubeApi, LeaseRecord } from "./kube.ts";
import { startLeaderElection, type Leader } from "./leader.ts";

function leaseStore() {
  let lease: LeaseRecord | undefined;
  let rv = 0;
  let down = false;
  const api = {
    async readLease() {
      if (down) throw new Error("apiserver down");
      return lease ? { ...lease } : undefined;
    },
    async writeLease(
      _ns: string,
      _name: string,
      l: LeaseRecord & { holder: string; renewTime: number },
    ) {
      if (down) throw new Error("apiserver down");
      if ((lease?.resourceVersion ?? undefined) !== (l.resourceVersion ?? undefined)) return false;
      lease = { ...l, resourceVersion: String(++rv) };
      return true;
    },
  } as unknown as KubeApi;
  return { api, get: () => lease, setDown: (v: boolean) => (down = v) };
}

const log = createLogger("test", "error");
const flush = () => new Promise((r) => setTimeout(r, 20));

describe("leader election", () => {
  const started: Leader[] = [];
  afterEach(async () => {
    for (const l of started.splice(0)) await l.stop();
  });

  it("one of two candidates leads; the other takes over only after expiry or release", async () => {
    const store = leaseStore();
    const now = 1_000_000;
    const opts = { namespace: "v", name: "l", durationMs: 15_000, renewMs: 10, now: () => now };
    const a = startLeaderElection(store.api, log, { ...opts, identity: "a" });
    started.push(a);
    await flush();
    const b = startLeaderElection(store.api, log, { ...opts, identity: "b" });
    started.push(b);
    await flush();
    expect([a.isLeader(), b.isLeader()]).toEqual([true, false]);
    expect(store.get()?.holder).toBe("a");
    await a.stop(); // graceful: releases the lease
    await flush();
    expect(b.isLeader()).toBe(true);
    expect(store.get()?.holder).toBe("b");
    expect(store.get()?.transitions).toBe(2);
  });

  it("stop() during a first attempt still in flight releases the lease that attempt takes", async () => {
    const store = leaseStore();
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const write = store.api.writeLease.bind(store.api);
    const api = {
      readLease: store.api.readLease.bind(store.api),
      writeLease: async (...args: Parameters<KubeApi["writeLease"]>) => {
        await gate;
        return write(...args);
      },
    } as unknown as KubeApi;
    const a = startLeaderElection(api, log, {
      namespace: "v",
      name: "l",
      identity: "a",
      renewMs: 10,
      now: () => 1_000_000,
    });
    await flush(); // the lease is read; the write waits at the gate
    const stopped = a.stop();
    open();
    await stopped;
    expect(a.isLeader()).toBe(false);
    expect(store.get()?.holder).toBe("");
  });

  it("a leader whose renewals fail stops leading on its own clock, before the lease expires", async () => {
    const store = leaseStore();
    let now = 1_000_000;
    const a = startLeaderElection(store.api, log, {
      namespace: "v",
      name: "l",
      identity: "a",
      durationMs: 15_000,
      renewMs: 10,
      now: () => now,
    });
    started.push(a);
    await flush();
    expect(a.isLeader()).toBe(true);
    store.setDown(true);
    now += 12_000;
    expect(a.isLeader()).toBe(true); // still inside duration - margin (13s)
    now += 1_000;
    expect(a.isLeader()).toBe(false); // at 13s: stopped, 2s before others may take it at 15s
    store.setDown(false);
    now += 3_000;
    await flush();
    expect(a.isLeader()).toBe(true); // takes it again once it can renew
  });

  it("does not take a lease another holder renewed recently", async () => {
    const store = leaseStore();
    const now = 1_000_000;
    await store.api.writeLease("v", "l", {
      holder: "other",
      renewTime: now - 5_000,
      durationSeconds: 15,
      transitions: 1,
      resourceVersion: undefined,
    });
    const a = startLeaderElection(store.api, log, {
      namespace: "v",
      name: "l",
      identity: "a",
      renewMs: 10,
      now: () => now,
    });
    started.push(a);
    await flush();
    expect(a.isLeader()).toBe(false);
    expect(store.get()?.holder).toBe("other");
  });

  it("a holder whose clock runs behind is not taken over while its record keeps changing", async () => {
    const store = leaseStore();
    let now = 1_000_000;
    // The other replica's clock is a minute behind: its renewTime looks long expired to us.
    const renewByOther = () => {
      const l = store.get();
      return store.api.writeLease("v", "l", {
        holder: "other",
        renewTime: now - 60_000,
        durationSeconds: 15,
        transitions: 1,
        resourceVersion: l?.resourceVersion,
      });
    };
    await renewByOther();
    const a = startLeaderElection(store.api, log, {
      namespace: "v",
      name: "l",
      identity: "a",
      renewMs: 10,
      now: () => now,
    });
    started.push(a);
    await flush();
    expect(a.isLeader()).toBe(false);
    for (let i = 0; i < 3; i++) {
      now += 10_000; // renewed every 10 s: never 15 s without a change
      await renewByOther();
      await flush();
      expect(a.isLeader()).toBe(false);
      expect(store.get()?.holder).toBe("other");
    }
    now += 16_000; // the other stops renewing: 16 s of our clock without a change
    await flush();
    expect(a.isLeader()).toBe(true);
    expect(store.get()?.holder).toBe("a");
  });
});
