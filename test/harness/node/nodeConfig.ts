/**
 * The node's configuration files, as pure functions of the node's directory and network.
 * Every setting that differs from the upstream defaults says why: most are what this kind
 * of machine (a privileged container, cgroup v1, no CAP_SYS_RESOURCE) needs.
 */
import { join } from "node:path";
import type { NodeNetwork } from "./network.ts";

export const NODE_NAME = "verso-node";
export const PAUSE_IMAGE = "verso.local/pause:3.10";
export const CLUSTER_DOMAIN = "cluster.local";

export interface NodePaths {
  dir: string;
  containerdSocket: string;
  cniConfDir: string;
}

export function nodePaths(dir: string): NodePaths {
  return {
    dir,
    // containerd's default address, which cAdvisor (in the kubelet) dials whatever it is
    // told: /run/containerd is the sandbox's own tmpfs (sandbox.sh), not the host's.
    containerdSocket: "/run/containerd/containerd.sock",
    cniConfDir: join(dir, "cni", "net.d"),
  };
}

export function containerdConfig(paths: NodePaths): string {
  const dir = join(paths.dir, "containerd");
  return `version = 2
root = "${join(dir, "root")}"
state = "${join(dir, "state")}"
# Snapshotters this machine cannot have: skipped instead of logged as failures.
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "${paths.containerdSocket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "${join(dir, "opt")}"

[plugins."io.containerd.grpc.v1.cri"]
  # Images are imported, never pulled: the sandbox image is the locally built pause.
  sandbox_image = "${PAUSE_IMAGE}"
  # Without CAP_SYS_RESOURCE runc cannot lower oom_score_adj: every sandbox would fail with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "${join(dir, "runc")}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${paths.cniConfDir}"
`;
}

/** bridge + host-local + portmap: one bridge, the node is the pods' gateway. */
export function cniConfig(paths: NodePaths, net: NodeNetwork): string {
  return JSON.stringify(
    {
      cniVersion: "0.4.0",
      name: "verso",
      plugins: [
        {
          type: "bridge",
          bridge: "cni0",
          isGateway: true,
          ipMasq: true,
          // A pod reaching itself through its Service's ClusterIP.
          hairpinMode: true,
          ipam: {
            type: "host-local",
            ranges: [[{ subnet: net.podCidr, gateway: net.podGateway }]],
            routes: [{ dst: "0.0.0.0/0" }],
            dataDir: join(paths.dir, "cni", "ipam"),
          },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

export interface KubeletFiles {
  clientCaFile: string;
  resolvConf: string;
}

export function kubeletConfig(
  paths: NodePaths,
  net: NodeNetwork,
  cgroupRoot: string,
  files: KubeletFiles,
): string {
  return JSON.stringify(
    {
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      // This machine has cgroup v1 only; 1.36 refuses it unless told otherwise.
      failCgroupV1: false,
      cgroupDriver: "cgroupfs",
      // Pods' cgroups under the sandbox's tree: the teardown finds every container there.
      cgroupRoot: `/${cgroupRoot}`,
      failSwapOn: false,
      address: net.nodeIp,
      readOnlyPort: 0,
      healthzBindAddress: "127.0.0.1",
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: true },
        x509: { clientCAFile: files.clientCaFile },
      },
      authorization: { mode: "Webhook" },
      clusterDomain: CLUSTER_DOMAIN,
      // CoreDNS runs beside the kubelet on the node's address (node/services.ts).
      clusterDNS: [net.nodeIp],
      resolvConf: files.resolvConf,
      containerRuntimeEndpoint: `unix://${paths.containerdSocket}`,
      podLogsDir: join(paths.dir, "pod-logs"),
      // A shared machine's disk and memory are not the node's to reclaim: evict only when
      // nearly nothing is left, and never garbage-collect the imported images.
      evictionHard: {
        "memory.available": "100Mi",
        "nodefs.available": "1%",
        "nodefs.inodesFree": "1%",
        "imagefs.available": "1%",
      },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      serializeImagePulls: false,
      // Status reaches the API quickly: tests watch for it.
      nodeStatusUpdateFrequency: "4s",
      syncFrequency: "10s",
      maxPods: 110,
    },
    null,
    2,
  );
}

export function kubeProxyConfig(net: NodeNetwork, kubeconfig: string): string {
  return JSON.stringify(
    {
      apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
      kind: "KubeProxyConfiguration",
      mode: "iptables",
      clientConnection: { kubeconfig },
      hostnameOverride: NODE_NAME,
      bindAddress: net.nodeIp,
      clusterCIDR: net.podCidr,
      // The nf_conntrack_max sysctl is the host's: kube-proxy must not try to raise it.
      conntrack: { maxPerCore: 0, min: 0 },
      metricsBindAddress: "127.0.0.1:10249",
      healthzBindAddress: "127.0.0.1:10256",
    },
    null,
    2,
  );
}

export function corefile(kubeconfig: string, net: NodeNetwork): string {
  return `.:53 {
    bind ${net.nodeIp}
    errors
    ready 127.0.0.1:8181
    health 127.0.0.1:8080
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
`;
}
