/**
 * Helpers for the controller's cluster suite: real TokenRequest tokens, an SSE reader of the
 * route stream over real TLS, and Event lookups. No mocks: everything talks to the harness's
 * apiserver and the webhook process (controller inside).
 */
import { request as httpsRequest } from "node:https";
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { parseRoutingTableJson, type RoutingTable } from "../../shared/table.ts";
import { TOKEN_AUDIENCE } from "../../shared/pod-env.ts";
import type { KubeClient } from "../harness/kubeClient.ts";
import { isReady } from "../harness/podStatus.ts";
import type { Pod } from "../harness/podTypes.ts";
import { sleep, waitFor } from "../harness/ports.ts";
import { podsOf } from "./fixtures.ts";

export async function serviceAccountToken(
  client: KubeClient,
  ns: string,
  sa = "default",
  audience = TOKEN_AUDIENCE,
): Promise<string> {
  const r = await client.create<{ status: { token: string } }>(
    `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { audiences: [audience], expirationSeconds: 3600 },
    },
  );
  return r.status.token;
}

const LEASE = "/apis/coordination.k8s.io/v1/namespaces/verso-system/leases/verso-controller";

/** The controller Lease's holder identity; undefined when there is no Lease or it was released. */
export async function leaseHolder(client: KubeClient): Promise<string | undefined> {
  const lease = await client.getOptional<{ spec: { holderIdentity?: string } }>(LEASE);
  return lease?.spec.holderIdentity || undefined;
}

export interface Answer {
  status: number;
  body: string;
}

/** One plain (non-stream) request to the route endpoint: the refusals are small JSON bodies. */
export function getRoutes(
  baseUrl: string,
  ca: string,
  query: string,
  token?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${baseUrl}/v1/routes?${query}`, {
      ca,
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      timeout: 10_000,
    });
    req.once("response", (res: IncomingMessage) => {
      let body = "";
      res.setEncoding("utf8");
      if (res.statusCode === 200) {
        // A stream never ends: take what arrives in the first moments (the table, if any).
        res.on("data", (c: string) => (body += c));
        setTimeout(() => {
          req.destroy();
          resolve({ status: 200, body });
        }, 500);
        return;
      }
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once("error", reject);
    req.end();
  });
}

export interface TableStream {
  tables: RoutingTable[];
  headers: IncomingHttpHeaders;
  /** "end": the server finished the response (a clean end of stream); else how it broke. */
  ended: Promise<"end" | Error>;
  latest(): RoutingTable | undefined;
  /** Resolves with the table in force or the first later one that satisfies `pred`. */
  until(
    what: string,
    pred: (t: RoutingTable) => boolean,
    timeoutMs?: number,
  ): Promise<RoutingTable>;
  close(): void;
}

/**
 * A `data` listener for the route stream (SSE, utf8): each complete `event: table` block's
 * table goes to `onTable`; other events and partial blocks wait or are skipped.
 */
export function tableEvents(onTable: (table: RoutingTable) => void): (chunk: string) => void {
  let buf = "";
  return (chunk) => {
    buf += chunk;
    for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block.split("\n").find((l) => l.startsWith("data: "));
      if (!block.includes("event: table") || !data) continue;
      const t = parseRoutingTableJson(data.slice(6));
      if (t.ok) onTable(t.value);
    }
  };
}

/** The route stream for `app` as the default service account of `ns` sees it (stand-in cluster). */
export async function streamFor(
  cluster: { cp: { client: KubeClient }; webhook?: { url: string; ca: { cert: string } } },
  ns: string,
  app: string,
): Promise<TableStream> {
  const hook = cluster.webhook;
  if (hook === undefined) throw new Error("streamFor needs the cluster's webhook");
  const token = await serviceAccountToken(cluster.cp.client, ns);
  return openStream(hook.url, hook.ca.cert, ns, app, token);
}

