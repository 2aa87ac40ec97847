/**
 * A stand-in kubelet (test infrastructure, not a kubelet): registers the Ready node
 * `verso-local`, binds unscheduled pods to it (there is no scheduler), gives each pod its
 * own 127.0.0.x address (from 127.0.0.10 up) and runs it as local processes (podRunner.ts).
 * Deleted pods are stopped gracefully and then removed (delete with grace 0).
 */
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeError, type KubeClient, type WatchEvent } from "./kubeClient.ts";
import type { Container, List, Pod } from "./podTypes.ts";
import { PodRunner } from "./podRunner.ts";
import { sleep } from "./ports.ts";

export const NODE_NAME = "verso-local";
export const HOST_IP = "127.0.0.1";

export interface KubeletOptions {
  client: KubeClient;
  nodeName?: string;
  /**
   * First pod address (default $VERSO_POD_ADDRESS_BASE, else 127.0.0.10). Two kubelets on one
   * machine (a demo and a test run) need distinct ranges, e.g. 127.0.100.10.
   */
  firstAddress?: string;
  /** Pod dirs (volumes, logs) go here; a temp dir when omitted. */
  dir?: string;
  envOverrides?: (container: Container, kind: "demo" | "proxy") => Record<string, string>;
  log?: (line: string) => void;
}

export interface Kubelet {
  readonly nodeName: string;
  readonly dir: string;
  /** The pod IP the harness gave a pod (by uid), if it runs here. */
  podIP(uid: string): string | undefined;
  stop(): Promise<void>;
}

export const FIRST_POD_ADDRESS = "127.0.0.10";

/**
 * Pod addresses from `first` upward inside its /8, skipping .0 and .255:
 * 127.0.0.10, 127.0.0.11, ... 127.0.0.254, 127.0.1.1, ...
 * Outside 127.0.0.0/8 the range must be local to this machine (localRoute.ts: the API
 * server's pod proxy refuses loopback pod IPs, so `pods/proxy` tests use such a range).
 */
export function* podAddresses(first = FIRST_POD_ADDRESS): Generator<string> {
  const parts = first.split(".").map(Number);
  const top = parts[0] ?? 0;
  if (parts.length !== 4 || top < 1 || top > 223 || parts.some((p) => !(p >= 0 && p <= 255))) {
    throw new Error(`pod address ${first}: use an IPv4 address, e.g. 127.0.0.10`);
  }
  let n = ((parts[1] ?? 0) << 16) + ((parts[2] ?? 0) << 8) + (parts[3] ?? 0);
  for (; n < 1 << 24; n++) {
    const last = n & 255;
    if (last === 0 || last === 255) continue;
    yield `${top}.${n >> 16}.${(n >> 8) & 255}.${last}`;
  }
}

