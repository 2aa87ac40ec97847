/**
 * The controller's own release series and a blue-green switch-back on the real node, under
 * steady load from the host through the app's ClusterIP with every answer stamped with when it
 * arrived and who served it:
 * - `verso_release_weight{kind="actual"}` (the share the release served over the interval the
 *   leader last measured) against what the client counted over the same window;
 * - an automated blue-green whose new colour starts failing after the switch is switched back,
 *   and the only failed requests are the new colour's own 500s.
 */
import { describe, expect, it } from "vitest";
import type { NodeCluster } from "../harness/node/cluster.ts";
import { sleep, waitFor } from "../harness/ports.ts";
import { eventsFor, statusOf, waitForPhase, type StatusAnnotation } from "./controllerFixtures.ts";
import { createNamespace, deployment } from "./fixtures.ts";
import {
  NO_NODE,
  appService,
  applyIn,
  clusterIp,
  controllerGet,
  controllerPods,
  controllerTls,
  kubectlOk,
  readyPods,
  removeNamespace,
  statusTrail,
  useNodeCluster,
} from "./nodeFixtures.ts";

const say = (line: string): void => void process.stderr.write(`[node-release-metrics] ${line}\n`);

/** One answer the client got: when (epoch ms), and the version that served it. */
interface Answer {
  at: number;
  version: string;
}

interface StampedLoad {
  readonly answers: Answer[];
  /** Failures by reason: `HTTP <status> <x-app-version or "no-app">`, or the error code. */
  readonly errors: Record<string, number>;
  sent(): number;
  stop(): Promise<void>;
}

/**
 * `concurrency` workers GET `url` back to back (5 s timeout, no retry), each answer kept with
 * its arrival time; a failure keeps its status and which app version (if any) answered it.
 */
function stampedLoad(url: string, { concurrency = 4, maxMs = 300_000 } = {}): StampedLoad {
  const answers: Answer[] = [];
  const errors: Record<string, number> = {};
  const deadline = Date.now() + maxMs;
  let sent = 0;
  let stopped = false;
  const fail = (reason: string): void => void (errors[reason] = (errors[reason] ?? 0) + 1);
  const worker = async (): Promise<void> => {
    while (!stopped && Date.now() < deadline) {
      sent++;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
        const text = await res.text();
        if (res.status !== 200) {
          fail(`HTTP ${res.status} ${res.headers.get("x-app-version") ?? "no-app"}`);
          continue;
        }
        const version = (JSON.parse(text) as { version?: string }).version ?? "?";
        answers.push({ at: Date.now(), version });
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause;
        fail(cause?.code ?? (error as Error).name);
        await sleep(20);
      }
    }
  };
  const running = Promise.all(Array.from({ length: concurrency }, worker));
  return {
    answers,
    errors,
    sent: () => sent,
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

/** What the client counted in (from, to]: answers by version and v2's share in percent. */
function windowOf(
  answers: readonly Answer[],
  from: number,
  to: number,
): { total: number; byVersion: Record<string, number>; share: number } {
  const byVersion: Record<string, number> = {};
  let total = 0;
  for (const a of answers) {
    if (a.at <= from || a.at > to) continue;
    total++;
    byVersion[a.version] = (byVersion[a.version] ?? 0) + 1;
  }
  return { total, byVersion, share: total === 0 ? NaN : (100 * (byVersion.v2 ?? 0)) / total };
}

/** `verso_release_weight{namespace,app="web",version="v2",kind}`, if the text has the series. */
function releaseWeight(text: string, ns: string, kind: "actual" | "desired"): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith("verso_release_weight{")) continue;
    const want = [`namespace="${ns}"`, 'app="web"', 'version="v2"', `kind="${kind}"`];
    if (want.every((l) => line.includes(l))) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return undefined;
}

/** Every ready controller replica's /metrics over its TLS, by pod name. */
async function controllerMetrics(cluster: NodeCluster): Promise<Map<string, string>> {
  const client = cluster.cp.client;
  const tls = await controllerTls(client);
  const out = new Map<string, string>();
  for (const p of await controllerPods(client)) {
    const res = await controllerGet(`https://${p.status?.podIP}:9443/metrics`, tls);
    if (res.status === 200) out.set(p.metadata.name, res.body);
  }
  return out;
}

/** The series from whichever replica has it (the leader writes them), with that replica. */
async function weightsOf(
  cluster: NodeCluster,
  ns: string,
): Promise<{ pod?: string; actual?: number; desired?: number }> {
  for (const [pod, text] of await controllerMetrics(cluster)) {
    const actual = releaseWeight(text, ns, "actual");
    const desired = releaseWeight(text, ns, "desired");
    if (actual !== undefined || desired !== undefined) return { pod, actual, desired };
  }
  return {};
}

