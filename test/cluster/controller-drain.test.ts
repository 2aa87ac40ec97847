/**
 * A controller replica (the webhook process) stopped with SIGTERM, against a real apiserver:
 * it gives up the Lease at once, keeps watching and streaming for its drain delay, then ends
 * its route streams cleanly when its listener closes and exits without waiting for the grace.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABEL } from "../../shared/annotations.ts";
import { startControlPlane, type ControlPlane } from "../harness/controlPlane.ts";
import { waitFor } from "../harness/ports.ts";
import { startWebhook, type Webhook } from "../harness/webhook.ts";
import { leaseHolder, openStream, serviceAccountToken } from "./controllerFixtures.ts";
import { createNamespace, deployment } from "./fixtures.ts";

const NS = "drain";
const DRAIN_DELAY_MS = 2_000;
/** webhook/admission/server.ts: what requests in flight get after the listener closes. */
const GRACE_MS = 5_000;

describe("controller: a replica stopped with SIGTERM", () => {
  let cp: ControlPlane;
  let webhook: Webhook | undefined;
  const holder = (): Promise<string | undefined> => leaseHolder(cp.client);

  beforeAll(async () => {
    cp = await startControlPlane();
    await createNamespace(cp.client, NS, { [LABEL.injection]: "enabled" });
    await cp.client.create(
      `/apis/apps/v1/namespaces/${NS}/deployments`,
      deployment("shop-v1", "v1"),
    );
    webhook = await startWebhook({
      cp,
      controller: true,
      // After the harness's own --drain-delay 0: the last one wins.
      args: ["--leader-identity", "draining", "--drain-delay", `${DRAIN_DELAY_MS}ms`],
    });
  });

  afterAll(async () => {
    await webhook?.stop();
    await cp?.stop();
  });

  it("releases the Lease at once, streams tables through the drain delay, then ends its streams cleanly and exits", async () => {
    const hook = webhook!;
    await waitFor(
      "the replica holds the Lease",
      async () => ((await holder()) === "draining" ? true : undefined),
      30_000,
    );
    const token = await serviceAccountToken(cp.client, NS);
    const stream = await waitFor(
      "route stream",
      () => openStream(hook.url, hook.ca.cert, NS, "shop", token),
      30_000,
      500,
    );
    try {
      await stream.until("the table on connect", (t) => t.app === "shop", 30_000);

      const signalled = Date.now();
      process.kill(hook.process.pid, "SIGTERM");
      await waitFor(
        "the Lease released",
        async () => ((await holder()) === undefined ? true : undefined),
        DRAIN_DELAY_MS,
        50,
      );
      // A change made during the delay reaches the stream: the watches still run. (Received on
      // the stream means sent before it ended, and it ends only when the listener closes.)
      await cp.client.create(
        `/apis/apps/v1/namespaces/${NS}/deployments`,
        deployment("shop-v2", "v2", 1, {
          annotations: { "verso.dev/strategy": "canary", "verso.dev/weight": "10" },
        }),
      );
      const t = await stream.until(
        "the release created during the drain",
        (t) => t.release?.version === "v2",
        DRAIN_DELAY_MS + GRACE_MS,
      );
      expect(t.release).toEqual({
        version: "v2",
        strategy: "canary",
        weight: 10,
        cutoffFailures: 5,
      });

      // The listener closes: the response is finished (EOF), not cut.
      expect(await stream.ended).toBe("end");
      expect(Date.now() - signalled).toBeGreaterThanOrEqual(DRAIN_DELAY_MS - 50);
      expect(await hook.process.exited).toEqual({ code: 0, signal: null });
      // Well before delay + grace, which the open stream used to hold the process for.
      expect(Date.now() - signalled).toBeLessThan(DRAIN_DELAY_MS + GRACE_MS / 2);
      const log = readFileSync(hook.process.logFile, "utf8");
      expect(log).toContain("ending route streams");
      expect(log).not.toContain("grace over");
    } finally {
      stream.close();
    }
  });
});
