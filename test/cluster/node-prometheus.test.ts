/**
 * `--metrics-source prometheus` on the real node against a real Prometheus server (Debian's):
 * it runs on the host with the scrape config deploy/observability/ ships (file discovery fed
 * from the API's pod list, the shipped relabelling unchanged), the installed controller is
 * pointed at it by patching its Deployment, and releases are judged on PromQL over what it
 * scraped from the proxies. A healthy canary is promoted, one answering 500s is rolled back on
 * the error rate Prometheus measured (the proxies' fast cut-off off, so the analysis decides).
 * Prometheus' query log shows what the controller asked (docs/controller.md quotes it); each
 * decision is checked by asking Prometheus the same queries at the same instants.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { NodeCluster } from "../harness/node/cluster.ts";
import { setControllerFlags } from "../harness/node/controllerArgs.ts";
import { startNodePrometheus, type NodePrometheus } from "../harness/node/prometheus.ts";
import { waitFor } from "../harness/ports.ts";
import { prometheusBinary, type LoggedQuery } from "../harness/prometheus.ts";
import { eventsFor, waitForPhase, type StatusAnnotation } from "./controllerFixtures.ts";
import { createNamespace, deployment } from "./fixtures.ts";
import {
  NO_NODE,
  appService,
  applyIn,
  clusterIp,
  load,
  readyPods,
  removeNamespace,
  sample,
  statusTrail,
  stepSequence,
  summary,
  useNodeCluster,
} from "./nodeFixtures.ts";

const say = (line: string): void => void process.stderr.write(`[node-prometheus] ${line}\n`);
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

const SKIP =
  NO_NODE ?? (prometheusBinary() ? undefined : "no prometheus binary (apt-get install prometheus)");

/** The release policy both canaries use; 10 s intervals are the windows of the queries. */
const RELEASE = {
  "verso.dev/strategy": "canary",
  "verso.dev/steps": "20,50,100",
  "verso.dev/interval": "10s",
  "verso.dev/max-error-rate": "5",
  "verso.dev/min-requests": "20",
};

/**
 * The PromQL the controller is expected to issue for release `v2` of app `web` in `ns`, spelled
 * out here (not taken from the controller's code) so a change to it shows in this test.
 */
function expectedQueries(ns: string): { release: string[]; stable: string[] } {
  const side = (op: string): string[] => {
    const sel = `namespace="${ns}",app="web",version${op}"v2"`;
    return [
      `sum(increase(verso_requests_total{${sel}}[10s]))`,
      `sum(increase(verso_requests_total{${sel},code_class="5xx"}[10s]))`,
      `histogram_quantile(0.99, sum by (le) (rate(verso_request_duration_seconds_bucket{${sel}}[10s])))`,
    ];
  };
  return { release: side("="), stable: side("!=") };
}

/** Service `web`, `web-v1` (stable) and `web-v2` with RELEASE, one pod each, all ready. */
async function canaryApp(
  cluster: NodeCluster,
  ns: string,
  v2: { annotations: Record<string, string>; env?: Record<string, string> },
): Promise<string> {
  const client = cluster.cp.client;
  await createNamespace(client, ns, { "verso.dev/injection": "enabled" });
  await applyIn(
    cluster,
    ns,
    appService("web"),
    deployment("web-v1", "v1", 1, { app: "web" }),
    deployment("web-v2", "v2", 1, { app: "web", ...v2 }),
  );
  await readyPods(client, ns, "app.kubernetes.io/name=web", 2, 180_000);
  return `http://${await clusterIp(client, ns, "web")}/`;
}

type Analysis = NonNullable<StatusAnnotation["analysis"]> & { at?: string };

/** The distinct analyses a status trail saw, in order. */
function analysesOf(trail: readonly StatusAnnotation[]): Analysis[] {
  const seen = new Map<string, Analysis>();
  for (const s of trail) {
    const a = s.analysis as Analysis | undefined;
    if (a?.at !== undefined) seen.set(a.at, a);
  }
  return [...seen.values()];
}

/**
 * The controller's queries (every client but the test's own host address) about `ns`, and
 * the last evaluation of `query` before `atMs`: what an analysis made at `atMs` read.
 */
function controllerQueries(
  np: NodePrometheus,
  hostIp: string,
  ns: string,
): { all: LoggedQuery[]; lastBefore(query: string, atMs: number): LoggedQuery | undefined } {
  const all = np.prom
    .queryLog()
    .filter((q) => q.clientIp !== hostIp && q.query.includes(`namespace="${ns}"`));
  return {
    all,
    lastBefore: (query, atMs) => all.filter((q) => q.query === query && q.at <= atMs).at(-1),
  };
}

/** Re-asks Prometheus a logged query at its own evaluation time. */
async function reask(np: NodePrometheus, q: LoggedQuery | undefined): Promise<number> {
  if (q === undefined) throw new Error("the controller never asked that");
  return (await np.prom.query(q.query, q.at))[0]?.value ?? 0;
}