type Analysis = NonNullable<StatusAnnotation["analysis"]> & { at?: string };

/** When each distinct analysis a status trail saw was made (epoch ms), in order. */
function analysisTimes(trail: readonly StatusAnnotation[]): { at: number; a: Analysis }[] {
  const seen = new Map<string, Analysis>();
  for (const s of trail) {
    const a = s.analysis as Analysis | undefined;
    if (a?.at !== undefined) seen.set(a.at, a);
  }
  return [...seen.entries()].map(([at, a]) => ({ at: Date.parse(at), a }));
}

/** Service `web`, `web-v1` (stable, 2 replicas) and `web-v2` with `release`, all ready. */
async function app(
  cluster: NodeCluster,
  ns: string,
  release: Record<string, string>,
  v2 = 1,
): Promise<string> {
  const client = cluster.cp.client;
  await createNamespace(client, ns, { "verso.dev/injection": "enabled" });
  await applyIn(
    cluster,
    ns,
    appService("web"),
    deployment("web-v1", "v1", 2, { app: "web" }),
    deployment("web-v2", "v2", v2, { app: "web", annotations: release }),
  );
  await readyPods(client, ns, "app.kubernetes.io/name=web", 2 + v2, 180_000);
  return `http://${await clusterIp(client, ns, "web")}/`;
}

const pts = (n: number | undefined): string => (n === undefined ? "-" : `${n.toFixed(2)} %`);

