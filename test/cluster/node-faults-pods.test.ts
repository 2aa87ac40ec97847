/**
 * Fault drills on the real node, the pod side, under steady load from the host through the
 * app's ClusterIP with every request counted: one pod's proxy killed during a blue-green
 * switch; one pod's app crashing during a canary; a rolling update of the stable Deployment.
 * Each drill has its own namespace and prints what it sent, what failed and why
 * (docs/operations.md holds the numbers).
 */
import { describe, expect, it } from "vitest";
import { METRIC } from "../../shared/metric-names.ts";
import type { RoutingTable } from "../../shared/table.ts";
import { sample as scrape } from "../harness/metrics.ts";
import type { KubeClient } from "../harness/kubeClient.ts";
import { isReady } from "../harness/podStatus.ts";
import type { Pod } from "../harness/podTypes.ts";
import { sleep, waitFor } from "../harness/ports.ts";
import { annotate } from "./controllerFixtures.ts";
import { podsOf } from "./fixtures.ts";
import {
  NO_NODE,
  between,
  controllerPods,
  drillApp,
  killContainer,
  kubectlOk,
  load,
  proxyMetrics,
  readyPods,
  readyWatch,
  removeNamespace,
  routeStream,
  sample,
  summary,
  useNodeCluster,
} from "./nodeFixtures.ts";

const say = (line: string): void => void process.stderr.write(`[node-faults] ${line}\n`);
const isV2 = (p: Pod): boolean => p.metadata.labels?.["app.kubernetes.io/version"] === "v2";

/** Sum of one proxy series over some pods (a pod that does not answer adds 0). */
async function total(pods: Pod[], series: string): Promise<number> {
  let sum = 0;
  for (const p of pods) sum += scrape(await proxyMetrics(p), series);
  return sum;
}

/** Each proxy's routing-table revision, by pod name. */
async function revisions(pods: Pod[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const p of pods) out[p.metadata.name] = scrape(await proxyMetrics(p), METRIC.revision);
  return out;
}

/** Waits until sampling the app gives the release about `share` of the requests. */
async function shareInForce(url: string, share: number): Promise<void> {
  await waitFor(
    `release share ${share}`,
    async () => {
      const r = await sample(url, 200);
      const got = (r.byVersion.v2 ?? 0) / r.ok;
      return r.failed === 0 && Math.abs(got - share) < 0.12 ? true : undefined;
    },
    60_000,
    500,
  );
}

/** The pod as the API shows it now (its statuses), by name. */
async function current(client: KubeClient, ns: string, name: string): Promise<Pod | undefined> {
  return (await podsOf(client, ns)).find((p) => p.metadata.name === name);
}

