/**
 * Automated canary driven by real proxy traffic: the stand-in kubelet runs each pod as the
 * demo app plus the real proxy; requests go to the proxies' inbound ports; the controller
 * (in the webhook process, built-in metrics source) scrapes the proxies and walks the steps.
 * Short intervals (3s) so the suite stays quick; gates as a user would write them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeConfig } from "@kubernetes/client-node";
import { ANNOTATION, LABEL } from "../../shared/annotations.ts";
import { VersoError } from "../../shared/errors.ts";
import { createKubeApi } from "../../webhook/controller/io/kube.ts";
import { startCluster, type Cluster } from "../harness/cluster.ts";
import { sleep, waitFor } from "../harness/ports.ts";
import {
  eventsFor,
  getThroughProxy,
  podLoad,
  statusOf,
  streamFor,
  waitForPhase,
  type PodLoad,
  type StatusAnnotation,
  type TableStream,
} from "./controllerFixtures.ts";
import { isReady } from "../harness/podStatus.ts";
import { createNamespace, deployment, podsOf } from "./fixtures.ts";

const NS = "canary";
const INTERVAL = "3s";

const canary = (steps: string): Record<string, string> => ({
  "verso.dev/strategy": "canary",
  "verso.dev/steps": steps,
  "verso.dev/interval": INTERVAL,
  "verso.dev/max-error-rate": "5",
  "verso.dev/min-requests": "5",
});

/** Bounded load: every ~50ms one request to each ready proxy of the app, until stopped or 3 minutes. */
const traffic = (cluster: Cluster, appName: string): PodLoad =>
  podLoad(cluster.cp.client, NS, appName, getThroughProxy);

