/**
 * `make demo`: a real cluster on this machine with Verso installed and the demo app from
 * deploy/examples/. Prints `export KUBECONFIG=<path>` once everything is ready, then what to
 * curl; Ctrl-C (or SIGTERM, or killing this process) tears everything down.
 *
 * As root on Linux it is the real node (node/cluster.ts): kubelet, containerd, kube-proxy,
 * Verso installed from deploy/ as its Deployment. Elsewhere (or with --stand-in) it is the
 * stand-in: the control plane with the webhook as a local process and pods as processes.
 *
 *   node test/harness/demo.ts [--stand-in] [--no-controller] [--no-examples] [--no-install] [--keep]
 *
 * --no-install (real node): the bare cluster, without Verso and the demo app.
 */
import { parseArgs } from "node:util";
import { startCluster } from "./cluster.ts";
import type { ControlPlane } from "./controlPlane.ts";
import type { KubectlResult } from "./kubectl.ts";
import { startNodeCluster } from "./node/cluster.ts";
import { sandboxUnavailable } from "./node/sandbox.ts";
import type { List, Pod } from "./podTypes.ts";
import { EXAMPLES_DIR } from "./paths.ts";
import { isReady } from "./podStatus.ts";
import { waitFor } from "./ports.ts";
import { stopAll } from "./processes.ts";

const { values } = parseArgs({
  options: {
    "stand-in": { type: "boolean", default: false },
    "no-controller": { type: "boolean", default: false },
    "no-examples": { type: "boolean", default: false },
    "no-install": { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
  },
});

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/** What the demo needs of either cluster. */
interface DemoCluster {
  cp: ControlPlane;
  /** The real node: pod IPs and ClusterIPs route from this host. */
  real: boolean;
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  stop(): Promise<void>;
}

async function start(): Promise<DemoCluster> {
  const unavailable = values["stand-in"] ? "--stand-in" : sandboxUnavailable();
  if (unavailable === undefined) {
    if (values["no-controller"]) log("[demo] --no-controller applies to the stand-in only");
    const install = !values["no-install"];
    return { ...(await startNodeCluster({ keepDir: values.keep, install, log })), real: true };
  }
  log(`[demo] stand-in kubelet (pods as local processes): ${unavailable}`);
  const standIn = await startCluster({
    controller: !values["no-controller"],
    signalHandlers: false,
    keepDir: values.keep,
    log,
  });
  return { ...standIn, real: false };
}

async function main(): Promise<void> {
  const started = Date.now();
  const state: { cluster?: DemoCluster; stopping: boolean } = { stopping: false };
  const shutdown = (code: number): void => {
    if (state.stopping) return;
    state.stopping = true;
    log("[demo] stopping...");
    const done = state.cluster ? state.cluster.stop() : stopAll(2_000);
    void done.finally(() => process.exit(code));
  };
  process.on("SIGINT", () => shutdown(0));
  process.on("SIGTERM", () => shutdown(0));

  const cluster = await start();
  state.cluster = cluster;
  if (state.stopping) return;
  if (!values["no-examples"] && !values["no-install"]) {
    const res = await cluster.kubectl(["apply", "-k", EXAMPLES_DIR]);
    if (res.code !== 0) throw new Error(`kubectl apply -k ${EXAMPLES_DIR} failed: ${res.stderr}`);
    log(res.stdout.trim());
    const client = cluster.cp.client;
    const pods = await waitFor(
      "demo pods Ready",
      async () => {
        const list = await client.get<List<Pod>>("/api/v1/namespaces/demo/pods");
        const live = list.items.filter((p) => !p.metadata.deletionTimestamp);
        return live.length >= 2 && live.every(isReady) ? live : undefined;
      },
      180_000,
      500,
    );
    log(`[demo] ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    process.stdout.write(`export KUBECONFIG=${cluster.cp.kubeconfig}\n`);
    for (const pod of pods) {
      const ip = pod.status?.podIP ?? "?";
      const version = pod.metadata.labels?.["verso.dev/version"] ?? "";
      process.stdout.write(
        `# ${pod.metadata.name} (${version}): curl http://${ip}:8080/   ` +
          `proxy: curl http://${ip}:15006/   admin: curl http://${ip}:15020/metrics\n`,
      );
    }
    const svc = await client.get<{ spec?: { clusterIP?: string } }>(
      "/api/v1/namespaces/demo/services/shop",
    );
    // On the real node ClusterIPs route from this host (kube-proxy); the stand-in has none.
    if (cluster.real) {
      process.stdout.write(
        `# the shop Service (v1 + 10% v2): curl http://${svc.spec?.clusterIP ?? "?"}/\n`,
      );
    }
  } else {
    process.stdout.write(`export KUBECONFIG=${cluster.cp.kubeconfig}\n`);
  }
  process.stdout.write(`# kubectl: ${cluster.cp.binaries.kubectl}\n# Ctrl-C to stop\n`);
}

main().catch((error: unknown) => {
  log(`[demo] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  void stopAll(2_000).finally(() => process.exit(1));
});
