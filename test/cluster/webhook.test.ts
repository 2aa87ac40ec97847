/**
 * (a) The real kube-apiserver calls Verso's webhook over TLS (caBundle from a generated CA):
 * injection where opted in, nothing elsewhere, dry runs mutated the same way, kube-system
 * never sent, and the failurePolicy shipped in deploy/ honoured when the webhook is down.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABEL } from "../../shared/annotations.ts";
import { ENV, GRPC_PORT_NAME, INIT_CONTAINER, PROXY_CONTAINER } from "../../shared/pod-env.ts";
import { startCluster, type Cluster } from "../harness/cluster.ts";
import { sample } from "../harness/metrics.ts";
import type { Pod } from "../harness/podTypes.ts";
import { waitFor } from "../harness/ports.ts";
import { shippedWebhook } from "../harness/webhook.ts";
import { allContainers, createNamespace, demoPod, deployment, podsOf } from "./fixtures.ts";

const WEBHOOK_CALLS = "apiserver_admission_webhook_admission_duration_seconds_count";

describe("webhook called by a real apiserver", () => {
  let cluster: Cluster;

  const client = () => cluster.cp.client;
  // The apiserver's own count of admission calls to our webhook, by webhook name.
  const calls = async (): Promise<number> =>
    sample(await client().text("/metrics"), WEBHOOK_CALLS, {
      name: cluster.webhookEntry?.name ?? "",
      type: "admit",
    });

  beforeAll(async () => {
    cluster = await startCluster({ kubelet: false, crds: false });
    await createNamespace(client(), "shop", { [LABEL.injection]: "enabled" });
    await createNamespace(client(), "plain");
    // The apiserver picks up a new webhook configuration asynchronously: wait until a dry run
    // in the opted-in namespace comes back injected.
    await waitFor(
      "webhook configuration in effect",
      async () => {
        const pod = await client().create<Pod>("/api/v1/namespaces/shop/pods", demoPod("probe"), {
          dryRun: "All",
        });
        return allContainers(pod).includes(PROXY_CONTAINER) ? true : undefined;
      },
      30_000,
      250,
    );
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it("injects and labels pods a Deployment makes in an opted-in namespace", async () => {
    await client().create(
      "/apis/apps/v1/namespaces/shop/deployments",
      deployment("shop-v1", "v1", 2),
    );
    const pods = await waitFor(
      "2 pods from shop-v1",
      async () => {
        const found = await podsOf(client(), "shop", "app.kubernetes.io/version=v1");
        return found.length === 2 ? found : undefined;
      },
      60_000,
    );
    for (const pod of pods) {
      expect(pod.metadata.labels?.[LABEL.app]).toBe("shop");
      expect(pod.metadata.labels?.[LABEL.version]).toBe("v1");
      expect(allContainers(pod)).toContain(PROXY_CONTAINER);
      expect(allContainers(pod)).toContain("app");
    }
  });

  it("leaves pods in a namespace without the label alone", async () => {
    const pod = await client().create<Pod>("/api/v1/namespaces/plain/pods", demoPod("plain-1"));
    expect(allContainers(pod)).toEqual(["app"]);
    expect(pod.metadata.labels?.[LABEL.app]).toBeUndefined();
  });

  it("leaves an opted-out pod alone", async () => {
    const pod = await client().create<Pod>(
      "/api/v1/namespaces/shop/pods",
      demoPod("opted-out", { "verso.dev/inject": "false" }),
    );
    expect(allContainers(pod)).toEqual(["app"]);
    expect(pod.metadata.labels?.[LABEL.version]).toBeUndefined();
  });

  it("mutates a server-side dry run the same way, and persists nothing", async () => {
    const dry = await client().create<Pod>("/api/v1/namespaces/shop/pods", demoPod("dry-1"), {
      dryRun: "All",
    });
    const real = await client().create<Pod>("/api/v1/namespaces/shop/pods", demoPod("real-1"));
    expect(allContainers(dry)).toContain(PROXY_CONTAINER);
    expect(allContainers(dry)).toEqual(allContainers(real));
    expect(dry.metadata.labels).toEqual(real.metadata.labels);
    expect(await client().getOptional("/api/v1/namespaces/shop/pods/dry-1")).toBeUndefined();
  });

  it("gives a pod with a gRPC port the gRPC listener; the apiserver accepts the result", async () => {
    // The harness's webhook runs with --capture port; this pod is never run, so it can ask
    // for iptables capture and show verso-init's env too.
    const pod = demoPod("rpc-1", { "verso.dev/capture": "iptables" });
    const app = pod.spec.containers[0]!;
    app.ports = [...(app.ports ?? []), { name: "grpc", containerPort: 9090 }];
    // A kubelet gRPC probe (not in the harness's Probe type: its kubelet does not run them)
    // must reach the apiserver untouched by the webhook and pass its validation.
    const grpcProbe = { grpc: { port: 9090 }, periodSeconds: 5 };
    app.readinessProbe = grpcProbe;
    const created = await client().create<Pod>("/api/v1/namespaces/shop/pods", pod);
    const all = [...(created.spec.initContainers ?? []), ...created.spec.containers];
    const envOf = (name: string): Record<string, string | undefined> =>
      Object.fromEntries(
        (all.find((c) => c.name === name)?.env ?? []).map((e) => [e.name, e.value]),
      );
    expect(envOf(PROXY_CONTAINER)).toMatchObject({
      [ENV.app]: "127.0.0.1:8080",
      [ENV.grpcListen]: "0.0.0.0:15007",
      [ENV.grpcApp]: "127.0.0.1:9090",
    });
    expect(envOf(INIT_CONTAINER)).toMatchObject({
      [ENV.capturePorts]: "8080",
      [ENV.captureGrpcPorts]: "9090",
    });
    const proxy = all.find((c) => c.name === PROXY_CONTAINER);
    expect(proxy?.ports?.map((p) => p.name)).toContain(GRPC_PORT_NAME);
    const stored = created.spec.containers.find((c) => c.name === "app");
    expect(stored?.readinessProbe).toMatchObject({ grpc: { port: 9090 } });
  });

  it("is never called for kube-system, and is counted when it is called", async () => {
    const before = await calls();
    await client().create("/api/v1/namespaces/kube-system/pods", demoPod("system-1"));
    const afterSystem = await calls();
    await client().create("/api/v1/namespaces/shop/pods", demoPod("counted-1"));
    const afterShop = await calls();
    expect(afterSystem).toBe(before);
    expect(afterShop).toBeGreaterThan(afterSystem);
  });

  // Last: stops the webhook.
  it("applies the shipped failurePolicy when the webhook is down", async () => {
    const policy = cluster.webhookEntry?.failurePolicy ?? "Fail";
    const { file: source } = shippedWebhook();
    await cluster.webhook?.stop();
    const attempt = client().create<Pod>("/api/v1/namespaces/shop/pods", demoPod("while-down"));
    if (policy === "Ignore") {
      const pod = await attempt;
      expect(allContainers(pod), `failurePolicy Ignore from ${source}`).toEqual(["app"]);
    } else {
      await expect(attempt, `failurePolicy ${policy} from ${source}`).rejects.toMatchObject({
        status: 500,
      });
    }
  });
});