describe.skipIf(NO_NODE !== undefined)(
  `real node: pod-side faults under load${NO_NODE ? ` (skipped: ${NO_NODE})` : ""}`,
  () => {
    const node = useNodeCluster();

    it("one pod's proxy killed during a blue-green switch: only requests on that pod fail, and the restarted proxy has the current table before it reports ready", async () => {
      const cluster = node.get();
      const client = cluster.cp.client;
      const ns = "fault-proxy";
      const { url, pods } = await drillApp(cluster, ns, {
        release: { "verso.dev/strategy": "blue-green" },
      });
      await shareInForce(url, 0);
      // The new colour, about to take every request.
      const victim = pods.find(isV2) as Pod;
      const others = pods.filter((p) => p !== victim);
      const watch = readyWatch(victim);
      const traffic = load(url, { concurrency: 4, maxMs: 180_000, max: 200_000 });
      await sleep(2_000);
      const r0 = traffic.report();

      // Revisions are the controller's clock (ms) when it built a table: every table built
      // after this holds the switch.
      const switchAskedAt = Date.now();
      await annotate(client, ns, "web-v2", { "verso.dev/promote": "true" });
      const killedAt = Date.now();
      killContainer(cluster, victim, "verso-proxy");
      const down = await watch.until("the proxy gone", killedAt, (r) => r.status !== 200);
      const up = await watch.until("the proxy ready again", killedAt, (r) => r.status === 200);
      // What the others route on at that moment: the switch's table, or a later one.
      const othersAtReady = await revisions(others);
      await waitFor(
        "every request on v2",
        async () => {
          const r = await sample(url, 50, 2);
          return (r.byVersion.v1 ?? 0) === 0 && r.ok === 50 ? true : undefined;
        },
        60_000,
        250,
      );
      await readyPods(client, ns, "app.kubernetes.io/name=web", 4);
      const r1 = traffic.report();
      await sleep(3_000);
      const report = await traffic.stop();
      await watch.stop();
      const restarted = await current(client, ns, victim.metadata.name);
      const restarts = restarted?.status?.initContainerStatuses?.find(
        (s) => s.name === "verso-proxy",
      )?.restartCount;
      const allTables = await revisions(
        await readyPods(client, ns, "app.kubernetes.io/name=web", 4),
      );
      // Each replica numbers the tables it builds by its own clock: the same table, told by
      // the two replicas, carries two revisions.
      const perReplica = await Promise.all(
        (await controllerPods(client)).map((p) =>
          routeStream(cluster, ns, "web", `${p.status?.podIP}:9443`),
        ),
      );
      const latest = await Promise.all(
        perReplica.map((s) => waitFor("a table", async () => s.entries[0]?.table, 10_000, 50)),
      );
      for (const s of perReplica) s.close();
      const contentOf = (t: RoutingTable): string => JSON.stringify({ ...t, revision: 0 });

      say(
        `proxy of ${victim.metadata.name} killed; /ready failed after ${down.at - killedAt} ms, ` +
          `200 again after ${up.at - killedAt} ms with routing ${up.routing} revision ${up.revision}`,
      );
      say(`others' revisions then: ${JSON.stringify(othersAtReady)}; restarts ${restarts}`);
      say(
        `/ready changes: ${JSON.stringify(watch.changes.map((c) => ({ ...c, at: c.at - killedAt })))}`,
      );
      say(`proxies' revisions at the end: ${JSON.stringify(allTables)}`);
      say(
        `the replicas' tables: revisions ${latest.map((t) => t.revision).join(", ")}, ` +
          `same content: ${new Set(latest.map(contentOf)).size === 1}`,
      );
      say(`switch + kill until all on v2 and the pod ready: ${summary(between(r0, r1))}`);
      say(`whole drill: ${summary(report)}`);

      expect(restarts).toBe(1);
      expect(up.routing).toBe("table");
      // Ready on the switch's table (or a later one), never on what it had before the kill.
      expect(up.revision).toBeGreaterThanOrEqual(switchAskedAt);
      for (const r of Object.values(othersAtReady)) expect(r).toBeGreaterThanOrEqual(switchAskedAt);
      // The same table from either replica, told with its own revision.
      expect(new Set(latest.map(contentOf)).size).toBe(1);
      for (const r of Object.values(allTables)) expect(latest.map((t) => t.revision)).toContain(r);
      // Connection-level failures on the killed pod only: no proxy answered with an error.
      for (const reason of Object.keys(report.errors)) expect(reason).not.toMatch(/^HTTP /);
      expect(report.failed).toBeLessThan(0.01 * report.sent);
      await removeNamespace(client, ns);
    }, 420_000);

    it("one pod's app crashes: its proxy reports not-ready, the endpoint leaves every table within a second, peers stop forwarding to it, 0 failed", async () => {
      const cluster = node.get();
      const client = cluster.cp.client;
      const ns = "fault-app";
      const { url, pods } = await drillApp(cluster, ns, {
        release: { "verso.dev/strategy": "canary", "verso.dev/weight": "50" },
      });
      await shareInForce(url, 0.5);
      // Both replicas' streams: a proxy routes on the tables of the one it is connected to,
      // and each numbers its tables by its own clock.
      const streams = await Promise.all(
        (await controllerPods(client)).map((p) =>
          routeStream(cluster, ns, "web", `${p.status?.podIP}:9443`),
        ),
      );
      await waitFor(
        "a table from each replica",
        async () => (streams.every((s) => s.entries.length > 0) ? true : undefined),
        10_000,
        50,
      );
      const victim = pods.find(isV2) as Pod;
      const endpoint = `${victim.status?.podIP}:15006`;
      const withVictim = (t: RoutingTable): boolean => t.endpoints.v2?.includes(endpoint) ?? false;
      const tablesSince = (t: number) =>
        streams
          .flatMap((s) => s.entries)
          .filter((e) => e.at >= t)
          .sort((a, b) => a.at - b.at);
      const others = pods.filter((p) => p !== victim);
      const watch = readyWatch(victim);
      const traffic = load(url, { concurrency: 4, maxMs: 180_000, max: 200_000 });
      await sleep(2_000);
      // The pod's Ready condition as the API shows it, polled (not the kubelet's own time).
      let podNotReadyAt = 0;
      let polling = true;
      const podPoll = (async () => {
        const deadline = Date.now() + 120_000;
        while (polling && Date.now() < deadline && podNotReadyAt === 0) {
          const p = await current(client, ns, victim.metadata.name);
          if (p && !isReady(p)) podNotReadyAt = Date.now();
          await sleep(100);
        }
      })();
      const r0 = traffic.report();
      const retriesBefore = await total(others, METRIC.retries);

      const killedAt = Date.now();
      killContainer(cluster, victim, "app");
      const notReady = await watch.until("proxy not ready", killedAt, (r) => r.status === 503);
      const out = await waitFor(
        "a table without the crashed pod",
        async () => tablesSince(killedAt).find((e) => !withVictim(e.table)),
        60_000,
        10,
      );
      const everyProxy = await waitFor(
        "every other proxy on a table without it",
        async () => {
          const without = new Set(
            tablesSince(killedAt)
              .filter((e) => !withVictim(e.table))
              .map((e) => e.table.revision),
          );
          const r = await revisions(others);
          return Object.values(r).every((v) => without.has(v)) ? Date.now() : undefined;
        },
        10_000,
        20,
      );
      const retriesOut = await total(others, METRIC.retries);
      const back = await waitFor(
        "the pod back in a table",
        async () => tablesSince(out.at).find((e) => withVictim(e.table)),
        120_000,
        50,
      );
      // Sampled as the table taking it back arrives: no peer tried it while it was out.
      const retriesBack = await total(others, METRIC.retries);
      polling = false;
      await podPoll;
      await sleep(2_000);
      const r1 = traffic.report();
      const report = await traffic.stop();
      await watch.stop();
      for (const s of streams) s.close();
      const appGone = scrape(await proxyMetrics(victim), METRIC.upstreamErrors, {
        kind: "app-connect",
      });

      const since = (t: number): string => `${t - killedAt} ms`;
      say(
        `app of ${victim.metadata.name} killed: proxy /ready 503 after ${since(notReady.at)} ` +
          `(appAccepting ${notReady.appAccepting}); pod NotReady seen via the API after ` +
          `${podNotReadyAt ? since(podNotReadyAt) : "(missed)"}; table without it after ` +
          `${since(out.at)} (revision ${out.table.revision}); every other proxy on it after ` +
          `${since(everyProxy)}; back in a table after ${since(back.at)}`,
      );
      say(
        `peers' retries: ${retriesBefore} before, ${retriesOut} once it was out, ` +
          `${retriesBack} when it came back; requests that met the dead app at its proxy ` +
          `(failed over): ${appGone}`,
      );
      say(`crash to back in: ${summary(between(r0, r1))}`);
      say(`whole drill: ${summary(report)}`);

      expect(notReady.appAccepting).toBe(false);
      if (podNotReadyAt > 0) expect(out.at - podNotReadyAt).toBeLessThan(1_000);
      expect(everyProxy - out.at).toBeLessThan(1_000);
      expect(retriesBack).toBe(retriesOut);
      expect(report.failed, JSON.stringify(report.errors)).toBe(0);
      await removeNamespace(client, ns);
    }, 420_000);

    it("a rolling update of the stable Deployment (new env) during a canary: 0 failed", async () => {
      const cluster = node.get();
      const client = cluster.cp.client;
      const ns = "fault-rolling";
      const { url } = await drillApp(cluster, ns, {
        release: { "verso.dev/strategy": "canary", "verso.dev/weight": "30" },
      });
      await shareInForce(url, 0.3);
      const before = new Set(
        (await podsOf(client, ns, "app.kubernetes.io/version=v1")).map((p) => p.metadata.name),
      );
      const traffic = load(url, { concurrency: 4, maxMs: 240_000, max: 300_000 });
      await sleep(2_000);
      const startedAt = Date.now();
      // A new pod template (not a restart annotation): every stable pod is replaced.
      await kubectlOk(cluster, ["-n", ns, "set", "env", "deployment/web-v1", "DRILL=rolled"]);
      await kubectlOk(cluster, [
        ...["-n", ns, "rollout", "status", "deployment/web-v1"],
        "--timeout=180s",
      ]);
      await waitFor(
        "old v1 pods gone",
        async () => {
          const v1 = await podsOf(client, ns, "app.kubernetes.io/version=v1");
          return v1.length === 2 && v1.every((p) => !before.has(p.metadata.name))
            ? true
            : undefined;
        },
        180_000,
        500,
      );
      const tookMs = Date.now() - startedAt;
      await sleep(2_000);
      const report = await traffic.stop();

      say(`rolling update of web-v1 (${(tookMs / 1000).toFixed(1)} s): ${summary(report)}`);

      expect(report.failed, JSON.stringify(report.errors)).toBe(0);
      expect(report.byVersion.v1).toBeGreaterThan(0);
      expect(report.byVersion.v2).toBeGreaterThan(0);
      await removeNamespace(client, ns);
    }, 420_000);
  },
);
