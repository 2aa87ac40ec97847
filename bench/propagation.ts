/**
 * Propagation benchmark (not a test): time from a `verso.dev/weight` change on a Deployment
 * (the PATCH to a real kube-apiserver) to the new table *applied* in N subscribed proxies.
 * The controller runs in the real webhook process (its own event loop); the N proxies are
 * the sidecar's own stream client and TableStore, in this process, each with its own
 * TokenRequest token, so every connection passes a real TokenReview.
 *
 *   node bench/propagation.ts [--clients 10,200] [--changes 10] [--seconds 120]
 *
 * Prints p50/p99/max over every (change, proxy) pair, per N. Bounded by count and time.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { LABEL } from "../shared/annotations.ts";
import { createLogger } from "../shared/log.ts";
import { subscribeRoutes, type StreamSource } from "../sidecar/config/stream-source.ts";
import { TableStore } from "../sidecar/config/store.ts";
import { startControlPlane } from "../test/harness/controlPlane.ts";
import { sleep, waitFor } from "../test/harness/ports.ts";
import { startWebhook } from "../test/harness/webhook.ts";
import { serviceAccountToken } from "../test/cluster/controllerFixtures.ts";
import { createNamespace, deployment } from "../test/cluster/fixtures.ts";

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "10,200" },
    changes: { type: "string", default: "10" },
    seconds: { type: "string", default: "120" },
  },
});
const sizes = values.clients.split(",").map(Number);
const changes = Number(values.changes);
const deadline = performance.now() + Number(values.seconds) * 1000;
const NS = "bench";

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

const cp = await startControlPlane({ log: () => {} });
const dir = mkdtempSync(join(tmpdir(), "verso-prop-"));
const webhook = await startWebhook({ cp, controller: true, log: () => {} });
const log = createLogger("bench-proxy", "error");
try {
  await createNamespace(cp.client, NS, { [LABEL.injection]: "enabled" });
  // No kubelet: the Deployment alone makes the app's table (no endpoints), which is all
  // a weight change needs.
  await cp.client.create(`/apis/apps/v1/namespaces/${NS}/deployments`, {
    ...(deployment("shop-v2", "v2", 0) as { metadata: object }),
    metadata: {
      name: "shop-v2",
      annotations: { "verso.dev/strategy": "canary", "verso.dev/weight": "0" },
    },
  });
  let weight = 0;
  for (const n of sizes) {
    const applied: Map<number, number>[] = [];
    const sources: StreamSource[] = [];
    for (let i = 0; i < n; i++) {
      const tokenFile = join(dir, `token-${n}-${i}`);
      writeFileSync(tokenFile, await serviceAccountToken(cp.client, NS));
      const seen = new Map<number, number>();
      applied.push(seen);
      const store = new TableStore({
        app: "shop",
        version: "v1",
        fileKey: undefined,
        allowDerivedKey: false,
        log,
        onChange: (t) => {
          const w = t.release?.weight;
          if (w !== undefined && !seen.has(w)) seen.set(w, performance.now());
        },
      });
      sources.push(
        subscribeRoutes({
          controllerUrl: webhook.url,
          namespace: NS,
          app: "shop",
          tokenFile,
          ca: webhook.ca.cert,
          store,
          log,
        }),
      );
    }
    await waitFor(
      `${n} proxies with a table`,
      async () => (applied.every((s) => s.has(weight)) ? true : undefined),
      60_000,
      50,
    );
    const samples: number[] = [];
    for (let c = 0; c < changes && performance.now() < deadline; c++) {
      weight = weight >= 90 ? 1 : weight + 1;
      for (const s of applied) s.delete(weight);
      const t0 = performance.now();
      await cp.client.patch(`/apis/apps/v1/namespaces/${NS}/deployments/shop-v2`, {
        metadata: { annotations: { "verso.dev/weight": String(weight) } },
      });
      await waitFor(
        `weight ${weight} in ${n} proxies`,
        async () => (applied.every((s) => s.has(weight)) ? true : undefined),
        10_000,
        5,
      );
      for (const s of applied) samples.push((s.get(weight) as number) - t0);
      await sleep(200);
    }
    samples.sort((a, b) => a - b);
    console.log(
      `N=${n} proxies, ${samples.length / n} changes: annotation PATCH -> table applied p50 ${pct(samples, 50).toFixed(1)}ms p99 ${pct(samples, 99).toFixed(1)}ms max ${(samples.at(-1) ?? NaN).toFixed(1)}ms`,
    );
    for (const s of sources) s.close();
    await sleep(500);
  }
} finally {
  await webhook.stop();
  await cp.stop();
  rmSync(dir, { recursive: true, force: true });
}