describe.skipIf(NO_NODE !== undefined)(
  `real node: the controller's release metrics and a blue-green switch-back${NO_NODE ? ` (skipped: ${NO_NODE})` : ""}`,
  () => {
    const node = useNodeCluster();

    it("actual weight agrees with the client's count within 2 percentage points", async () => {
      const cluster = node.get();
      const client = cluster.cp.client;
      // The canary the brief names (a fixed weight), and the same weight held by an automated
      // canary (its first step, never enough requests to judge: Held each interval).
      const manualNs = "metrics-manual";
      const heldNs = "metrics-held";
      const [manualUrl, heldUrl] = await Promise.all([
        app(cluster, manualNs, {
          "verso.dev/strategy": "canary",
          "verso.dev/weight": "30",
          "verso.dev/interval": "10s",
        }),
        app(cluster, heldNs, {
          "verso.dev/strategy": "canary",
          "verso.dev/steps": "30,100",
          "verso.dev/interval": "10s",
          "verso.dev/min-requests": "1000000",
        }),
      ]);
      const trail = statusTrail(client, heldNs, "web-v2", 100);
      const manual = stampedLoad(manualUrl, { concurrency: 3 });
      const held = stampedLoad(heldUrl, { concurrency: 3 });
      try {
        // At least three analyses of the held canary: two full intervals between them.
        await waitFor(
          "three analyses of the held canary",
          async () => (analysisTimes(trail.trail).length >= 3 ? true : undefined),
          90_000,
          250,
        );
        // The metric and the window it covers: read the series between two reads of the
        // status that show the same last analysis, so both speak of the same interval.
        const read = await waitFor(
          "the series read within one interval",
          async () => {
            const before = analysisTimes(trail.trail).at(-1)?.at;
            const held = await weightsOf(cluster, heldNs);
            const s = await statusOf(client, heldNs, "web-v2");
            const last = Date.parse((s?.analysis as Analysis | undefined)?.at ?? "");
            return before === last ? { held, last } : undefined;
          },
          30_000,
          200,
        );
        const times = analysisTimes(trail.trail).filter((t) => t.at <= read.last);
        const prev = times.at(-2)?.at ?? NaN;
        const counted = windowOf(held.answers, prev, read.last);
        say(
          `held canary (leader ${read.held.pod}): desired ${pts(read.held.desired)}, actual ${pts(read.held.actual)}; ` +
            `client over the same interval (${((read.last - prev) / 1000).toFixed(1)} s): ` +
            `${counted.total} answers ${JSON.stringify(counted.byVersion)} -> v2 ${pts(counted.share)}; ` +
            `analysis ${JSON.stringify(times.at(-1)?.a.measured)}`,
        );

        // The fixed-weight canary after the same time under load (well over two intervals).
        const manualRead = await weightsOf(cluster, manualNs);
        const now = Date.now();
        const manualCounted = windowOf(manual.answers, now - 10_000, now);
        say(
          `fixed-weight canary (replica ${manualRead.pod ?? "none"}): desired ${pts(manualRead.desired)}, ` +
            `actual ${pts(manualRead.actual)}; client over the last 10 s: ${manualCounted.total} answers ` +
            `${JSON.stringify(manualCounted.byVersion)} -> v2 ${pts(manualCounted.share)}; ` +
            `status ${JSON.stringify(await statusOf(client, manualNs, "web-v2"))}`,
        );

        expect(read.held.desired).toBe(30);
        expect(read.held.actual).toBeDefined();
        expect(counted.total).toBeGreaterThan(200);
        expect(Math.abs((read.held.actual ?? NaN) - counted.share)).toBeLessThanOrEqual(2);
        expect(manual.errors).toEqual({});
        expect(held.errors).toEqual({});

        expect(manualRead.desired).toBe(30);
        // A canary at a fixed weight is measured each interval too (decide/schedule.ts
        // observing()), but its windows are not in its status: the client's last 10 s are
        // compared, so the bound is looser than the held canary's exact window.
        expect(manualRead.actual).toBeDefined();
        expect(Math.abs((manualRead.actual ?? NaN) - manualCounted.share)).toBeLessThanOrEqual(5);
      } finally {
        await Promise.all([manual.stop(), held.stop(), trail.stop()]);
      }
      await Promise.all([removeNamespace(client, manualNs), removeNamespace(client, heldNs)]);
    }, 600_000);

    it("an automated blue-green switched back costs no request because of the switch", async () => {
      const cluster = node.get();
      const client = cluster.cp.client;
      const ns = "bg-switch-back";
      const url = await app(
        cluster,
        ns,
        {
          "verso.dev/strategy": "blue-green",
          "verso.dev/auto-promote": "true",
          "verso.dev/interval": "10s",
          "verso.dev/post-switch-window": "60s",
          "verso.dev/max-error-rate": "5",
          "verso.dev/min-requests": "20",
        },
        2,
      );
      const trail = statusTrail(client, ns, "web-v2", 100);
      const traffic = stampedLoad(url, { concurrency: 4 });
      try {
        const switched = await waitFor(
          "web-v2 switched",
          async () => trail.trail.find((s) => s.reason === "Switched" && s.weight === 100),
          90_000,
          100,
        );
        // Let the new colour serve on its own for a few seconds: the switch, then v2 alone.
        await sleep(4_000);
        const faultAt = Date.now();
        const beforeFault = windowOf(traffic.answers, 0, faultAt);
        const lastSecond = windowOf(traffic.answers, faultAt - 1_000, faultAt);
        const failedBeforeFault = { ...traffic.errors };
        say(
          `switched (${switched.message}); before the fault: ${JSON.stringify(beforeFault.byVersion)}, ` +
            `last second ${JSON.stringify(lastSecond.byVersion)}, failures ${JSON.stringify(failedBeforeFault)}`,
        );

        // The demo app reads ERROR_RATE at start: this rolls web-v2's pods, the new ones fail.
        await kubectlOk(cluster, ["-n", ns, "set", "env", "deployment/web-v2", "ERROR_RATE=1"]);
        const back = await waitForPhase(client, ns, "web-v2", "Failed", 120_000, 100);
        const backAt = Date.now();
        await sleep(5_000);
        const afterBack = windowOf(traffic.answers, backAt + 2_000, Date.now());
        await traffic.stop();
        const statuses = await trail.stop();
        const events = await eventsFor(client, ns, "web-v2");
        const warning = events.find((e) => e.reason === "SwitchedBack");
        say(
          `switched back ${((backAt - faultAt) / 1000).toFixed(1)} s after the fault: ${back.reason}: ${back.message}; ` +
            `event ${warning?.type} ${warning?.message}`,
        );
        say(
          `client: sent ${traffic.sent()}, ok ${traffic.answers.length} ` +
            `${JSON.stringify(windowOf(traffic.answers, 0, Infinity).byVersion)}, failures ${JSON.stringify(traffic.errors)}; ` +
            `after the switch back ${JSON.stringify(afterBack.byVersion)}`,
        );
        say(
          `status reasons: ${statuses.map((s) => `${s.phase}/${s.reason} ${s.weight}%`).join(" -> ")}`,
        );

        // The switch itself cost nothing, and v2 alone served after it.
        expect(failedBeforeFault).toEqual({});
        expect(lastSecond.byVersion).toEqual({ v2: lastSecond.total });
        // Switched back automatically: phase, reason, a Warning Event; v1 alone serves again.
        expect(back.reason).toBe("SwitchedBack");
        expect(back.weight).toBe(0);
        expect(warning?.type).toBe("Warning");
        expect(afterBack.total).toBeGreaterThan(0);
        expect(afterBack.byVersion).toEqual({ v1: afterBack.total });
        // The only failures: the new colour's own 500s (never a proxy's 502/503 or a reset).
        const reasons = Object.keys(traffic.errors);
        expect(reasons.filter((r) => r !== "HTTP 500 v2")).toEqual([]);
      } finally {
        await traffic.stop();
        await trail.stop();
      }
      await removeNamespace(client, ns);
    }, 600_000);
  },
);
