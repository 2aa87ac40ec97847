/**
 * Debian's Prometheus beside a real-node cluster, run with the jobs and relabelling
 * deploy/observability/ ships. It runs on the host, listening on the host end of the node's
 * veth (10.250.N.1): pods reach that address through the node's default route, whereas
 * 127.0.0.1 inside a pod is the pod itself. Debian's build has no Kubernetes discovery, so
 * this module plays it: it lists the API's pods every second and rewrites each job's file_sd
 * targets with the `__meta_kubernetes_*` labels pod discovery would give every container
 * port (init containers' included: the proxy is a native sidecar), for the shipped
 * relabel_configs to keep, drop and label as they would in a cluster.
 */
import type { KubeClient } from "../kubeClient.ts";
import type { Pod } from "../podTypes.ts";
import { sleep } from "../ports.ts";
import {
  shippedJobs,
  startShippedPrometheus,
  type PodPort,
  type ShippedPrometheus,
} from "../prometheusShipped.ts";
import type { NodeCluster } from "./cluster.ts";

/** Every named-or-not container port of a pod, as pod discovery lists them; none without an IP. */
export function podPorts(pod: Pod): PodPort[] {
  const ip = pod.status?.podIP;
  if (!ip) return [];
  const containers = [
    ...(pod.spec.initContainers ?? []).map((c) => ({ c, init: true })),
    ...pod.spec.containers.map((c) => ({ c, init: false })),
  ];
  return containers.flatMap(({ c, init }) =>
    (c.ports ?? []).map((port) => ({
      address: `${ip}:${port.containerPort}`,
      namespace: pod.metadata.namespace ?? "",
      pod: pod.metadata.name,
      portName: port.name ?? "",
      labels: pod.metadata.labels ?? {},
      phase: pod.status?.phase ?? "Pending",
      container: c.name,
      init,
    })),
  );
}

/** What each shipped job discovers: the namespaces its kubernetes_sd_configs would watch. */
function byJob(ports: PodPort[]): Record<string, PodPort[]> {
  const out: Record<string, PodPort[]> = {};
  for (const job of shippedJobs()) {
    // verso-controller's discovery is limited to verso-system (scrape-configs.yaml).
    out[job] =
      job === "verso-controller" ? ports.filter((p) => p.namespace === "verso-system") : ports;
  }
  return out;
}

async function listPorts(client: KubeClient): Promise<PodPort[]> {
  const list = await client.get<{ items: Pod[] }>("/api/v1/pods");
  return list.items.flatMap(podPorts);
}

export interface NodePrometheus {
  readonly prom: ShippedPrometheus;
  /** The URL pods use (and the host too): `http://<hostIp>:<port>`. */
  readonly url: string;
  /** Stops the discovery loop and the server (its data directory goes with it). */
  stop(): Promise<void>;
}

export async function startNodePrometheus(
  cluster: NodeCluster,
  { intervalSeconds = 1, discoveryMs = 1_000 } = {},
): Promise<NodePrometheus> {
  const client = cluster.cp.client;
  const first = byJob(await listPorts(client));
  const prom = await startShippedPrometheus({
    pods: first,
    intervalSeconds,
    host: cluster.sandbox.net.hostIp,
  });
  let stopped = false;
  const loop = (async () => {
    let last = JSON.stringify(first);
    while (!stopped) {
      try {
        const jobs = byJob(await listPorts(client));
        // Rewritten only when something changed: each write is a discovery update.
        const text = JSON.stringify(jobs);
        if (text !== last)
          for (const [job, ports] of Object.entries(jobs)) prom.setPods(job, ports);
        last = text;
      } catch {
        // The API is away for a moment: discovery keeps its last targets, as Kubernetes' does.
      }
      await sleep(discoveryMs);
    }
  })();
  return {
    prom,
    url: prom.url,
    stop: async () => {
      stopped = true;
      await loop;
      await prom.stop();
    },
  };
}
