/**
 * The controller against a real apiserver: the webhook process (controller inside) watches
 * an opted-in namespace whose Deployments the stand-in kubelet runs as processes; a test
 * client subscribes to the route stream over TLS with a real TokenRequest token.
 */
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABEL } from "../../shared/annotations.ts";
import { startCluster, type Cluster } from "../harness/cluster.ts";
import { sample } from "../harness/metrics.ts";
import { sleep, waitFor } from "../harness/ports.ts";
import {
  annotate,
  eventsFor,
  getRoutes,
  openStream,
  serviceAccountToken,
  statusOf,
  waitForPhase,
  type TableStream,
} from "./controllerFixtures.ts";
import { createNamespace, deployment } from "./fixtures.ts";

const NS = "routes";

describe("controller: routing tables from a real apiserver", () => {
  let cluster: Cluster;
  let stream: TableStream;
  let token: string;
  const client = () => cluster.cp.client;
  const url = () => cluster.webhook!.url;
  const ca = () => cluster.webhook!.ca.cert;

  beforeAll(async () => {
    cluster = await startCluster({ crds: false, controller: true });
    await createNamespace(client(), NS, { [LABEL.injection]: "enabled" });
    await createNamespace(client(), "other", { [LABEL.injection]: "enabled" });
    await client().create(
      `/apis/apps/v1/namespaces/${NS}/deployments`,
      deployment("shop-v1", "v1"),
    );
    await client().create(
      `/apis/apps/v1/namespaces/${NS}/deployments`,
      deployment("shop-v2", "v2"),
    );
    token = await serviceAccountToken(client(), NS);
    stream = await waitFor(
      "route stream",
      () => openStream(url(), ca(), NS, "shop", token),
      30_000,
      500,
    );
  });

  afterAll(async () => {
    stream?.close();
    await cluster?.stop();
  });

  it("streams the ready endpoints of every version on the proxy's inbound port, with a hop key", async () => {
    const t = await stream.until(
      "both versions ready",
      (t) => t.endpoints.v1?.length === 1 && t.endpoints.v2?.length === 1,
      120_000,
    );
    expect(t.app).toBe("shop");
    expect(t.endpoints.v1?.[0]).toMatch(/^127\.0\.\d+\.\d+:15006$/);
    expect(t.release).toBeUndefined();
    expect(Buffer.from(t.hopKey ?? "", "base64").length).toBe(32);
  });

  it("the webhook's /metrics shows the open stream, its cached review and the leader", async () => {
    const text = await cluster.webhook!.fetchText("/metrics");
    expect(sample(text, "verso_controller_route_subscribers")).toBeGreaterThanOrEqual(1);
    expect(sample(text, "verso_controller_review_cache_entries")).toBeGreaterThanOrEqual(1);
    expect(sample(text, "verso_controller_leader")).toBe(1);
  });

  it("an annotation change reaches the subscribed stream", async () => {
    const before = stream.latest()!.revision;
    await annotate(client(), NS, "shop-v2", {
      "verso.dev/strategy": "canary",
      "verso.dev/weight": "20",
      "verso.dev/match": "header:x-user-type=internal",
    });
    const t = await stream.until("release v2 at 20%", (t) => t.release?.weight === 20);
    expect(t.revision).toBeGreaterThan(before);
    expect(t.release).toEqual({
      version: "v2",
      strategy: "canary",
      weight: 20,
      // verso.dev/cutoff-failures' default: the proxies' fast cut-off.
      cutoffFailures: 5,
      match: [{ header: "x-user-type", value: "internal" }],
    });
    await waitFor(
      "status WeightSet",
      async () =>
        (await statusOf(client(), NS, "shop-v2"))?.reason === "WeightSet" ? true : undefined,
      15_000,
    );
  });

  it("a bad annotation gives a Warning Event and status message, and keeps the last good table", async () => {
    const revision = stream.latest()!.revision;
    await annotate(client(), NS, "shop-v2", { "verso.dev/weight": "140" });
    const ev = await waitFor(
      "PolicyInvalid event",
      async () =>
        (await eventsFor(client(), NS, "shop-v2")).find((e) => e.reason === "PolicyInvalid"),
      15_000,
    );
    expect(ev.type).toBe("Warning");
    expect(ev.message).toContain("verso.dev/weight");
    const status = await waitFor(
      "status with the policy error",
      async () => {
        const s = await statusOf(client(), NS, "shop-v2");
        return s?.policyErrors?.includes("POLICY_WEIGHT") ? s : undefined;
      },
      15_000,
    );
    expect(status.message).toContain("140");
    await sleep(1_000);
    expect(stream.latest()!.release?.weight).toBe(20);
    expect(stream.tables.filter((t) => t.revision > revision && t.release?.weight !== 20)).toEqual(
      [],
    );
    await annotate(client(), NS, "shop-v2", { "verso.dev/weight": "35" });
    await stream.until("fixed weight 35", (t) => t.release?.weight === 35);
  });

  it("pods becoming ready or going away change the endpoints", async () => {
    await client().patch(`/apis/apps/v1/namespaces/${NS}/deployments/shop-v1`, {
      spec: { replicas: 2 },
    });
    const two = await stream.until(
      "two v1 endpoints",
      (t) => t.endpoints.v1?.length === 2,
      120_000,
    );
    expect(new Set(two.endpoints.v1).size).toBe(2);
    await client().patch(`/apis/apps/v1/namespaces/${NS}/deployments/shop-v1`, {
      spec: { replicas: 0 },
    });
    const none = await stream.until(
      "no v1 endpoints",
      (t) => t.endpoints.v1 === undefined && (t.endpoints.v2?.length ?? 0) === 1,
      60_000,
    );
    expect(none.release?.version).toBe("v2");
  });

  it("refuses a missing token, a garbage token, a wrong audience and another namespace", async () => {
    const q = `namespace=${NS}&app=shop`;
    const none = await getRoutes(url(), ca(), q);
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body).reason).toBe("NoToken");
    const garbage = await getRoutes(url(), ca(), q, "not-a-token");
    expect(garbage.status).toBe(401);
    expect(JSON.parse(garbage.body).reason).toBe("TokenInvalid");
    const wrongAudience = await getRoutes(
      url(),
      ca(),
      q,
      await serviceAccountToken(
        client(),
        NS,
        "default",
        "https://kubernetes.default.svc.cluster.local",
      ),
    );
    expect(wrongAudience.status).toBe(401);
    const otherNs = await getRoutes(url(), ca(), q, await serviceAccountToken(client(), "other"));
    expect(otherNs.status).toBe(403);
    expect(JSON.parse(otherNs.body).reason).toBe("WrongNamespace");
    const own = await getRoutes(url(), ca(), q, token);
    expect(own.status).toBe(200);
  });

  it("a second Deployment carrying a strategy: the newest wins, the other gets a Warning", async () => {
    await client().create(
      `/apis/apps/v1/namespaces/${NS}/deployments`,
      deployment("shop-v3", "v3", 0, { annotations: { "verso.dev/strategy": "blue-green" } }),
    );
    await stream.until(
      "v3 is the release",
      (t) => t.release?.version === "v3" && t.release.strategy === "blue-green",
    );
    const ev = await waitFor(
      "Superseded event",
      async () => (await eventsFor(client(), NS, "shop-v2")).find((e) => e.reason === "Superseded"),
      15_000,
    );
    expect(ev.type).toBe("Warning");
    await client().delete(`/apis/apps/v1/namespaces/${NS}/deployments/shop-v3`);
    await stream.until("v2 is the release again", (t) => t.release?.version === "v2");
  });

  it("manual control: abort drops to 0 at once and removing it restarts; blue-green switches in one table", async () => {
    await annotate(client(), NS, "shop-v2", { "verso.dev/abort": "true" });
    const aborted = await stream.until("aborted: weight 0", (t) => t.release?.weight === 0);
    expect(aborted.release?.match).toBeUndefined();
    await waitFor(
      "status Aborted",
      async () =>
        (await statusOf(client(), NS, "shop-v2"))?.reason === "Aborted" ? true : undefined,
      15_000,
    );
    await annotate(client(), NS, "shop-v2", { "verso.dev/abort": null });
    await stream.until("restarted at 35%", (t) => t.release?.weight === 35);

    await annotate(client(), NS, "shop-v2", {
      "verso.dev/strategy": "blue-green",
      "verso.dev/weight": null,
      "verso.dev/promote": "false",
    });
    await stream.until(
      "blue-green preview",
      (t) => t.release?.strategy === "blue-green" && t.release.weight === 0,
    );
    const from = stream.tables.length;
    await annotate(client(), NS, "shop-v2", { "verso.dev/promote": "true" });
    await stream.until("blue-green switched", (t) => t.release?.weight === 100);
    expect(stream.tables.slice(from).map((t) => t.release?.weight)).toEqual([100]);
    await waitForPhase(client(), NS, "shop-v2", "Promoted", 15_000);
    await annotate(client(), NS, "shop-v2", { "verso.dev/promote": "false" });
    await stream.until("switched back", (t) => t.release?.weight === 0);
  });

  it("an app with a gRPC port gets grpcEndpoints on the proxy's gRPC listener; others do not", async () => {
    await client().create(
      `/apis/apps/v1/namespaces/${NS}/deployments`,
      deployment("rpc-v1", "v1", 1, {
        app: "rpc",
        extraPorts: [{ name: "grpc", containerPort: 9090 }],
      }),
    );
    const rpc = await waitFor(
      "rpc route stream",
      () => openStream(url(), ca(), NS, "rpc", token),
      30_000,
      500,
    );
    try {
      const t = await rpc.until(
        "rpc v1 ready with a gRPC endpoint",
        (t) => t.endpoints.v1?.length === 1 && t.grpcEndpoints?.v1?.length === 1,
        120_000,
      );
      const http = t.endpoints.v1?.[0] ?? "";
      const grpc = t.grpcEndpoints?.v1?.[0] ?? "";
      expect(grpc).toMatch(/^127\.0\.\d+\.\d+:15007$/);
      expect(grpc.replace(/:15007$/, "")).toBe(http.replace(/:15006$/, ""));
      // The injected proxy really listens there (the env contract reached a real proxy).
      const [host, port] = [grpc.replace(/:\d+$/, ""), 15007];
      await new Promise<void>((resolve, reject) => {
        const socket = connect({ host, port }, () => {
          socket.end();
          resolve();
        });
        socket.on("error", reject);
      });
    } finally {
      rpc.close();
      await client().delete(`/apis/apps/v1/namespaces/${NS}/deployments/rpc-v1`);
    }
    // The shop app never had a gRPC port: its table carries no grpcEndpoints at all.
    expect(stream.latest()).not.toHaveProperty("grpcEndpoints");
  });

  it("opting the namespace out stops its tables; opting in again brings them back", async () => {
    await client().patch(`/api/v1/namespaces/${NS}`, {
      metadata: { labels: { [LABEL.injection]: null } },
    });
    await waitFor(
      "stream refused after opt-out... or table kept",
      async () => {
        const r = await getRoutes(url(), ca(), `namespace=${NS}&app=shop`, token);
        return r.status === 200 && !r.body.includes("event: table") ? true : undefined;
      },
      15_000,
    );
    await client().patch(`/api/v1/namespaces/${NS}`, {
      metadata: { labels: { [LABEL.injection]: "enabled" } },
    });
    await waitFor(
      "table back",
      async () => {
        const r = await getRoutes(url(), ca(), `namespace=${NS}&app=shop`, token);
        return r.body.includes("event: table") ? true : undefined;
      },
      15_000,
    );
  });
});