export async function startKubelet(options: KubeletOptions): Promise<Kubelet> {
  const client = options.client;
  const nodeName = options.nodeName ?? NODE_NAME;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "verso-kubelet-"));
  mkdirSync(dir, { recursive: true });
  const runners = new Map<string, PodRunner>();
  const ips = new Map<string, string>();
  const addresses = podAddresses(
    options.firstAddress ?? process.env.VERSO_POD_ADDRESS_BASE ?? FIRST_POD_ADDRESS,
  );
  const abort = new AbortController();

  await registerNode(client, nodeName);

  const handle = (pod: Pod, deleted: boolean): void => {
    const uid = pod.metadata.uid ?? "";
    const runner = runners.get(uid);
    if (deleted) {
      if (runner) {
        runners.delete(uid);
        void runner.kill();
      }
      return;
    }
    if (!pod.spec.nodeName) {
      if ((pod.spec.schedulerName ?? "default-scheduler") === "default-scheduler") void bind(pod);
      return;
    }
    if (pod.spec.nodeName !== nodeName) return;
    if (runner) {
      runner.update(pod);
      if (pod.metadata.deletionTimestamp) {
        void runner.terminate().then(() => runners.delete(uid));
      }
      return;
    }
    if (pod.metadata.deletionTimestamp) {
      void forceDelete(pod);
      return;
    }
    const terminal = pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
    if (terminal) return;
    const ip = addresses.next().value;
    if (ip === undefined) throw new Error("pod addresses exhausted");
    ips.set(uid, ip);
    const podDir = join(dir, `${pod.metadata.namespace}_${pod.metadata.name}_${uid.slice(0, 8)}`);
    const created = new PodRunner(pod, {
      client,
      nodeName,
      hostIP: HOST_IP,
      podIP: ip,
      dir: podDir,
      envOverrides: options.envOverrides,
      log,
    });
    runners.set(uid, created);
    log(`[kubelet] starting ${created.name} at ${ip} (dir ${podDir})`);
    void created
      .start()
      .catch((error: unknown) => log(`[kubelet] ${created.name}: ${String(error)}`));
  };

  const bind = async (pod: Pod): Promise<void> => {
    const { namespace, name, uid } = pod.metadata;
    try {
      await client.create(`/api/v1/namespaces/${namespace}/pods/${name}/binding`, {
        apiVersion: "v1",
        kind: "Binding",
        metadata: { name, uid },
        target: { apiVersion: "v1", kind: "Node", name: nodeName },
      });
    } catch (error) {
      if (!(error instanceof KubeError && (error.status === 409 || error.status === 404))) {
        log(`[kubelet] bind ${namespace}/${name} failed: ${String(error)}`);
      }
    }
  };

  const forceDelete = async (pod: Pod): Promise<void> => {
    const { namespace, name, uid } = pod.metadata;
    await client
      .delete(`/api/v1/namespaces/${namespace}/pods/${name}`, {
        gracePeriodSeconds: 0,
        preconditions: { uid },
      })
      .catch(() => undefined);
  };

  const loop = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      try {
        const list = await client.get<List<Pod>>("/api/v1/pods");
        for (const pod of list.items) handle(pod, false);
        await client.watch<Pod>(
          "/api/v1/pods",
          list.metadata.resourceVersion,
          (event: WatchEvent<Pod>) => {
            if (event.type === "ADDED" || event.type === "MODIFIED") handle(event.object, false);
            else if (event.type === "DELETED") handle(event.object, true);
          },
          abort.signal,
        );
      } catch (error) {
        if (!abort.signal.aborted) log(`[kubelet] watch restarting: ${String(error)}`);
      }
      if (!abort.signal.aborted) await sleep(500);
    }
  };
  const running = loop();

  return {
    nodeName,
    dir,
    podIP: (uid) => ips.get(uid),
    stop: async () => {
      abort.abort();
      await running;
      await Promise.all([...runners.values()].map((r) => r.kill(2_000)));
      runners.clear();
    },
  };
}

async function registerNode(client: KubeClient, nodeName: string): Promise<void> {
  const path = `/api/v1/nodes/${nodeName}`;
  if (!(await client.getOptional<object>(path))) {
    await client.create("/api/v1/nodes", {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name: nodeName,
        labels: {
          "kubernetes.io/hostname": nodeName,
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": "amd64",
        },
      },
    });
  }
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  await client.patch(`${path}/status`, {
    status: {
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "KubeletReady",
          message: "verso harness stand-in kubelet",
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
      ],
      addresses: [
        { type: "InternalIP", address: HOST_IP },
        { type: "Hostname", address: nodeName },
      ],
      capacity: { cpu: "2", memory: "8Gi", pods: "250" },
      allocatable: { cpu: "2", memory: "8Gi", pods: "250" },
      nodeInfo: {
        kubeletVersion: "verso-harness",
        kubeProxyVersion: "",
        operatingSystem: "linux",
        architecture: "amd64",
        containerRuntimeVersion: "harness://processes",
        osImage: "local processes",
        kernelVersion: "",
        machineID: "",
        systemUUID: "",
        bootID: "",
      },
    },
  });
}
