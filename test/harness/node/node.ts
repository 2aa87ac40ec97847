/**
 * The node's daemons, in the sandbox: containerd with the images imported (startRuntime,
 * beside the control plane's start), then against the control plane the kubelet, kube-proxy,
 * kube-scheduler and CoreDNS (startNode, ready when the Node object is Ready). The caller's
 * sandbox.stop() tears them all down.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ControlPlane, StaticToken } from "../controlPlane.ts";
import { writeKubeconfig } from "../kubeconfig.ts";
import { waitFor } from "../ports.ts";
import type { ManagedProcess } from "../processes.ts";
import { uniqueArchives, type BuiltImage } from "./imageBuild.ts";
import {
  NODE_NAME,
  cniConfig,
  containerdConfig,
  corefile,
  kubeProxyConfig,
  kubeletConfig,
  nodePaths,
  type NodePaths,
} from "./nodeConfig.ts";
import type { Sandbox } from "./sandbox.ts";

/** Where the node's binaries are (scripts/build-kube.sh builds them beside the control plane's). */
export interface NodeBinaries {
  kubelet: string;
  kubeProxy: string;
  scheduler: string;
  coredns: string;
}

/** The identities of the node's components: static tokens the apiserver is given. */
export interface NodeTokens {
  kubelet: StaticToken;
  kubeProxy: StaticToken;
  scheduler: StaticToken;
}

export function nodeTokens(random: () => string): NodeTokens {
  return {
    // The Node authorizer knows a kubelet by this name and group.
    kubelet: { token: random(), user: `system:node:${NODE_NAME}`, groups: ["system:nodes"] },
    // Bound by the bootstrap policy to system:node-proxier and system:kube-scheduler.
    kubeProxy: { token: random(), user: "system:kube-proxy", groups: [] },
    scheduler: { token: random(), user: "system:kube-scheduler", groups: [] },
  };
}

interface NodeCondition {
  type: string;
  status: string;
}

export interface Node {
  readonly containerdSocket: string;
  /** Milliseconds from the kubelet's start to the Node being Ready. */
  readonly readyMs: number;
  /** `ctr` against the node's containerd, namespace k8s.io. */
  ctr(args: string[]): { code: number; stdout: string; stderr: string };
}

/** containerd with the images imported: needs no control plane, so it starts beside it. */
export interface Runtime {
  readonly paths: NodePaths;
  readonly process: ManagedProcess;
  /** `ctr` against the node's containerd, namespace k8s.io. */
  ctr(args: string[]): { code: number; stdout: string; stderr: string };
}

export async function startRuntime(
  sandbox: Sandbox,
  images: readonly BuiltImage[],
  logDir: string,
  log: (line: string) => void,
): Promise<Runtime> {
  const paths = nodePaths(join(sandbox.dir, "node"));
  mkdirSync(paths.cniConfDir, { recursive: true });
  mkdirSync(join(paths.dir, "containerd"), { recursive: true });
  writeFileSync(join(paths.cniConfDir, "10-verso.conflist"), cniConfig(paths, sandbox.net));
  const config = join(paths.dir, "containerd.toml");
  writeFileSync(config, containerdConfig(paths));
  const containerd = sandbox.spawn({
    name: "containerd",
    command: "containerd",
    args: ["--config", config],
    logFile: join(logDir, "containerd.log"),
  });
  const ctr = (args: string[]): ReturnType<Sandbox["run"]> =>
    sandbox.run("ctr", ["--address", paths.containerdSocket, "-n", "k8s.io", ...args]);
  await waitFor(
    "containerd",
    async () => {
      if (!containerd.running()) throw new Error(`containerd exited; see ${containerd.logFile}`);
      return ctr(["version"]).code === 0 ? true : undefined;
    },
    20_000,
    100,
  );
  const started = Date.now();
  // One archive can carry several names (verso-demo:v1 and :v2): imported once.
  const archives = uniqueArchives(images);
  for (const archive of archives) {
    const res = ctr(["images", "import", archive]);
    if (res.code !== 0) throw new Error(`ctr import ${archive}: ${res.stderr}`);
  }
  log(
    `[node] containerd up; ${images.length} images (${archives.length} archives) imported in ${Date.now() - started}ms`,
  );
  return { paths, process: containerd, ctr };
}

