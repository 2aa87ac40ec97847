/**
 * Automated canary on real gRPC traffic: each pod is the demo app with its gRPC port
 * (GRPC_PORT=9090, container port named `grpc`) plus the real proxy, whose h2c listener the
 * webhook enabled (15007 in front of 9090). grpc-js clients call each ready pod's proxy on
 * podIP:15007; every call is routed on its own and counted where served in
 * `verso_requests_total` by grpc-status class; the controller (webhook process, built-in metrics
 * source) analyses those counts exactly as for HTTP. No HTTP request is sent to these apps, so
 * what the gates see is gRPC only. Short intervals (3s), gates as a user would write them.
 */
import grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABEL } from "../../shared/annotations.ts";
import { METRIC } from "../../shared/metric-names.ts";
import { PROXY_PORT } from "../../shared/pod-env.ts";
import type { RoutingTable } from "../../shared/table.ts";
import { startCluster, type Cluster } from "../harness/cluster.ts";
import { sample } from "../harness/metrics.ts";
import { isReady } from "../harness/podStatus.ts";
import type { Pod } from "../harness/podTypes.ts";
import { waitFor } from "../harness/ports.ts";
import { client as grpcClient, unary, type UnaryResult } from "../process/grpc-fixture.ts";
import {
  eventsFor,
  podLoad,
  statusOf,
  streamFor,
  waitForPhase,
  type TableStream,
} from "./controllerFixtures.ts";
import { createNamespace, deployment, podsOf } from "./fixtures.ts";

const NS = "grpc";
const INTERVAL = "3s";
const GRPC_PORT = { extraPorts: [{ name: "grpc", containerPort: 9090 }] };

const canary = (steps: string): Record<string, string> => ({
  "verso.dev/strategy": "canary",
  "verso.dev/steps": steps,
  "verso.dev/interval": INTERVAL,
  "verso.dev/max-error-rate": "5",
  "verso.dev/min-requests": "5",
});

interface Load {
  stop(): Promise<void>;
  results: UnaryResult[];
}

/**
 * Bounded gRPC load: every ~50 ms one unary call to each ready pod's proxy gRPC listener
 * (one grpc-js client, i.e. one HTTP/2 connection, per pod), until stopped, 3 minutes or
 * 20,000 calls. Each call has a 3 s deadline.
 */
function grpcTraffic(cluster: Cluster, appName: string): Load {
  const results: UnaryResult[] = [];
  const clients = new Map<string, grpc.Client>();
  const load = podLoad(cluster.cp.client, NS, appName, async (pod) => {
    const ip = pod.status?.podIP ?? "";
    let c = clients.get(ip);
    if (!c) clients.set(ip, (c = grpcClient(ip, PROXY_PORT.grpc)));
    results.push(await unary(c, "hello", {}, { deadline: Date.now() + 3_000 }));
  });
  return {
    results,
    stop: async () => {
      await load.stop();
      for (const c of clients.values()) c.close();
    },
  };
}

const countCodes = (results: UnaryResult[]): Record<number, number> => {
  const codes: Record<number, number> = {};
  for (const r of results) codes[r.code] = (codes[r.code] ?? 0) + 1;
  return codes;
};

const appVersion = (r: UnaryResult): string | undefined =>
  r.body === undefined ? undefined : (JSON.parse(r.body) as { version: string }).version;

async function proxyMetrics(pod: Pod): Promise<string> {
  const res = await fetch(`http://${pod.status?.podIP}:${PROXY_PORT.admin}/metrics`, {
    signal: AbortSignal.timeout(5_000),
  });
  return res.text();
}

