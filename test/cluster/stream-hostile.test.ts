/**
 * The route stream under hostile and heavy callers, against a real kube-apiserver: real
 * TokenRequest tokens (wrong audience, forged, revoked, another namespace's) and 1,000
 * concurrent subscribers. The controller runs as the install runs it: the webhook process
 * with deploy/namespace.yaml and deploy/rbac.yaml applied and a kubeconfig holding the token of
 * the ServiceAccount verso-system/verso-webhook, so every call it makes here is one that
 * deploy/rbac.yaml grants (test/golden/rbac.test.ts checks the same statically).
 *
 * Memory is the webhook process's own (VmRSS / VmHWM in /proc/<pid>/status), against the
 * Deployment's 512 MiB limit.
 */
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABEL } from "../../shared/annotations.ts";
import { startCluster, type Cluster } from "../harness/cluster.ts";
import { writeKubeconfig } from "../harness/kubeconfig.ts";
import { sample } from "../harness/metrics.ts";
import { DEPLOY_DIR } from "../harness/paths.ts";
import { sleep, waitFor } from "../harness/ports.ts";
import { startWebhook, type Webhook } from "../harness/webhook.ts";
import { annotate, openStream, serviceAccountToken } from "./controllerFixtures.ts";
import { createNamespace, deployment } from "./fixtures.ts";

const NS = "hostile";
const OTHER = "elsewhere";
const SUBSCRIBERS = 1_000;
const MiB = 1024 * 1024;

let cluster: Cluster;
let webhook: Webhook;
let token: string;
const client = () => cluster.cp.client;
const report: string[] = [];

