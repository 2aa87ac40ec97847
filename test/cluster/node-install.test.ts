/**
 * The real node: Verso installed from deploy/ as users install it, injected pods started by
 * a real kubelet in containerd, traffic from the host through real pod IPs and a ClusterIP.
 */
import { describe, expect, it } from "vitest";
import { sample as scrape } from "../harness/metrics.ts";
import type { Container, Pod } from "../harness/podTypes.ts";
import { waitFor } from "../harness/ports.ts";
import { METRIC } from "../../shared/metric-names.ts";
import { createNamespace, podsOf } from "./fixtures.ts";
import { annotate } from "./controllerFixtures.ts";
import {
  NO_NODE,
  clusterIp,
  installDemo,
  readyPods,
  sample,
  useNodeCluster,
} from "./nodeFixtures.ts";

const metricsOf = async (pod: Pod): Promise<string> =>
  (await fetch(`http://${pod.status?.podIP}:15020/metrics`)).text();

/** Requests this pod's proxy handled: served by its app, or forwarded to a peer by the weights. */
const handledBy = (text: string): number =>
  scrape(text, METRIC.requests) + scrape(text, METRIC.forwards);

describe.skipIf(NO_NODE !== undefined)(
  `real node${NO_NODE ? ` (skipped: ${NO_NODE})` : ""}`,
  () => {
    const node = useNodeCluster();
    let demo: Pod[] = [];

    it("runs the webhook from deploy/ as its Deployment, never injected itself", async () => {
      const cluster = node.get();
      const pods = await podsOf(cluster.cp.client, "verso-system");
      expect(pods.length).toBe(2);
      for (const pod of pods) {
        expect(pod.status?.phase).toBe("Running");
        expect(pod.spec.nodeName).toBe("verso-node");
        expect(pod.spec.initContainers ?? []).toEqual([]);
        expect(pod.metadata.annotations?.["verso.dev/injected"]).toBeUndefined();
        // A real pod IP from the node's range, reachable from this host.
        expect(pod.status?.podIP).toMatch(/^10\.251\./);
      }
    });

    it("injects the native sidecar, ready before the app starts, and the iptables init step", async () => {
      const cluster = node.get();
      demo = await installDemo(cluster);
      for (const pod of demo) {
        const init = pod.spec.initContainers ?? [];
        expect(init.map((c) => c.name)).toEqual(["verso-init", "verso-proxy"]);
        const proxy = init[1] as Container;
        expect(proxy.restartPolicy).toBe("Always");
        expect(proxy.startupProbe?.httpGet?.port).toBe(15020);
        const statuses = pod.status?.initContainerStatuses ?? [];
        const initStatus = statuses.find((s) => s.name === "verso-init");
        expect(initStatus?.state).toHaveProperty("terminated.exitCode", 0);
        const proxyStatus = statuses.find((s) => s.name === "verso-proxy");
        expect(proxyStatus?.ready).toBe(true);
        expect(proxyStatus?.started).toBe(true);
        // The kubelet starts the app only once the sidecar's startup probe passed: the proxy
        // was listening before the app wrote its first line (the container runtime's
        // nanosecond log timestamps; containerStatuses' startedAt has whole seconds only).
        const firstLine = async (container: string, pattern: RegExp): Promise<number> => {
          const res = await cluster.kubectl([
            ...["-n", "demo", "logs", pod.metadata.name, "-c", container, "--timestamps"],
          ]);
          const line = res.stdout.split("\n").find((l) => pattern.test(l));
          return Date.parse(line?.split(" ")[0] ?? "");
        };
        const listening = await firstLine("verso-proxy", /proxy listening/);
        const appStarted = await firstLine("app", /./);
        expect(listening).toBeLessThan(appStarted);
        // uid 1337 on a read-only root, as the webhook asks: the kubelet ran it so.
        expect(proxy.securityContext?.runAsUser).toBe(1337);
        expect(proxy.securityContext?.readOnlyRootFilesystem).toBe(true);
      }
    });

    it("captures the app port with iptables: a request to podIP:8080 is counted by the proxy", async () => {
      const pod = demo[0] as Pod;
      const metrics = await metricsOf(pod);
      // A table from the controller's stream: the kubelet's projected, pod-bound token passed
      // the controller's TokenReview.
      expect(scrape(metrics, METRIC.revision)).toBeGreaterThanOrEqual(0);
      const before = handledBy(metrics);
      const res = await fetch(`http://${pod.status?.podIP}:8080/`);
      expect(res.status).toBe(200);
      await res.text();
      // The app itself listens on 8080 too: only the proxy can have counted it. At 90/10 one
      // request in ten is forwarded to the v2 peer, so forwards count as handled too.
      await waitFor(
        "the proxy counts the request",
        async () => (handledBy(await metricsOf(pod)) > before ? true : undefined),
        5_000,
      );
    });

    it("runs the proxy as uid 1337 on a read-only root; kubectl logs and exec reach it", async () => {
      const cluster = node.get();
      const pod = (demo[0] as Pod).metadata.name;
      const exec = (cmd: string): ReturnType<typeof cluster.kubectl> =>
        cluster.kubectl(["-n", "demo", "exec", pod, "-c", "verso-proxy", "--", "sh", "-c", cmd]);
      const id = await exec("id -u");
      expect(id.stdout.trim(), id.stderr).toBe("1337");
      const write = await exec("touch /probe-write 2>&1; echo rc=$?");
      expect(write.stdout).toMatch(/Read-only file system/);
      const logs = await cluster.kubectl(["-n", "demo", "logs", pod, "-c", "verso-proxy"]);
      expect(logs.stdout).toContain("proxy listening");
    });

    it("rewrites the app's readiness probe to the proxy, and it passes", () => {
      for (const pod of demo) {
        const app = pod.spec.containers.find((c) => c.name === "app");
        expect(app?.readinessProbe?.httpGet?.port).toBe(15020);
        expect(app?.readinessProbe?.httpGet?.path).toBe("/app-health/app/readyz");
        expect(pod.status?.containerStatuses?.find((s) => s.name === "app")?.ready).toBe(true);
      }
    });

    it("serves a 20 % canary through the Service's ClusterIP from the host", async () => {
      const cluster = node.get();
      const client = cluster.cp.client;
      await annotate(client, "demo", "shop-v2", { "verso.dev/weight": "20" });
      const ip = await clusterIp(client, "demo", "shop");
      // The controller streams the new table to both proxies; wait until it shows.
      await waitFor(
        "weight 20 in force",
        async () => {
          const r = await sample(`http://${ip}/`, 200);
          const share = (r.byVersion.v2 ?? 0) / r.ok;
          return r.failed === 0 && share > 0.14 ? true : undefined;
        },
        60_000,
        500,
      );
      const n = 1000;
      const report = await sample(`http://${ip}/`, n);
      expect(report.failed, JSON.stringify(report.errors)).toBe(0);
      const share = (report.byVersion.v2 ?? 0) / report.ok;
      // 20 % of 1000: the standard deviation is 1.3 points; 4 of them either side.
      expect(share).toBeGreaterThan(0.147);
      expect(share).toBeLessThan(0.253);
      process.stderr.write(
        `[node] canary at 20 %: v2 served ${(share * 100).toFixed(1)} % of ${n}\n`,
      );
    });

    it("runs port mode without NET_ADMIN", async () => {
      const cluster = node.get();
      const client = cluster.cp.client;
      await cluster.kubectl(
        ["-n", "demo", "apply", "-f", "-"],
        JSON.stringify(portModeDeployment()),
      );
      const [pod] = await readyPods(client, "demo", "app.kubernetes.io/name=plain", 1);
      const containers = [...(pod?.spec.initContainers ?? []), ...(pod?.spec.containers ?? [])];
      expect(containers.map((c) => c.name)).toEqual(["verso-proxy", "app"]);
      for (const c of containers) {
        expect(c.securityContext?.capabilities?.add ?? []).not.toContain("NET_ADMIN");
      }
      const res = await fetch(`http://${pod?.status?.podIP}:15006/`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ version: "v1" });
    });

    it("leaves pods outside opted-in namespaces untouched", async () => {
      const cluster = node.get();
      const client = cluster.cp.client;
      await createNamespace(client, "plain");
      await cluster.kubectl(
        ["-n", "plain", "apply", "-f", "-"],
        JSON.stringify(portModeDeployment()),
      );
      const [pod] = await readyPods(client, "plain", "app.kubernetes.io/name=plain", 1);
      expect(pod?.spec.initContainers ?? []).toEqual([]);
      expect(pod?.spec.containers.map((c) => c.name)).toEqual(["app"]);
      expect(pod?.metadata.annotations?.["verso.dev/injected"]).toBeUndefined();
    });
  },
);

function portModeDeployment(): object {
  const labels = { "app.kubernetes.io/name": "plain", "app.kubernetes.io/version": "v1" };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "plain", labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels, annotations: { "verso.dev/capture": "port" } },
        spec: {
          containers: [
            {
              name: "app",
              image: "verso-demo:v1",
              ports: [{ name: "http", containerPort: 8080 }],
              readinessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  };
}