export function openStream(
  baseUrl: string,
  ca: string,
  ns: string,
  app: string,
  token: string,
): Promise<TableStream> {
  return new Promise((resolve, reject) => {
    const tables: RoutingTable[] = [];
    const req = httpsRequest(`${baseUrl}/v1/routes?namespace=${ns}&app=${app}`, {
      ca,
      headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
    });
    req.once("error", reject);
    req.once("response", (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`route stream answered ${res.statusCode}`));
        return;
      }
      const ended = new Promise<"end" | Error>((done) => {
        res.once("end", () => done("end"));
        res.once("error", done);
        res.once("close", () => done(new Error("closed before the end of the stream")));
      });
      res.setEncoding("utf8");
      res.on(
        "data",
        tableEvents((t) => tables.push(t)),
      );
      resolve({
        tables,
        headers: res.headers,
        ended,
        latest: () => tables.at(-1),
        until: (what, pred, timeoutMs = 30_000) => {
          // Only the table in force now and later ones: history must not satisfy a new wait.
          const from = Math.max(0, tables.length - 1);
          return waitFor(what, async () => tables.slice(from).find(pred), timeoutMs, 50);
        },
        close: () => req.destroy(),
      });
    });
    req.end();
  });
}

export interface KubeEvent {
  reason: string;
  type: string;
  message: string;
  involvedObject: { name: string; uid?: string };
  source?: { component?: string };
  reportingInstance?: string;
}

export async function eventsFor(
  client: KubeClient,
  ns: string,
  name: string,
): Promise<KubeEvent[]> {
  const list = await client.get<{ items: KubeEvent[] }>(`/api/v1/namespaces/${ns}/events`, {
    fieldSelector: `involvedObject.name=${name}`,
  });
  return list.items;
}

export const annotate = (
  client: KubeClient,
  ns: string,
  name: string,
  annotations: Record<string, string | null>,
): Promise<unknown> =>
  client.patch(`/apis/apps/v1/namespaces/${ns}/deployments/${name}`, { metadata: { annotations } });

export interface StatusAnnotation {
  phase: string;
  startedAt: string;
  step?: number;
  weight: number;
  reason: string;
  message: string;
  analysis?: { action: string; reason: string; message: string; measured: Record<string, number> };
  policyErrors?: string[];
}

export async function statusOf(
  client: KubeClient,
  ns: string,
  name: string,
): Promise<StatusAnnotation | undefined> {
  const d = await client.get<{ metadata: { annotations?: Record<string, string> } }>(
    `/apis/apps/v1/namespaces/${ns}/deployments/${name}`,
  );
  const text = d.metadata.annotations?.["verso.dev/status"];
  return text ? (JSON.parse(text) as StatusAnnotation) : undefined;
}

/** Polls `verso.dev/status` until its phase is `want`; on timeout the error names the last status. */
export async function waitForPhase(
  client: KubeClient,
  ns: string,
  name: string,
  want: string,
  timeoutMs: number,
  intervalMs = 250,
): Promise<StatusAnnotation> {
  let last: StatusAnnotation | undefined;
  try {
    return await waitFor(
      `${name} ${want}`,
      async () => {
        last = await statusOf(client, ns, name);
        return last?.phase === want ? last : undefined;
      },
      timeoutMs,
      intervalMs,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last status ${JSON.stringify(last)}`, {
      cause: error,
    });
  }
}

export interface PodLoad {
  stop(): Promise<void>;
  /** Calls ended so far. */
  sent(): number;
}

/**
 * Bounded load: every ~50 ms `call` once for each ready pod of the app (the pods listed again
 * every `perList` rounds), until stopped, `minutes` have passed or `max` calls have ended.
 */
export function podLoad(
  client: KubeClient,
  ns: string,
  app: string,
  call: (pod: Pod) => Promise<unknown>,
  { perList = 10, minutes = 3, max = 20_000 } = {},
): PodLoad {
  let stopped = false;
  let sent = 0;
  const deadline = Date.now() + minutes * 60_000;
  const done = (async () => {
    while (!stopped && Date.now() < deadline && sent < max) {
      const pods = (await podsOf(client, ns, `app.kubernetes.io/name=${app}`)).filter(isReady);
      for (let i = 0; i < perList && !stopped; i++) {
        await Promise.all(pods.map((p) => call(p).finally(() => sent++)));
        await sleep(50);
      }
    }
  })();
  return { stop: async () => ((stopped = true), await done), sent: () => sent };
}

/** One GET to the pod's proxy (inbound port), the body read; a failure is ignored. */
export const getThroughProxy = (pod: Pod): Promise<unknown> =>
  fetch(`http://${pod.status?.podIP}:15006/`, { signal: AbortSignal.timeout(3_000) })
    .then((r) => r.arrayBuffer())
    .catch(() => undefined);