describe("controller: automated canary on real proxy traffic", () => {
  let cluster: Cluster;
  const client = () => cluster.cp.client;
  const status = (name: string): Promise<StatusAnnotation | undefined> =>
    statusOf(client(), NS, name);
  const phase = (name: string, want: string, timeoutMs: number): Promise<StatusAnnotation> =>
    waitForPhase(client(), NS, name, want, timeoutMs);
  const streamOf = (app: string): Promise<TableStream> => streamFor(cluster, NS, app);

  beforeAll(async () => {
    cluster = await startCluster({ crds: false, controller: true });
    await createNamespace(client(), NS, { [LABEL.injection]: "enabled" });
    const create = (d: object) => client().create(`/apis/apps/v1/namespaces/${NS}/deployments`, d);
    await create(deployment("shop-v1", "v1"));
    await create(deployment("shop-v2", "v2", 1, { annotations: canary("20,50,100") }));
    await create(deployment("cart-v1", "v1", 1, { app: "cart" }));
    await create(
      deployment("cart-v2", "v2", 1, {
        app: "cart",
        // The proxies' fast cut-off would beat the interval to it (controller-release-engine
        // covers that); this release shows the analysis path.
        annotations: { ...canary("20,50"), "verso.dev/cutoff-failures": "0" },
        env: { ERROR_RATE: "1" },
      }),
    );
    await create(deployment("idle-v2", "v2", 1, { app: "idle", annotations: canary("20,50") }));
    await waitFor(
      "5 ready pods",
      async () => {
        const pods = await podsOf(client(), NS);
        return pods.length === 5 && pods.every(isReady) ? true : undefined;
      },
      240_000,
      500,
    );
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it("promotes a healthy release through every step", async () => {
    const load = traffic(cluster, "shop");
    try {
      const stream = await streamOf("shop");
      const promoted = await phase("shop-v2", "Promoted", 90_000);
      expect(promoted.weight).toBe(100);
      expect(promoted.analysis?.reason).toBe("LastStepPassed");
      expect(promoted.analysis?.measured.releaseRequests).toBeGreaterThanOrEqual(5);
      await stream.until("table at 100%", (t) => t.release?.weight === 100, 10_000);
      // Every step went through the table proxies see, in order.
      const weights = [...new Set(stream.tables.map((t) => t.release?.weight))];
      expect(weights.filter((w) => w !== undefined && w > 0)).toEqual([20, 50, 100]);
      stream.close();
      // The Event is written after the status annotation; wait for it rather than race it.
      const reasons = await waitFor(
        "Promoted event",
        async () => {
          const r = (await eventsFor(client(), NS, "shop-v2")).map((e) => e.reason);
          return r.includes("Promoted") ? r : undefined;
        },
        15_000,
        250,
      );
      expect(reasons).toEqual(expect.arrayContaining(["Started", "StepAdvanced", "Promoted"]));
    } finally {
      await load.stop();
    }
    expect(load.sent()).toBeGreaterThan(0);
  });

  it("writes the status as a compare-and-swap on the real apiserver: a stale read is refused", async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.cp.kubeconfig);
    const kube = createKubeApi(kc, "cas-test");
    const path = `/apis/apps/v1/namespaces/${NS}/deployments/shop-v2`;
    const read = async () =>
      (await client().get<{ metadata: { annotations: Record<string, string> } }>(path)).metadata
        .annotations[ANNOTATION.status] as string;
    const now = await read();
    /** Writes `text` if the status is still `expected`; what the write threw, if anything. */
    const write = (text: string, expected: string | null): Promise<unknown> =>
      kube
        .annotateDeployment(
          NS,
          "shop-v2",
          { [ANNOTATION.status]: text },
          { annotation: ANNOTATION.status, value: expected },
        )
        .then(
          () => undefined,
          (e: unknown) => e,
        );
    // Read before a write someone else made: refused, nothing written.
    const stale = now.replace(`"phase":"Promoted"`, `"phase":"Progressing"`);
    expect(stale).not.toBe(now);
    const refused = await write("{}", stale);
    expect(refused).toBeInstanceOf(VersoError);
    expect((refused as VersoError).code).toBe("CONTROLLER_STATUS_CONFLICT");
    expect(await read()).toBe(now);
    // Read as absent while it is there: refused too.
    expect(((await write("{}", null)) as VersoError).code).toBe("CONTROLLER_STATUS_CONFLICT");
    // Read right but refused for another reason (annotations over 256 KiB): not a conflict,
    // so the loop warns instead of deciding again for ever.
    const tooBig = await write("x".repeat(300_000), now);
    expect((tooBig as { code?: unknown } | undefined)?.code).toBe(422);
    expect(await read()).toBe(now);
    // Read right: written (the same text, so the promoted release is left as it is).
    expect(await write(now, now)).toBeUndefined();
    expect(await read()).toBe(now);
  });

  it("rolls back a release that answers 500 within one interval", async () => {
    const load = traffic(cluster, "cart");
    try {
      const started = await waitFor(
        "cart-v2 started",
        async () => {
          const s = await status("cart-v2");
          return s?.phase === "Progressing" || s?.phase === "Failed" ? s : undefined;
        },
        30_000,
        250,
      );
      expect(started.step).toBe(1);
      const failed = await phase("cart-v2", "Failed", 30_000);
      expect(failed.weight).toBe(0);
      expect(failed.reason).toBe("RolledBack");
      expect(failed.analysis?.reason).toBe("ErrorRateTooHigh");
      expect(failed.step).toBe(1);
      // Rolled back by the first analysis (still step 1, never advanced): within one interval.
      // Wall-clock time is not asserted here (benchmarks own timing); the step is the proof.
      const ev = await waitFor(
        "RolledBack event",
        async () =>
          (await eventsFor(client(), NS, "cart-v2")).find((e) => e.reason === "RolledBack"),
        15_000,
        250,
      );
      expect(ev?.type).toBe("Warning");
      const stream = await streamOf("cart");
      const t = await stream.until("cart table at 0%", (t) => t.release?.weight === 0, 10_000);
      expect(t.release?.version).toBe("v2");
      stream.close();
    } finally {
      await load.stop();
    }
  });

  it("holds a release that gets no traffic, and says so", async () => {
    const held = await waitFor(
      "idle-v2 held",
      async () => {
        const s = await status("idle-v2");
        return s?.reason === "Held" ? s : undefined;
      },
      30_000,
      250,
    );
    expect(held.phase).toBe("Progressing");
    expect(held.step).toBe(1);
    expect(held.weight).toBe(20);
    expect(held.analysis?.reason).toMatch(/NotEnoughTraffic|NoBaseline/);
    await sleep(7_000);
    const later = await status("idle-v2");
    expect(later?.phase).toBe("Progressing");
    expect(later?.step).toBe(1);
    expect(later?.analysis?.reason).toBe("NotEnoughTraffic");
    expect(later?.message).toContain("not enough traffic");
  });
});
