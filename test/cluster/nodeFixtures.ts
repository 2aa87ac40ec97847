/**
 * What the real-node tests share: one cluster per file (skipped with the reason where a real
 * node cannot run), the demo app installed from deploy/examples, and a bounded load client
 * that counts every request it sends from the host.
 */
import { request as httpsRequest } from "node:https";
import { afterAll, beforeAll } from "vitest";
import type { RoutingTable } from "../../shared/table.ts";
import type { KubeClient } from "../harness/kubeClient.ts";
import { startNodeCluster, type NodeCluster } from "../harness/node/cluster.ts";
import { sandboxUnavailable } from "../harness/node/sandbox.ts";
import { EXAMPLES_DIR } from "../harness/paths.ts";
import type { Pod } from "../harness/podTypes.ts";
import { isReady } from "../harness/podStatus.ts";
import { sleep, waitFor } from "../harness/ports.ts";
import {
  serviceAccountToken,
  statusOf,
  tableEvents,
  type StatusAnnotation,
} from "./controllerFixtures.ts";
import { createNamespace, deployment, podsOf } from "./fixtures.ts";

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

// ---- Fault drills (node-faults-*.test.ts) ----

export const summary = (r: LoadReport): string =>
  `sent ${r.sent}, ok ${r.ok}, failed ${r.failed} ${JSON.stringify(r.errors)}, by version ${JSON.stringify(r.byVersion)}`;

/** What a load client did between two of its reports (`before` taken earlier). */
export function between(before: LoadReport, after: LoadReport): LoadReport {
  const diff = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
    Object.fromEntries(
      Object.entries(a)
        .map(([k, v]) => [k, v - (b[k] ?? 0)] as const)
        .filter(([, v]) => v !== 0),
    );
  return {
    sent: after.sent - before.sent,
    ok: after.ok - before.ok,
    failed: after.failed - before.failed,
    byVersion: diff(after.byVersion, before.byVersion),
    errors: diff(after.errors, before.errors),
  };
}

/** `kubectl -n ns apply` of each object, as a user applies them. */
export async function applyIn(
  cluster: NodeCluster,
  ns: string,
  ...objects: object[]
): Promise<void> {
  for (const obj of objects) {
    const res = await cluster.kubectl(["-n", ns, "apply", "-f", "-"], JSON.stringify(obj));
    if (res.code !== 0) throw new Error(`kubectl apply in ${ns}: ${res.stderr}`);
  }
}

/** `kubectl` that must succeed; its stdout. */
export async function kubectlOk(cluster: NodeCluster, args: string[]): Promise<string> {
  const res = await cluster.kubectl(args);
  if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
  return res.stdout;
}

/** A Service selecting the app, not the version: Verso's proxies decide which version serves. */
export function appService(app: string): object {
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

/** The pod's container id in containerd (no `containerd://`), app or init (sidecar) alike. */
export function containerIdOf(pod: Pod, container: string): string {
  const statuses = [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ];
  const id = statuses.find((s) => s.name === container)?.containerID;
  if (!id) throw new Error(`${pod.metadata.name}: no running container ${container}`);
  return id.replace(/^containerd:\/\//, "");
}

/** SIGKILL to a container's task through the node's containerd: a crash, for real. */
export function killContainer(cluster: NodeCluster, pod: Pod, container: string): void {
  const id = containerIdOf(pod, container);
  const res = cluster.node.ctr(["tasks", "kill", "-s", "SIGKILL", id]);
  if (res.code !== 0) throw new Error(`ctr tasks kill ${id}: ${res.stderr}`);
}

export interface ProxyReady {
  status: number;
  ready: boolean;
  routing?: string;
  revision?: number | null;
  appAccepting?: boolean;
}

/** The proxy's /ready from the host (its admin port); status 0 when it does not answer. */
export async function proxyReady(pod: Pod): Promise<ProxyReady> {
  try {
    const res = await fetch(`http://${pod.status?.podIP}:15020/ready`, {
      signal: AbortSignal.timeout(1_000),
    });
    return { status: res.status, ...((await res.json()) as Omit<ProxyReady, "status">) };
  } catch {
    return { status: 0, ready: false };
  }
}

/** The proxy's /metrics text from the host; empty when it does not answer. */
export async function proxyMetrics(pod: Pod): Promise<string> {
  try {
    const res = await fetch(`http://${pod.status?.podIP}:15020/metrics`, {
      signal: AbortSignal.timeout(1_000),
    });
    return await res.text();
  } catch {
    return "";
  }
}

/** How to reach the controller from the host: the CA cert-manager issued and the Service name. */
export interface ControllerTls {
  ca: string;
  servername: string;
}

export async function controllerTls(client: KubeClient): Promise<ControllerTls> {
  const secret = await client.get<{ data: Record<string, string> }>(
    "/api/v1/namespaces/verso-system/secrets/verso-webhook-tls",
  );
  return {
    ca: Buffer.from(secret.data["ca.crt"] ?? "", "base64").toString(),
    servername: "verso-webhook.verso-system.svc",
  };
}

/** GET over the controller's TLS (any of its addresses), the body read whole. */
export function controllerGet(
  url: string,
  tls: ControllerTls,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ...tls, timeout: 5_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.once("timeout", () => req.destroy(new Error(`${url}: no answer in 5 s`)));
    req.once("error", reject);
    req.end();
  });
}

/** The webhook/controller replicas that are ready now. */
export async function controllerPods(client: KubeClient): Promise<Pod[]> {
  return (await podsOf(client, "verso-system", "app.kubernetes.io/name=verso-webhook")).filter(
    isReady,
  );
}