describe("controller: automated canary on real gRPC traffic", () => {
  let cluster: Cluster;
  const client = () => cluster.cp.client;
  const readyPods = async (appName: string): Promise<Pod[]> =>
    (await podsOf(client(), NS, `app.kubernetes.io/name=${appName}`)).filter(isReady);
  const streamOf = (app: string): Promise<TableStream> => streamFor(cluster, NS, app);
  /** Waits until every ready proxy of the app has applied `table` (or a later one). */
  const applied = async (appName: string, table: RoutingTable): Promise<void> => {
    for (const pod of await readyPods(appName)) {
      await waitFor(
        `${pod.metadata.name} at revision ${table.revision}`,
        async () =>
          sample(await proxyMetrics(pod), METRIC.revision) >= table.revision ? true : undefined,
        10_000,
        100,
      );
    }
  };

  beforeAll(async () => {
    cluster = await startCluster({ crds: false, controller: true });
    await createNamespace(client(), NS, { [LABEL.injection]: "enabled" });
    const create = (d: object) => client().create(`/apis/apps/v1/namespaces/${NS}/deployments`, d);
    const env = { GRPC_PORT: "9090" };
    await create(deployment("rpc-v1", "v1", 1, { app: "rpc", env, ...GRPC_PORT }));
    await create(
      deployment("rpc-v2", "v2", 1, {
        app: "rpc",
        // The analysis' 5xx count is what this shows; the proxies' cut-off (which counts gRPC
        // failures too, test/process/sidecar-grpc.test.ts) would otherwise act first.
        annotations: { ...canary("20,50"), "verso.dev/cutoff-failures": "0" },
        env: { ...env, ERROR_RATE: "1" },
        ...GRPC_PORT,
      }),
    );
    await create(deployment("api-v1", "v1", 1, { app: "api", env, ...GRPC_PORT }));
    await create(
      deployment("api-v2", "v2", 1, {
        app: "api",
        annotations: canary("50,100"),
        env,
        ...GRPC_PORT,
      }),
    );
    await waitFor(
      "4 ready pods",
      async () => {
        const pods = await podsOf(client(), NS);
        return pods.length === 4 && pods.every(isReady) ? true : undefined;
      },
      240_000,
      500,
    );
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it("counts a release answering UNAVAILABLE as 5xx and rolls it back", async () => {
    const stream = await streamOf("rpc");
    const v1Pod = (await readyPods("rpc")).find(
      (p) => p.metadata.labels?.["app.kubernetes.io/version"] === "v1",
    );
    const t = await stream.until(
      "gRPC endpoints of both versions",
      (t) => t.grpcEndpoints?.v1?.length === 1 && t.grpcEndpoints.v2?.length === 1,
      30_000,
    );
    expect(t.grpcEndpoints?.v1?.[0]).toBe(`${v1Pod?.status?.podIP}:${PROXY_PORT.grpc}`);
    expect(t.grpcEndpoints?.v2?.[0]).toMatch(/^127\.0\.\d+\.\d+:15007$/);

    const load = grpcTraffic(cluster, "rpc");
    const t0 = Date.now();
    let back: RoutingTable | undefined;
    try {
      const started = await waitFor(
        "rpc-v2 started",
        async () => {
          const s = await statusOf(client(), NS, "rpc-v2");
          return s?.phase === "Progressing" || s?.phase === "Failed" ? s : undefined;
        },
        30_000,
        250,
      );
      expect(started.step).toBe(1);
      const failed = await waitForPhase(client(), NS, "rpc-v2", "Failed", 30_000);
      const elapsed = Date.now() - t0;
      expect(failed.weight).toBe(0);
      expect(failed.reason).toBe("RolledBack");
      expect(failed.analysis?.reason).toBe("ErrorRateTooHigh");
      // Rolled back by the first analysis (never advanced past step 1).
      expect(failed.step).toBe(1);
      expect(failed.analysis?.measured.releaseRequests).toBeGreaterThanOrEqual(5);
      console.log(
        `rpc-v2 rolled back ${elapsed} ms after gRPC load started: ${JSON.stringify(failed.analysis?.measured)}`,
      );
      const ev = await waitFor(
        "RolledBack event",
        async () =>
          (await eventsFor(client(), NS, "rpc-v2")).find((e) => e.reason === "RolledBack"),
        15_000,
        250,
      );
      expect(ev?.type).toBe("Warning");
      back = await stream.until("rpc table at 0%", (t) => t.release?.weight === 0, 10_000);
      expect(back.release?.version).toBe("v2");
    } finally {
      await load.stop();
    }
    // The clients saw the release's UNAVAILABLE, and the release's proxy counted it as 5xx.
    const codes = countCodes(load.results);
    expect(codes[grpc.status.UNAVAILABLE]).toBeGreaterThan(0);
    expect(codes[grpc.status.OK]).toBeGreaterThan(0);
    const v2Pod = (await readyPods("rpc")).find(
      (p) => p.metadata.labels?.["app.kubernetes.io/version"] === "v2",
    );
    const text = await proxyMetrics(v2Pod!);
    const served = (code_class: string) =>
      sample(text, METRIC.requests, { version: "v2", method: "POST", code_class });
    console.log(
      `rpc calls by grpc-status ${JSON.stringify(codes)}; v2 proxy 5xx=${served("5xx")} 2xx=${served("2xx")}`,
    );
    expect(served("5xx")).toBeGreaterThanOrEqual(5);
    expect(served("2xx")).toBe(0);

    // After the rollback every call, whichever proxy takes it, is served by v1 with OK, as
    // long as a v1 pod is ready to take it (else the v2 proxy falls back to serving locally:
    // so wait for a table at 0 % that lists v1's gRPC endpoint).
    const settled = await stream
      .until(
        "0 % with v1's gRPC endpoint",
        (t) => t.release?.weight === 0 && (t.grpcEndpoints?.v1?.length ?? 0) > 0,
        30_000,
      )
      .catch((error: Error) => {
        throw new Error(`${error.message}; latest table ${JSON.stringify(stream.latest())}`);
      });
    await applied("rpc", settled);
    for (const pod of await readyPods("rpc")) {
      const c = grpcClient(pod.status?.podIP ?? "", PROXY_PORT.grpc);
      try {
        const before = await proxyMetrics(pod);
        const after = await Promise.all(Array.from({ length: 40 }, () => unary(c, "after")));
        const failures = after.filter((r) => r.code !== grpc.status.OK);
        // On failure, say what the proxy saw: fallbacks mean no v1 peer was usable.
        const why = async (): Promise<string> => {
          const m = await proxyMetrics(pod);
          const d = (name: string) => sample(m, name) - sample(before, name);
          return `${pod.metadata.name}: ${JSON.stringify(failures.slice(0, 3))}; fallbacks +${d(METRIC.fallbacks)}, upstream errors +${d(METRIC.upstreamErrors)}`;
        };
        expect(countCodes(after), failures.length > 0 ? await why() : "").toEqual({
          [grpc.status.OK]: 40,
        });
        expect(new Set(after.map(appVersion))).toEqual(new Set(["v1"]));
      } finally {
        c.close();
      }
    }
    stream.close();
  });

  it("promotes a healthy gRPC release through every step", async () => {
    const stream = await streamOf("api");
    const load = grpcTraffic(cluster, "api");
    try {
      const promoted = await waitForPhase(client(), NS, "api-v2", "Promoted", 90_000);
      expect(promoted.weight).toBe(100);
      expect(promoted.analysis?.reason).toBe("LastStepPassed");
      await stream.until("api table at 100%", (t) => t.release?.weight === 100, 10_000);
      const weights = [...new Set(stream.tables.map((t) => t.release?.weight))];
      expect(weights.filter((w) => w !== undefined && w > 0)).toEqual([50, 100]);
      expect(stream.latest()?.grpcEndpoints?.v2).toHaveLength(1);
    } finally {
      await load.stop();
      stream.close();
    }
    expect(countCodes(load.results)).toEqual({ [grpc.status.OK]: load.results.length });
    const versions = new Set(load.results.map(appVersion));
    expect(versions).toEqual(new Set(["v1", "v2"]));
  });
});
