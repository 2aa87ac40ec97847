/**
 * Two controller replicas (two webhook processes) against one real apiserver: one holds the
 * Lease and is the only one to write status and Events; SIGKILL it and the other takes the
 * Lease once it expires, resuming from `verso.dev/status` (same startedAt), not from memory;
 * with --scale-down-delay the old Deployment is scaled to 0 after the promotion.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABEL } from "../../shared/annotations.ts";
import { startControlPlane, type ControlPlane } from "../harness/controlPlane.ts";
import { waitFor } from "../harness/ports.ts";
import { startWebhook, type Webhook } from "../harness/webhook.ts";
import { annotate, eventsFor, leaseHolder, waitForPhase } from "./controllerFixtures.ts";
import { createNamespace, deployment } from "./fixtures.ts";

const NS = "lead";

describe("controller: leader election across two replicas", () => {
  let cp: ControlPlane;
  const replicas = new Map<string, Webhook>();
  const holder = (): Promise<string | undefined> => leaseHolder(cp.client);

  beforeAll(async () => {
    cp = await startControlPlane();
    await createNamespace(cp.client, NS, { [LABEL.injection]: "enabled" });
    for (const id of ["replica-a", "replica-b"]) {
      replicas.set(
        id,
        await startWebhook({
          cp,
          controller: true,
          args: ["--leader-identity", id, "--scale-down-delay", "1s"],
        }),
      );
    }
  });

  afterAll(async () => {
    for (const r of replicas.values()) await r.stop();
    await cp?.stop();
  });

  it("only the Lease holder writes; after it is killed the other takes over from status", async () => {
    const leader = await waitFor("a lease holder", holder, 30_000);
    const follower = leader === "replica-a" ? "replica-b" : "replica-a";
    await cp.client.create(
      `/apis/apps/v1/namespaces/${NS}/deployments`,
      deployment("shop-v1", "v1"),
    );
    // No kubelet here: the release never becomes ready and stays Pending, which is enough
    // to see who writes.
    await cp.client.create(
      `/apis/apps/v1/namespaces/${NS}/deployments`,
      deployment("shop-v2", "v2", 1, {
        annotations: { "verso.dev/strategy": "canary", "verso.dev/weight": "10" },
      }),
    );
    const first = await waitForPhase(cp.client, NS, "shop-v2", "Pending", 30_000);
    await annotate(cp.client, NS, "shop-v2", { "verso.dev/weight": "x" });
    await waitFor(
      "PolicyInvalid event",
      async () =>
        (await eventsFor(cp.client, NS, "shop-v2")).find((e) => e.reason === "PolicyInvalid"),
      30_000,
    );
    const before = (await eventsFor(cp.client, NS, "shop-v2")).filter(
      (e) => e.source?.component === "verso-controller",
    );
    expect(before.length).toBeGreaterThan(0);
    expect(new Set(before.map((e) => e.reportingInstance))).toEqual(new Set([leader]));

    const killed = replicas.get(leader)!;
    process.kill(killed.process.pid, "SIGKILL");
    await killed.process.exited;
    replicas.delete(leader);
    await waitFor(
      "the follower holds the lease",
      async () => ((await holder()) === follower ? true : undefined),
      40_000,
      250,
    );

    await annotate(cp.client, NS, "shop-v2", {
      "verso.dev/weight": "10",
      "verso.dev/promote": "true",
    });
    const promoted = await waitForPhase(cp.client, NS, "shop-v2", "Promoted", 30_000);
    expect(promoted.startedAt).toBe(first.startedAt);
    const ev = (await eventsFor(cp.client, NS, "shop-v2")).find((e) => e.reason === "Promoted");
    expect(ev?.reportingInstance).toBe(follower);

    // --scale-down-delay 1s: the old Deployment goes to 0 replicas a second after promotion.
    await waitFor(
      "shop-v1 scaled to 0",
      async () => {
        const d = await cp.client.get<{ spec: { replicas: number } }>(
          `/apis/apps/v1/namespaces/${NS}/deployments/shop-v1`,
        );
        return d.spec.replicas === 0 ? true : undefined;
      },
      15_000,
    );
    const scaled = (await eventsFor(cp.client, NS, "shop-v1")).find(
      (e) => e.reason === "ScaledDown",
    );
    expect(scaled?.reportingInstance).toBe(follower);
  });
});