export interface RouteLog {
  /** Every table the stream delivered, with when it arrived (epoch ms). */
  readonly entries: { at: number; table: RoutingTable }[];
  close(): void;
}

/**
 * The controller's route stream for one app, read from the host as a proxy reads it (a
 * projected-style token of the namespace's default service account, audience verso), each
 * table stamped with its arrival time. Through the Service unless `origin` names one
 * replica (`podIP:9443`).
 */
export async function routeStream(
  cluster: NodeCluster,
  ns: string,
  app: string,
  origin?: string,
): Promise<RouteLog> {
  const client = cluster.cp.client;
  const tls = await controllerTls(client);
  const token = await serviceAccountToken(client, ns);
  const to = origin ?? `${await clusterIp(client, "verso-system", "verso-webhook")}:443`;
  const entries: { at: number; table: RoutingTable }[] = [];
  const req = httpsRequest(`https://${to}/v1/routes?namespace=${ns}&app=${app}`, {
    ...tls,
    headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
  });
  await new Promise<void>((resolve, reject) => {
    req.once("error", reject);
    req.once("response", (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`route stream answered ${res.statusCode}`));
        return;
      }
      res.setEncoding("utf8");
      res.on(
        "data",
        tableEvents((table) => entries.push({ at: Date.now(), table })),
      );
      res.on("error", () => undefined);
      resolve();
    });
    req.end();
  });
  req.on("error", () => undefined);
  return { entries, close: () => req.destroy() };
}

export interface StatusTrail {
  /** Each distinct status seen, in order (polled; API errors are skipped, not recorded). */
  readonly trail: StatusAnnotation[];
  stop(): Promise<StatusAnnotation[]>;
}

/** Polls `verso.dev/status` every `everyMs`, keeping each change; rides out an API outage. */
export function statusTrail(
  client: KubeClient,
  ns: string,
  name: string,
  everyMs = 200,
  maxMs = 600_000,
): StatusTrail {
  const trail: StatusAnnotation[] = [];
  let stopped = false;
  let last = "";
  const deadline = Date.now() + maxMs;
  const done = (async () => {
    while (!stopped && Date.now() < deadline) {
      try {
        const s = await statusOf(client, ns, name);
        const text = JSON.stringify(s ?? null);
        if (s && text !== last) trail.push(s);
        last = text;
      } catch {
        // The apiserver is away (a drill): the next poll sees what changed meanwhile.
      }
      await sleep(everyMs);
    }
  })();
  return {
    trail,
    stop: async () => {
      stopped = true;
      await done;
      return trail;
    },
  };
}

/** The release's steps as the status showed them, repeats of the same step folded. */
export function stepSequence(trail: readonly StatusAnnotation[]): number[] {
  const steps: number[] = [];
  for (const s of trail) {
    if (s.step === undefined || steps.at(-1) === s.step) continue;
    steps.push(s.step);
  }
  return steps;
}

export interface DrillApp {
  /** The app's Service through its ClusterIP, from the host. */
  url: string;
  pods: Pod[];
}

/**
 * One drill's app in its own opted-in namespace: Service `web`, `web-v1` (stable) and
 * `web-v2` with the release annotations given, every pod ready and injected.
 */
export async function drillApp(
  cluster: NodeCluster,
  ns: string,
  { v1 = 2, v2 = 2, release }: { v1?: number; v2?: number; release: Record<string, string> },
): Promise<DrillApp> {
  const client = cluster.cp.client;
  await createNamespace(client, ns, { "verso.dev/injection": "enabled" });
  await applyIn(
    cluster,
    ns,
    appService("web"),
    deployment("web-v1", "v1", v1, { app: "web" }),
    deployment("web-v2", "v2", v2, { app: "web", annotations: release }),
  );
  const pods = await readyPods(client, ns, "app.kubernetes.io/name=web", v1 + v2);
  return { url: `http://${await clusterIp(client, ns, "web")}/`, pods };
}

/** Deletes a drill's namespace and waits until it is gone (its pods free the node). */
export async function removeNamespace(client: KubeClient, ns: string): Promise<void> {
  await client.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
  await waitFor(
    `namespace ${ns} gone`,
    async () =>
      (await client.getOptional<object>(`/api/v1/namespaces/${ns}`)) === undefined
        ? true
        : undefined,
    180_000,
    500,
  );
}

export interface ReadyWatch {
  /** Each change of the proxy's /ready (status and routing), with when it was seen. */
  readonly changes: (ProxyReady & { at: number })[];
  /** The first change seen at or after `since` (epoch ms) that satisfies `pred`. */
  until(
    what: string,
    since: number,
    pred: (r: ProxyReady) => boolean,
    timeoutMs?: number,
  ): Promise<ProxyReady & { at: number }>;
  stop(): Promise<void>;
}

/** Polls a pod's proxy /ready every `everyMs` (bounded by `maxMs`), keeping each change. */
export function readyWatch(pod: Pod, everyMs = 50, maxMs = 300_000): ReadyWatch {
  const changes: (ProxyReady & { at: number })[] = [];
  let stopped = false;
  let last = "";
  const deadline = Date.now() + maxMs;
  const done = (async () => {
    while (!stopped && Date.now() < deadline) {
      const r = await proxyReady(pod);
      const key = `${r.status} ${r.routing} ${r.revision} ${r.appAccepting}`;
      if (key !== last) changes.push({ ...r, at: Date.now() });
      last = key;
      await sleep(everyMs);
    }
  })();
  return {
    changes,
    until: (what, since, pred, timeoutMs = 60_000) =>
      waitFor(what, async () => changes.find((c) => c.at >= since && pred(c)), timeoutMs, 20),
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}
