/**
 * The stand-in kubelet's own tests (test/harness/kubelet.ts: the path the controller's suites
 * and a rootless `make demo` use). Pods realised as local processes: the demo Deployments
 * become Running and Ready pods with their own 127.0.0.x address that answer HTTP with their
 * version; the proxy gets a pod-bound token; deleting a pod stops its processes and the
 * ReplicaSet replaces it. The real node proves the same on a kubelet (node-*.test.ts).
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABEL } from "../../shared/annotations.ts";
import { PROXY_CONTAINER, PROXY_PORT, TOKEN_AUDIENCE } from "../../shared/pod-env.ts";
import { startCluster, type Cluster } from "../harness/cluster.ts";
import { EXAMPLES_DIR } from "../harness/paths.ts";
import type { Pod } from "../harness/podTypes.ts";
import { portAccepts, waitFor } from "../harness/ports.ts";
import { isReady } from "../harness/podStatus.ts";
import { allContainers, podsOf } from "./fixtures.ts";

interface TokenReview {
  status: {
    authenticated?: boolean;
    audiences?: string[];
    user?: { username?: string; extra?: Record<string, string[]> };
  };
}

interface Answer {
  status: number;
  version: string;
}

async function get(url: string): Promise<Answer> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as { version?: string };
  return { status: res.status, version: body.version ?? "" };
}

describe("the stand-in kubelet: demo app pods as local processes", () => {
  let cluster: Cluster;
  let pods: Pod[];

  const client = () => cluster.cp.client;
  const readyPods = (selector: string, count: number): Promise<Pod[]> =>
    waitFor(
      `${count} ready pods (${selector})`,
      async () => {
        const found = await podsOf(client(), "demo", selector);
        return found.length === count && found.every(isReady) ? found : undefined;
      },
      120_000,
      250,
    );

  beforeAll(async () => {
    cluster = await startCluster({ crds: false, controller: true });
    const res = await cluster.kubectl(["apply", "-k", EXAMPLES_DIR]);
    expect(res.code, res.stderr).toBe(0);
    pods = await readyPods("app.kubernetes.io/name=shop", 2);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it("reports Running, Ready, a pod IP of its own and the node", () => {
    const ips = pods.map((p) => p.status?.podIP);
    expect(new Set(ips).size).toBe(2);
    for (const pod of pods) {
      expect(pod.status?.phase).toBe("Running");
      expect(pod.spec.nodeName).toBe("verso-local");
      expect(pod.status?.podIP).toMatch(/^127\.0\.\d+\.\d+$/);
      expect(pod.status?.podIPs).toEqual([{ ip: pod.status?.podIP }]);
      const app = pod.status?.containerStatuses?.find((c) => c.name === "app");
      expect(app?.ready).toBe(true);
      expect(app?.state).toHaveProperty("running");
    }
  });

  it("answers HTTP on the pod IP with the Deployment's version", async () => {
    for (const pod of pods) {
      const version = pod.metadata.labels?.["app.kubernetes.io/version"];
      const answer = await get(`http://${pod.status?.podIP}:8080/`);
      expect(answer).toEqual({ status: 200, version });
    }
  });

  it("runs the injected proxy in front of the app", async () => {
    for (const pod of pods) {
      expect(pod.metadata.labels?.[LABEL.version]).toBe(
        pod.metadata.labels?.["app.kubernetes.io/version"],
      );
      expect(allContainers(pod)).toContain(PROXY_CONTAINER);
      const ip = pod.status?.podIP ?? "";
      expect(await portAccepts(ip, PROXY_PORT.admin)).toBe(true);
      const answer = await get(`http://${ip}:${PROXY_PORT.inbound}/`);
      expect(answer.status).toBe(200);
      expect(["v1", "v2"]).toContain(answer.version);
    }
  });

  it("routes about 10% of the v1 pod's traffic to the v2 canary (controller -> proxies)", async () => {
    const v1 = pods.find((p) => p.metadata.labels?.["app.kubernetes.io/version"] === "v1");
    const url = `http://${v1?.status?.podIP}:${PROXY_PORT.inbound}/`;
    // The controller streams the table a moment after the pods turn Ready.
    await waitFor(
      "a request served by v2",
      async () => ((await get(url)).version === "v2" ? true : undefined),
      30_000,
      50,
    );
    const counts = { v1: 0, v2: 0, other: 0 };
    for (let i = 0; i < 300; i++) {
      const { status, version } = await get(url);
      expect(status).toBe(200);
      if (version === "v1" || version === "v2") counts[version] += 1;
      else counts.other += 1;
    }
    // weight 10 of 300: mean 30, sd ~5.2; [8, 60] is beyond 4 sd either way.
    expect(counts.other).toBe(0);
    expect(counts.v2).toBeGreaterThanOrEqual(8);
    expect(counts.v2).toBeLessThanOrEqual(60);
  });

  it("gives the proxy a pod-bound token from TokenRequest that TokenReview accepts", async () => {
    const pod = pods[0];
    const uid = pod?.metadata.uid ?? "";
    const dir = `${cluster.kubelet?.dir}/demo_${pod?.metadata.name}_${uid.slice(0, 8)}`;
    const token = readFileSync(`${dir}/volumes/verso-token/token`, "utf8");
    const review = await client().create<TokenReview>(
      "/apis/authentication.k8s.io/v1/tokenreviews",
      {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        spec: { token, audiences: [TOKEN_AUDIENCE] },
      },
    );
    expect(review.status.authenticated).toBe(true);
    expect(review.status.audiences).toEqual([TOKEN_AUDIENCE]);
    expect(review.status.user?.username).toBe("system:serviceaccount:demo:default");
    expect(review.status.user?.extra?.["authentication.kubernetes.io/pod-uid"]).toEqual([uid]);
  });

  it("stops a deleted pod's processes and the ReplicaSet replaces it", async () => {
    const victim = pods.find((p) => p.metadata.labels?.["app.kubernetes.io/version"] === "v1");
    const ip = victim?.status?.podIP ?? "";
    await client().delete(`/api/v1/namespaces/demo/pods/${victim?.metadata.name}`);
    await waitFor(
      `${ip}:8080 closed`,
      async () => ((await portAccepts(ip, 8080, 300)) ? undefined : true),
      30_000,
    );
    await waitFor(
      "old pod object removed",
      async () =>
        (await client().getOptional(`/api/v1/namespaces/demo/pods/${victim?.metadata.name}`))
          ? undefined
          : true,
      30_000,
    );
    const [replacement] = await readyPods("app.kubernetes.io/version=v1", 1);
    expect(replacement?.metadata.uid).not.toBe(victim?.metadata.uid);
    expect(replacement?.status?.podIP).not.toBe(ip);
    expect(await get(`http://${replacement?.status?.podIP}:8080/`)).toEqual({
      status: 200,
      version: "v1",
    });
  });
});
