/**
 * What the real-node tests share: one cluster per file (skipped with the reason where a real
 * node cannot run), the demo app installed from deploy/examples, and a bounded load client
 * that counts every request it sends from the host.
 */
import { afterAll, beforeAll } from "vitest";
import type { KubeClient } from "../harness/kubeClient.ts";
import { startNodeCluster, type NodeCluster } from "../harness/node/cluster.ts";
import { sandboxUnavailable } from "../harness/node/sandbox.ts";
import { EXAMPLES_DIR } from "../harness/paths.ts";
import type { Pod } from "../harness/podTypes.ts";
import { isReady } from "../harness/podStatus.ts";
import { sleep, waitFor } from "../harness/ports.ts";
import { podsOf } from "./fixtures.ts";

/** Why this machine cannot run the real node (the suite skips with it), or undefined. */
export const NO_NODE = sandboxUnavailable();

/** Starts one real-node cluster for the file; `get()` returns it inside tests. */
export function useNodeCluster(): { get(): NodeCluster } {
  let cluster: NodeCluster | undefined;
  beforeAll(async () => {
    if (NO_NODE !== undefined) return;
    cluster = await startNodeCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });
  return {
    get: () => {
      if (cluster === undefined) throw new Error("the node cluster did not start");
      return cluster;
    },
  };
}

/** Applies deploy/examples (namespace demo, Service shop, shop-v1, shop-v2 at 10 %). */
export async function installDemo(cluster: NodeCluster): Promise<Pod[]> {
  const res = await cluster.kubectl(["apply", "-k", EXAMPLES_DIR]);
  if (res.code !== 0) throw new Error(`kubectl apply -k deploy/examples: ${res.stderr}`);
  return readyPods(cluster.cp.client, "demo", "app.kubernetes.io/name=shop", 2);
}

export function readyPods(
  client: KubeClient,
  ns: string,
  selector: string,
  count: number,
  timeoutMs = 120_000,
): Promise<Pod[]> {
  return waitFor(
    `${count} ready pods ${selector} in ${ns}`,
    async () => {
      const pods = await podsOf(client, ns, selector);
      return pods.length === count && pods.every(isReady) ? pods : undefined;
    },
    timeoutMs,
    250,
  );
}

export async function clusterIp(client: KubeClient, ns: string, name: string): Promise<string> {
  const svc = await client.get<{ spec: { clusterIP: string } }>(
    `/api/v1/namespaces/${ns}/services/${name}`,
  );
  return svc.spec.clusterIP;
}

export interface LoadReport {
  sent: number;
  ok: number;
  failed: number;
  /** Successful answers by the version that served them (the demo app's `version`). */
  byVersion: Record<string, number>;
  /** Failures by reason (HTTP status or error code), so a failed count says why. */
  errors: Record<string, number>;
}

export interface Load {
  report(): LoadReport;
  /** Stops sending and waits for the calls in flight. */
  stop(): Promise<LoadReport>;
  /** Waits until `max` or `maxMs` ends it. */
  finished(): Promise<LoadReport>;
}

/**
 * `concurrency` workers GET `url` back to back until stopped, `maxMs` has passed or `max`
 * requests were sent. Each request has a 5 s timeout; nothing is retried.
 */
export function load(url: string, { concurrency = 4, maxMs = 120_000, max = 50_000 } = {}): Load {
  const report: LoadReport = { sent: 0, ok: 0, failed: 0, byVersion: {}, errors: {} };
  const deadline = Date.now() + maxMs;
  let stopped = false;
  const fail = (reason: string): void => {
    report.failed++;
    report.errors[reason] = (report.errors[reason] ?? 0) + 1;
  };
  const worker = async (): Promise<void> => {
    while (!stopped && Date.now() < deadline && report.sent < max) {
      report.sent++;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
        const text = await res.text();
        if (res.status !== 200) {
          fail(`HTTP ${res.status}`);
          continue;
        }
        const version = (JSON.parse(text) as { version?: string }).version ?? "?";
        report.ok++;
        report.byVersion[version] = (report.byVersion[version] ?? 0) + 1;
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause;
        fail(cause?.code ?? (error as Error).name);
        await sleep(20);
      }
    }
  };
  const running = Promise.all(Array.from({ length: concurrency }, worker)).then(() => report);
  return {
    report: () => ({ ...report, byVersion: { ...report.byVersion }, errors: { ...report.errors } }),
    stop: () => {
      stopped = true;
      return running;
    },
    finished: () => running,
  };
}

/** Sends `count` requests and returns who served them. */
export function sample(url: string, count: number, concurrency = 4): Promise<LoadReport> {
  return load(url, { concurrency, max: count }).finished();
}