describe.skipIf(SKIP !== undefined)(
  `real node: canary analysis on a real Prometheus${SKIP ? ` (skipped: ${SKIP})` : ""}`,
  () => {
    const node = useNodeCluster();
    let np: NodePrometheus | undefined;
    let hostIp = "";
    afterAll(async () => {
      await np?.stop();
    });
    const prom = (): NodePrometheus => {
      if (np === undefined) throw new Error("Prometheus did not start");
      return np;
    };

    it("scrapes the cluster through the shipped relabelling, and the controller is switched to it", async () => {
      const cluster = node.get();
      hostIp = cluster.sandbox.net.hostIp;
      const t0 = Date.now();
      np = await startNodePrometheus(cluster, { intervalSeconds: 1 });
      const started = Date.now() - t0;
      // Both controller replicas scraped over HTTPS: the verso-controller job kept them.
      await waitFor(
        "the controller replicas scraped",
        async () => {
          const up = await prom().prom.query('sum(up{job="verso-controller"})');
          return up[0]?.value === 2 ? true : undefined;
        },
        60_000,
        500,
      );
      const t1 = Date.now();
      await setControllerFlags(cluster, {
        "metrics-source": "prometheus",
        "prometheus-url": prom().url,
      });
      const switched = Date.now() - t1;
      say(
        `Prometheus ${prom().url} ready in ${seconds(started)}; controller switched in ${seconds(switched)}`,
      );
      // The new replicas are scraped too (discovery follows the pod list).
      await waitFor(
        "the new controller replicas scraped, one leader",
        async () => {
          const leader = await prom().prom.query(
            'sum(verso_controller_leader{job="verso-controller"})',
          );
          const up = await prom().prom.query('sum(up{job="verso-controller"})');
          return leader[0]?.value === 1 && up[0]?.value === 2 ? true : undefined;
        },
        60_000,
        500,
      );
    }, 420_000);

    it("promotes a healthy canary on PromQL over the scraped series", async () => {
      const cluster = node.get();
      const client = cluster.cp.client;
      const ns = "prom-ok";
      const url = await canaryApp(cluster, ns, { annotations: RELEASE });
      const t0 = Date.now();
      const trail = statusTrail(client, ns, "web-v2");
      const traffic = load(url, { concurrency: 4, maxMs: 300_000, max: 300_000 });
      const promoted = await waitForPhase(client, ns, "web-v2", "Promoted", 240_000);
      const tookMs = Date.now() - t0;
      const report = await traffic.stop();
      const statuses = await trail.stop();
      // The trail may stop before its poll sees the promotion: that status ends it.
      const analyses = analysesOf([...statuses, promoted]);
      const asked = controllerQueries(prom(), hostIp, ns);
      const expected = expectedQueries(ns);

      say(`healthy canary promoted in ${seconds(tookMs)}: ${summary(report)}`);
      for (const a of analyses) say(`analysis: ${a.reason} ${JSON.stringify(a.measured)}`);
      say(`the controller asked (${asked.all.length} queries, from ${asked.all[0]?.clientIp}):`);
      for (const q of new Set(asked.all.map((q) => q.query))) say(`  ${q}`);

      expect(report.failed, JSON.stringify(report.errors)).toBe(0);
      expect(stepSequence([...statuses, promoted])).toEqual([1, 2, 3]);
      expect(promoted.weight).toBe(100);
      // Every interval was judged on Prometheus' numbers: passed, or held while too little was
      // scraped yet (the first seconds of a target's life).
      for (const a of analyses)
        expect(["GatesPassed", "LastStepPassed", "NotEnoughTraffic"]).toContain(a.reason);
      const last = analyses.at(-1);
      expect(last?.reason).toBe("LastStepPassed");
      expect(last?.measured.releaseRequests).toBeGreaterThanOrEqual(20);
      expect(last?.measured.releaseErrorRate).toBe(0);

      // The controller asked exactly these six, for each interval it judged.
      expect(new Set(asked.all.map((q) => q.query))).toEqual(
        new Set([...expected.release, ...expected.stable]),
      );
      expect(asked.all.length).toBeGreaterThanOrEqual(6 * analyses.length);
      // Its decision matches what Prometheus answers at the instant it asked.
      const at = Date.parse(last?.at ?? "");
      const requests = await reask(prom(), asked.lastBefore(expected.release[0]!, at + 1_000));
      const errors = await reask(prom(), asked.lastBefore(expected.release[1]!, at + 1_000));
      say(`re-asked at the controller's instant: ${requests} requests, ${errors} errors`);
      expect(errors).toBe(0);
      expect(Math.abs(requests - (last?.measured.releaseRequests ?? 0))).toBeLessThanOrEqual(
        Math.max(3, 0.1 * requests),
      );

      // Prometheus' own view: both proxies scraped with the labels the relabelling gives, the
      // app's own port dropped by it, and the series per version.
      const { activeTargets, droppedTargets } = await prom().prom.targets();
      const proxies = activeTargets.filter(
        (t) => t.scrapePool === "verso-proxies" && t.labels.namespace === ns,
      );
      expect(proxies.map((t) => t.health)).toEqual(["up", "up"]);
      for (const t of proxies) {
        expect(t.labels.pod).toMatch(/^web-v[12]-/);
        expect(t.labels).not.toHaveProperty("app");
        expect(t.discoveredLabels.__meta_kubernetes_pod_container_init).toBe("true");
      }
      const appPorts = droppedTargets.filter(
        (t) =>
          t.discoveredLabels.__meta_kubernetes_namespace === ns &&
          t.discoveredLabels.__meta_kubernetes_pod_container_port_name === "http",
      );
      expect(appPorts.length).toBeGreaterThanOrEqual(2);
      const byVersion = await prom().prom.query(
        `sum by (version) (verso_requests_total{namespace="${ns}",app="web"})`,
      );
      const served = Object.fromEntries(byVersion.map((s) => [s.metric.version, s.value]));
      say(`verso_requests_total by version in Prometheus: ${JSON.stringify(served)}`);
      expect(served.v1).toBeGreaterThan(0);
      expect(served.v2).toBeGreaterThan(0);
      expect(Object.keys(served).sort()).toEqual(["v1", "v2"]);
      await removeNamespace(client, ns);
    }, 600_000);

    it("rolls back a canary answering 500s on the error rate Prometheus measured", async () => {
      const cluster = node.get();
      const client = cluster.cp.client;
      const ns = "prom-bad";
      const url = await canaryApp(cluster, ns, {
        // The proxies' cut-off would roll this back within five failures: off, the analysis decides.
        annotations: { ...RELEASE, "verso.dev/cutoff-failures": "0" },
        env: { ERROR_RATE: "0.5" },
      });
      const t0 = Date.now();
      const trail = statusTrail(client, ns, "web-v2");
      const traffic = load(url, { concurrency: 4, maxMs: 300_000, max: 300_000 });
      const failed = await waitForPhase(client, ns, "web-v2", "Failed", 180_000);
      const tookMs = Date.now() - t0;
      // The rollback's table reaches every proxy: then stable serves everything.
      await waitFor(
        "all traffic on v1",
        async () => {
          const r = await sample(url, 50, 2);
          return r.ok === 50 && (r.byVersion.v2 ?? 0) === 0 ? true : undefined;
        },
        60_000,
        500,
      );
      const report = await traffic.stop();
      const statuses = await trail.stop();
      const analyses = analysesOf([...statuses, failed]);
      const events = await eventsFor(client, ns, "web-v2");
      const rolledBack = events.find((e) => e.reason === "RolledBack");
      const asked = controllerQueries(prom(), hostIp, ns);
      const expected = expectedQueries(ns);
      const measured = failed.analysis?.measured ?? {};

      say(`failing canary rolled back in ${seconds(tookMs)}: ${summary(report)}`);
      for (const a of analyses) say(`analysis: ${a.reason} ${JSON.stringify(a.measured)}`);
      say(`status: ${failed.reason}: ${failed.message}`);
      say(`event: ${rolledBack?.type} ${rolledBack?.reason}: ${rolledBack?.message}`);

      expect(failed.reason).toBe("RolledBack");
      expect(failed.weight).toBe(0);
      expect(failed.analysis?.reason).toBe("ErrorRateTooHigh");
      expect(stepSequence(statuses)).toEqual([1]);
      expect(measured.releaseErrorRate).toBeGreaterThan(5);
      const rate = String(measured.releaseErrorRate);
      expect(failed.message).toContain(`error rate ${rate}% is above the maximum 5%`);
      expect(rolledBack?.type).toBe("Warning");
      expect(rolledBack?.message).toContain(`error rate ${rate}%`);

      // The same queries at the controller's instant give the same verdict and about the same rate.
      const at = Date.parse((failed.analysis as Analysis | undefined)?.at ?? "");
      const requests = await reask(prom(), asked.lastBefore(expected.release[0]!, at + 1_000));
      const errors = await reask(prom(), asked.lastBefore(expected.release[1]!, at + 1_000));
      const reRate = (100 * errors) / requests;
      say(`re-asked at the controller's instant: ${errors} of ${requests} = ${reRate.toFixed(3)}%`);
      expect(reRate).toBeGreaterThan(5);
      expect(Math.abs(reRate - (measured.releaseErrorRate ?? 0))).toBeLessThan(5);
      expect(new Set(asked.all.map((q) => q.query))).toEqual(
        new Set([...expected.release, ...expected.stable]),
      );
      // Prometheus holds the 5xx series the verdict came from; stable served none.
      const fives = await prom().prom.query(
        `sum by (version) (verso_requests_total{namespace="${ns}",app="web",code_class="5xx"})`,
      );
      expect(fives.map((s) => s.metric.version)).toEqual(["v2"]);
      expect(fives[0]?.value).toBeGreaterThan(0);
      // The load saw the release's 500s until the rollback.
      expect(report.errors["HTTP 500"]).toBeGreaterThan(0);
      await removeNamespace(client, ns);
    }, 600_000);
  },
);