export async function startNode(
  sandbox: Sandbox,
  runtime: Runtime,
  cp: ControlPlane,
  bins: NodeBinaries,
  tokens: NodeTokens,
  log: (line: string) => void,
): Promise<Node> {
  const started = Date.now();
  const { paths, ctr } = runtime;
  const { net } = sandbox;
  const logDir = cp.logDir;
  const file = (name: string, text: string): string => {
    const path = join(paths.dir, name);
    writeFileSync(path, text);
    return path;
  };
  const kubeconfigFor = (name: string, token: StaticToken): string => {
    const path = join(paths.dir, `${name}.kubeconfig`);
    writeKubeconfig(path, { ...cp.credentials, token: token.token });
    return path;
  };
  const procs: ManagedProcess[] = [runtime.process];
  const alive = (): void => {
    const dead = procs.find((p) => !p.running());
    if (dead) throw new Error(`${dead.name} exited; see ${dead.logFile}`);
  };

  const resolvConf = file("resolv.conf", "# pods get the cluster DNS; nothing of the host's\n");
  procs.push(
    sandbox.spawn({
      name: "kubelet",
      command: bins.kubelet,
      args: [
        `--config=${file("kubelet.json", kubeletConfig(paths, net, sandbox.cgroup, { clientCaFile: join(cp.pkiDir, "ca.crt"), resolvConf }))}`,
        `--kubeconfig=${kubeconfigFor("kubelet", tokens.kubelet)}`,
        `--root-dir=${join(paths.dir, "kubelet")}`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${net.nodeIp}`,
        "--v=1",
      ],
      logFile: join(logDir, "kubelet.log"),
    }),
  );
  const kubeProxyKubeconfig = kubeconfigFor("kube-proxy", tokens.kubeProxy);
  procs.push(
    sandbox.spawn({
      name: "kube-proxy",
      command: bins.kubeProxy,
      args: [
        `--config=${file("kube-proxy.json", kubeProxyConfig(net, kubeProxyKubeconfig))}`,
        "--v=1",
      ],
      logFile: join(logDir, "kube-proxy.log"),
    }),
  );
  const schedulerKubeconfig = kubeconfigFor("kube-scheduler", tokens.scheduler);
  procs.push(
    sandbox.spawn({
      name: "kube-scheduler",
      command: bins.scheduler,
      args: [
        `--kubeconfig=${schedulerKubeconfig}`,
        `--authentication-kubeconfig=${schedulerKubeconfig}`,
        `--authorization-kubeconfig=${schedulerKubeconfig}`,
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        "--v=1",
      ],
      logFile: join(logDir, "kube-scheduler.log"),
    }),
  );
  // CoreDNS reads Services and EndpointSlices cluster-wide: the admin identity is the
  // harness's stand-in for its ClusterRole (it is part of the node here, not a pod).
  procs.push(
    sandbox.spawn({
      name: "coredns",
      command: bins.coredns,
      args: ["-conf", file("Corefile", corefile(cp.kubeconfig, net))],
      logFile: join(logDir, "coredns.log"),
    }),
  );

  await waitFor(
    `node ${NODE_NAME} Ready`,
    async () => {
      alive();
      const node = await cp.client.getOptional<{ status?: { conditions?: NodeCondition[] } }>(
        `/api/v1/nodes/${NODE_NAME}`,
      );
      const ready = node?.status?.conditions?.find((c) => c.type === "Ready");
      return ready?.status === "True" ? true : undefined;
    },
    60_000,
    250,
  );
  const readyMs = Date.now() - started;
  log(`[node] ${NODE_NAME} Ready ${readyMs}ms after the kubelet started (logs: ${logDir})`);
  return { containerdSocket: paths.containerdSocket, readyMs, ctr };
}
