/**
 * The real node under load from the host, every request counted: a blue-green switch and a
 * rolling restart of the stable Deployment cost no request, and the proxy stays within its
 * memory limit under sustained load.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { ContainerStatus } from "../harness/podTypes.ts";
import { sleep, waitFor } from "../harness/ports.ts";
import { annotate } from "./controllerFixtures.ts";
import { createNamespace, deployment, podsOf } from "./fixtures.ts";
import {
  NO_NODE,
  clusterIp,
  load,
  readyPods,
  sample,
  useNodeCluster,
  type LoadReport,
} from "./nodeFixtures.ts";

const NS = "bg";
const say = (line: string): void => void process.stderr.write(`[node-traffic] ${line}\n`);
const summary = (r: LoadReport): string =>
  `sent ${r.sent}, ok ${r.ok}, failed ${r.failed} ${JSON.stringify(r.errors)}, by version ${JSON.stringify(r.byVersion)}`;

function service(app: string): object {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: app },
    spec: {
      selector: { "app.kubernetes.io/name": app },
      ports: [{ name: "http", port: 80, targetPort: "http" }],
    },
  };
}

describe.skipIf(NO_NODE !== undefined)(
  `real node under load${NO_NODE ? ` (skipped: ${NO_NODE})` : ""}`,
  () => {
    const node = useNodeCluster();
    let url = "";

    it("restarts the stable Deployment (rolling) under load with 0 failed requests, the release in preview", async () => {
      const cluster = node.get();
      const client = cluster.cp.client;
      await createNamespace(client, NS, { "verso.dev/injection": "enabled" });
      const apply = async (obj: object): Promise<void> => {
        const res = await cluster.kubectl(["-n", NS, "apply", "-f", "-"], JSON.stringify(obj));
        if (res.code !== 0) throw new Error(res.stderr);
      };
      await apply(service("web"));
      await apply(deployment("web-v1", "v1", 2, { app: "web" }));
      await apply(
        deployment("web-v2", "v2", 2, {
          app: "web",
          annotations: { "verso.dev/strategy": "blue-green" },
        }),
      );
      await readyPods(client, NS, "app.kubernetes.io/name=web", 4);
      url = `http://${await clusterIp(client, NS, "web")}/`;
      // Preview: the new colour gets nothing without a match.
      await waitFor(
        "preview in force",
        async () => {
          const r = await sample(url, 100);
          return r.failed === 0 && (r.byVersion.v2 ?? 0) === 0 ? true : undefined;
        },
        60_000,
        500,
      );

      const before = new Set(
        (await podsOf(client, NS, "app.kubernetes.io/version=v1")).map((p) => p.metadata.name),
      );
      const traffic = load(url, { concurrency: 4, maxMs: 150_000 });
      await sleep(2_000);
      const restarted = await cluster.kubectl([
        "-n",
        NS,
        "rollout",
        "restart",
        "deployment/web-v1",
      ]);
      expect(restarted.code, restarted.stderr).toBe(0);
      const status = await cluster.kubectl([
        "-n",
        NS,
        "rollout",
        "status",
        "deployment/web-v1",
        "--timeout=120s",
      ]);
      expect(status.code, status.stderr).toBe(0);
      // The old pods are gone, not just replaced in the Deployment's view.
      await waitFor(
        "old v1 pods gone",
        async () => {
          const pods = await podsOf(client, NS, "app.kubernetes.io/version=v1");
          return pods.every((p) => !before.has(p.metadata.name)) && pods.length === 2
            ? true
            : undefined;
        },
        120_000,
        500,
      );
      await sleep(2_000);
      const report = await traffic.stop();
      say(`rolling restart of web-v1: ${summary(report)}`);
      expect(report.failed, JSON.stringify(report.errors)).toBe(0);
      // Every request was served by the stable version that was being restarted.
      expect(report.byVersion).toEqual({ v1: report.ok });
    });

    it("switches blue-green under load with 0 failed requests", async () => {
      const client = node.get().cp.client;
      const traffic = load(url, { concurrency: 4, maxMs: 90_000 });
      await sleep(2_000);
      await annotate(client, NS, "web-v2", { "verso.dev/promote": "true" });
      await waitFor(
        "all traffic on v2",
        async () => {
          const r = await sample(url, 50, 2);
          return (r.byVersion.v1 ?? 0) === 0 && r.ok === 50 ? true : undefined;
        },
        60_000,
        250,
      );
      await sleep(2_000);
      const report = await traffic.stop();
      say(`blue-green switch: ${summary(report)}`);
      expect(report.failed, JSON.stringify(report.errors)).toBe(0);
      expect(report.byVersion.v1).toBeGreaterThan(0);
      expect(report.byVersion.v2).toBeGreaterThan(0);
    });

    it("keeps the proxy within its memory limit under sustained load", async () => {
      const cluster = node.get();
      const client = cluster.cp.client;
      const traffic = load(url, { concurrency: 32, maxMs: 20_000, max: 200_000 });
      const report = await traffic.finished();
      say(`sustained load (32 connections, 20 s): ${summary(report)}`);
      expect(report.failed, JSON.stringify(report.errors)).toBe(0);
      for (const pod of await podsOf(client, NS, "app.kubernetes.io/name=web")) {
        const proxy = pod.status?.initContainerStatuses?.find((s) => s.name === "verso-proxy");
        expect(proxy?.restartCount).toBe(0);
        const limit = pod.spec.initContainers?.find((c) => c.name === "verso-proxy")?.resources
          ?.limits?.memory;
        const peak = peakMemory(cluster.node.ctr, proxy);
        const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
        say(
          `${pod.metadata.name} proxy: peak RSS ${mib(peak.rss)}, cgroup peak ${mib(peak.cgroup)}, limit ${limit}`,
        );
        // The cgroup's figure leaves out the Bun binary's pages when another container faulted
        // them in first; the process's own peak RSS does not.
        expect(peak.rss).toBeGreaterThan(0);
        expect(Math.max(peak.rss, peak.cgroup)).toBeLessThan(parseMi(limit));
      }
    });
  },
);

/**
 * The container's peak memory: its main process's peak RSS (VmHWM) and its cgroup's peak
 * (memory.max_usage_in_bytes, cgroup v1), found through the node's containerd.
 */
function peakMemory(
  ctr: (args: string[]) => { code: number; stdout: string },
  status?: ContainerStatus,
): { rss: number; cgroup: number } {
  const id = status?.containerID?.replace(/^containerd:\/\//, "") ?? "";
  const info = ctr(["containers", "info", id]);
  if (info.code !== 0) throw new Error(`ctr containers info ${id} failed`);
  const path = (JSON.parse(info.stdout) as { Spec: { linux: { cgroupsPath: string } } }).Spec.linux
    .cgroupsPath;
  const cgroup = Number(
    readFileSync(`/sys/fs/cgroup/memory${path}/memory.max_usage_in_bytes`, "utf8"),
  );
  const task = ctr(["tasks", "ls"])
    .stdout.split("\n")
    .find((line) => line.startsWith(id));
  const pid = task?.split(/\s+/)[1];
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return { rss: Number(hwm?.[1] ?? 0) * 1024, cgroup };
}

function parseMi(quantity: string | undefined): number {
  const match = /^(\d+)Mi$/.exec(quantity ?? "");
  if (!match) throw new Error(`expected a memory limit in Mi, got ${quantity}`);
  return Number(match[1]) * 2 ** 20;
}