/** VmRSS and VmHWM (peak) of the webhook process, in MiB. */
function memory(): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${webhook.process.pid}/status`, "utf8");
  const kib = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { rss: (kib("VmRSS") * 1024) / MiB, peak: (kib("VmHWM") * 1024) / MiB };
}

/** RSS and where it is: the V8 heap in use, and memory outside it (buffers, TLS). */
async function memoryReport(when: string): Promise<string> {
  const m = memory();
  const metrics = await webhook.fetchText("/metrics");
  const heap = sample(metrics, "nodejs_heap_size_used_bytes") / MiB;
  const external = sample(metrics, "nodejs_external_memory_bytes") / MiB;
  return `${when}: RSS ${m.rss.toFixed(0)} MiB (peak ${m.peak.toFixed(0)}), V8 heap used ${heap.toFixed(0)} MiB, external ${external.toFixed(0)} MiB`;
}

beforeAll(async () => {
  cluster = await startCluster({ crds: false, controller: false, webhook: false, kubelet: false });
  // The install's namespace and RBAC, as `kubectl apply -k deploy/` makes them.
  for (const file of ["namespace.yaml", "rbac.yaml"]) {
    const r = await cluster.kubectl(["apply", "-f", join(DEPLOY_DIR, file)]);
    if (r.code !== 0) throw new Error(`kubectl apply ${file}: ${r.stderr}`);
  }
  // The ServiceAccount's own token, for the apiserver's audience (as a pod's mounted token).
  const sa = await client().create<{ status: { token: string } }>(
    "/api/v1/namespaces/verso-system/serviceaccounts/verso-webhook/token",
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 3600 },
    },
  );
  const kubeconfig = join(cluster.cp.dir, "verso-webhook-sa.kubeconfig");
  writeKubeconfig(kubeconfig, { ...cluster.cp.credentials, token: sa.status.token });
  webhook = await startWebhook({
    cp: cluster.cp,
    controller: true,
    args: ["--kubeconfig", kubeconfig, "--log-level", "info"],
  });

  await createNamespace(client(), NS, { [LABEL.injection]: "enabled" });
  await createNamespace(client(), OTHER, { [LABEL.injection]: "enabled" });
  // No kubelet: the Deployments alone make the app's table (no endpoints yet).
  await client().create(
    `/apis/apps/v1/namespaces/${NS}/deployments`,
    deployment("shop-v1", "v1", 0),
  );
  token = await serviceAccountToken(client(), NS);
  const first = await waitFor(
    "route stream",
    () => openStream(webhook.url, webhook.ca.cert, NS, "shop", token),
    30_000,
    500,
  );
  await first.until("the first table", () => true, 30_000);
  first.close();
  report.push(await memoryReport("webhook ready, controller synced"));
});

afterAll(async () => {
  if (report.length > 0) console.info(`route stream, hostile and heavy:\n  ${report.join("\n  ")}`);
  await webhook?.stop();
  await cluster?.stop();
});

interface Refusal {
  status: number;
  reason: string | undefined;
  ms: number;
}

/** One request to the stream; for a 200, closed after the head. */
function ask(query: string, authorization?: string): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const req = request(`${webhook.url}/v1/routes?${query}`, {
      ca: webhook.ca.cert,
      agent: false,
      headers: authorization === undefined ? {} : { authorization },
      timeout: 15_000,
    });
    req.once("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      const done = (): void => {
        let reason: string | undefined;
        try {
          const j = JSON.parse(body) as { reason?: string; code?: string };
          reason = j.reason ?? j.code;
        } catch {
          reason = undefined;
        }
        resolve({ status: res.statusCode ?? 0, reason, ms: Date.now() - started });
      };
      if (res.statusCode === 200) {
        req.destroy();
        done();
        return;
      }
      res.on("data", (c: string) => (body += c));
      res.on("end", done);
    });
    req.once("error", reject);
    req.end();
  });
}

/** A token for `audience`, optionally bound to an object (deleting it revokes the token). */
async function tokenFor(
  ns: string,
  audience: string,
  boundTo?: { kind: "Secret"; name: string; uid: string },
): Promise<string> {
  const r = await client().create<{ status: { token: string } }>(
    `/api/v1/namespaces/${ns}/serviceaccounts/default/token`,
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: {
        audiences: [audience],
        expirationSeconds: 3600,
        ...(boundTo ? { boundObjectRef: { apiVersion: "v1", ...boundTo } } : {}),
      },
    },
  );
  return r.status.token;
}

/** The same JWT with its payload changed: the signature no longer matches. */
function forged(jwt: string, change: (claims: Record<string, unknown>) => void): string {
  const [head, payload, signature] = jwt.split(".");
  const claims = JSON.parse(Buffer.from(payload!, "base64url").toString("utf8")) as Record<
    string,
    unknown
  >;
  change(claims);
  return [head, Buffer.from(JSON.stringify(claims)).toString("base64url"), signature].join(".");
}

describe("route stream: who is let in (real tokens, real TokenReview)", () => {
  it("refuses every caller but a token of the namespace's own service account for audience verso", async () => {
    const q = `namespace=${NS}&app=shop`;
    const secret = await client().create<{ metadata: { name: string; uid: string } }>(
      `/api/v1/namespaces/${NS}/secrets`,
      { apiVersion: "v1", kind: "Secret", metadata: { name: "revoke-me" } },
    );
    const revoked = await tokenFor(NS, "verso", { kind: "Secret", ...secret.metadata });
    await client().delete(`/api/v1/namespaces/${NS}/secrets/revoke-me`);
    const otherSa = `system:serviceaccount:${OTHER}:default`;
    const cases: [string, string, string | undefined, number, string][] = [
      ["no Authorization", q, undefined, 401, "NoToken"],
      [
        "Basic credentials",
        q,
        `Basic ${Buffer.from("admin:admin").toString("base64")}`,
        401,
        "NoToken",
      ],
      ["an empty bearer", q, "Bearer ", 401, "NoToken"],
      ["a garbage bearer", q, "Bearer not-a-token", 401, "TokenInvalid"],
      ["a 12 KB garbage bearer", q, `Bearer ${"x".repeat(12 * 1024)}`, 401, "TokenInvalid"],
      [
        "a token for the apiserver's audience",
        q,
        `Bearer ${await tokenFor(NS, "https://kubernetes.default.svc.cluster.local")}`,
        401,
        "TokenInvalid",
      ],
      [
        "a token for audience verso-other",
        q,
        `Bearer ${await tokenFor(NS, "verso-other")}`,
        401,
        "TokenInvalid",
      ],
      ["a token whose bound Secret was deleted", q, `Bearer ${revoked}`, 401, "TokenInvalid"],
      [
        "this namespace's token, its claims rewritten to another namespace",
        `namespace=${OTHER}&app=shop`,
        `Bearer ${forged(token, (c) => {
          c.sub = otherSa;
        })}`,
        401,
        "TokenInvalid",
      ],
      [
        "the cluster admin's static token (not a service account)",
        q,
        `Bearer ${cluster.cp.credentials.token}`,
        401,
        "TokenInvalid",
      ],
      [
        "another namespace's token (kept from controller-routes)",
        q,
        `Bearer ${await tokenFor(OTHER, "verso")}`,
        403,
        "WrongNamespace",
      ],
      [
        "this namespace's token, for another namespace's tables",
        `namespace=${OTHER}&app=shop`,
        `Bearer ${token}`,
        403,
        "WrongNamespace",
      ],
      ["a bad query", `namespace=${NS}&app=../x`, `Bearer ${token}`, 400, "BadQuery"],
      [
        "a 20 KB Authorization header (over Node's 16 KB head limit)",
        q,
        `Bearer ${"x".repeat(20 * 1024)}`,
        431,
        "headers_too_large",
      ],
    ];
    const got: [string, number, string | undefined][] = [];
    for (const [name, query, auth] of cases) {
      const r = await ask(query, auth);
      report.push(`${name}: ${r.status} ${r.reason} in ${r.ms} ms`);
      got.push([name, r.status, r.reason]);
      expect(r.ms).toBeLessThan(5_000);
    }
    expect(got).toEqual(cases.map(([name, , , status, reason]) => [name, status, reason]));
    // And the right caller is let in.
    expect((await ask(q, `Bearer ${token}`)).status).toBe(200);
  });

  it("200 distinct garbage tokens at once: all 401, and a valid subscriber is served meanwhile", async () => {
    const started = Date.now();
    const flood = Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        ask(`namespace=${NS}&app=shop`, `Bearer garbage-${i}-${Date.now()}`),
      ),
    );
    const t = Date.now();
    const valid = await ask(`namespace=${NS}&app=shop`, `Bearer ${token}`);
    const validMs = Date.now() - t;
    const results = await flood;
    const statuses = [...new Set(results.map((r) => `${r.status} ${r.reason}`))];
    report.push(
      `200 garbage tokens at once: ${JSON.stringify(statuses)} in ${Date.now() - started} ms ` +
        `(slowest ${Math.max(...results.map((r) => r.ms))} ms); a valid subscriber meanwhile: ${valid.status} in ${validMs} ms`,
    );
    report.push(await memoryReport("after 200 garbage tokens"));
    expect(statuses).toEqual(["401 TokenInvalid"]);
    expect(valid.status).toBe(200);
  });
});

interface Subscriber {
  /** Newest table revision received (-1: none yet). */
  revision: number;
  heartbeats: number;
  ended: boolean;
  close(): void;
}

/** Opens a stream; a 503 (ReviewUnavailable) is retried after 1 s, as the proxy does. */
async function subscribe(
  agent: Agent,
  tok: string,
  retried: Map<string, number>,
): Promise<Subscriber> {
  for (;;) {
    const result = await new Promise<Subscriber | string>((resolve, reject) => {
      const req = request(`${webhook.url}/v1/routes?namespace=${NS}&app=shop`, {
        ca: webhook.ca.cert,
        agent,
        headers: { authorization: `Bearer ${tok}`, accept: "text/event-stream" },
      });
      req.once("error", reject);
      req.once("response", (res) => {
        if (res.statusCode !== 200) {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve(`${res.statusCode} ${body.slice(0, 80)}`));
          return;
        }
        const sub: Subscriber = {
          revision: -1,
          heartbeats: 0,
          ended: false,
          close: () => req.destroy(),
        };
        let buf = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buf += chunk;
          for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (block === ": hb") sub.heartbeats++;
            const id = /^id: (\d+)$/m.exec(block);
            if (id) sub.revision = Number(id[1]);
          }
        });
        res.once("close", () => (sub.ended = true));
        resolve(sub);
      });
      req.end();
    });
    if (typeof result !== "string") return result;
    retried.set(result, (retried.get(result) ?? 0) + 1);
    await sleep(1_000);
  }
}

async function mintTokens(n: number, concurrency = 25): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i += concurrency) {
    out.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(concurrency, n - i) }, () =>
          serviceAccountToken(client(), NS),
        ),
      )),
    );
  }
  return out;
}

describe(`route stream: ${SUBSCRIBERS} concurrent subscribers`, () => {
  it("all connect (each with its own token), get every table, and fit in the Deployment's 512 MiB", async () => {
    let t = Date.now();
    const tokens = await mintTokens(SUBSCRIBERS);
    const mintMs = Date.now() - t;
    const idle = memory();
    const metricsBefore = await webhook.fetchText("/metrics");
    const current = (await openStreamRevision()) ?? 0;

    const agent = new Agent({ ca: webhook.ca.cert, keepAlive: false, maxSockets: Infinity });
    const retried = new Map<string, number>();
    const subs: Subscriber[] = [];
    try {
      t = Date.now();
      subs.push(...(await Promise.all(tokens.map((tok) => subscribe(agent, tok, retried)))));
      await waitFor(
        "every subscriber's first table",
        async () => (subs.every((s) => s.revision >= current) ? true : undefined),
        60_000,
        100,
      );
      const connectMs = Date.now() - t;
      const open = memory();
      report.push(await memoryReport(`${SUBSCRIBERS} streams open`));
      const metrics = await webhook.fetchText("/metrics");
      expect(sample(metrics, "verso_controller_route_subscribers")).toBe(SUBSCRIBERS);

      // A change reaches all of them.
      t = Date.now();
      await client().create(
        `/apis/apps/v1/namespaces/${NS}/deployments`,
        deployment("shop-v2", "v2", 0, {
          annotations: { "verso.dev/strategy": "canary", "verso.dev/weight": "10" },
        }),
      );
      await waitFor(
        "the new table at every subscriber",
        async () => (subs.every((s) => s.revision > current) ? true : undefined),
        30_000,
        20,
      );
      const fanOutMs = Date.now() - t;
      const next = subs[0]!.revision;
      t = Date.now();
      await annotate(client(), NS, "shop-v2", { "verso.dev/weight": "20" });
      await waitFor(
        "a second table at every subscriber",
        async () => (subs.every((s) => s.revision > next) ? true : undefined),
        30_000,
        20,
      );
      const fanOut2Ms = Date.now() - t;

      // A newcomer is served promptly next to 1,000 open streams.
      t = Date.now();
      const newcomer = await openStream(webhook.url, webhook.ca.cert, NS, "shop", token);
      await newcomer.until("its table", () => true, 10_000);
      const newcomerMs = Date.now() - t;
      newcomer.close();

      // Heartbeats (every 10 s) keep them all alive.
      await waitFor(
        "a heartbeat at every subscriber",
        async () => (subs.every((s) => s.heartbeats > 0) ? true : undefined),
        15_000,
        200,
      );
      const after = memory();
      report.push(
        `${SUBSCRIBERS} subscribers (${SUBSCRIBERS} tokens minted in ${mintMs} ms): all connected with their table in ${connectMs} ms, ` +
          `retried: ${JSON.stringify(Object.fromEntries(retried))}; ` +
          `TokenReviews cached ${sample(metrics, "verso_controller_review_cache_entries")} (before: ${sample(metricsBefore, "verso_controller_review_cache_entries")})`,
        `fan-out: a new table at all ${SUBSCRIBERS} in ${fanOutMs} ms (Deployment created), ${fanOut2Ms} ms (annotation changed); ` +
          `a newcomer got its table in ${newcomerMs} ms`,
        `webhook RSS: idle ${idle.rss.toFixed(0)} MiB, with ${SUBSCRIBERS} open ${open.rss.toFixed(0)} MiB, ` +
          `after fan-out and heartbeats ${after.rss.toFixed(0)} MiB; peak ${after.peak.toFixed(0)} MiB (limit 512)`,
      );
      expect(subs.every((s) => !s.ended)).toBe(true);
      expect(after.peak).toBeLessThan(512);
      expect(fanOutMs).toBeLessThan(5_000);
      expect(newcomerMs).toBeLessThan(2_000);
    } finally {
      for (const s of subs) s.close();
      agent.destroy();
    }
    await waitFor(
      "the hub forgets them",
      async () =>
        sample(await webhook.fetchText("/metrics"), "verso_controller_route_subscribers") === 0
          ? true
          : undefined,
      15_000,
      200,
    );
  });

  it("ran with deploy/rbac.yaml's grants only: no forbidden call, leader, hop key made", async () => {
    const log = readFileSync(webhook.process.logFile, "utf8");
    expect(log).not.toMatch(/forbidden|CONTROLLER_FORBIDDEN|403/i);
    expect(sample(await webhook.fetchText("/metrics"), "verso_controller_leader")).toBe(1);
    expect(
      await client().getOptional("/api/v1/namespaces/verso-system/secrets/verso-hop-key"),
    ).toBeDefined();
  });
});

/** The revision of the app's table right now (a fresh stream's first event). */
async function openStreamRevision(): Promise<number | undefined> {
  const s = await openStream(webhook.url, webhook.ca.cert, NS, "shop", token);
  try {
    return (await s.until("the table", () => true, 10_000)).revision;
  } finally {
    s.close();
  }
}
