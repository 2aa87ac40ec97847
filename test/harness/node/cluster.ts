/**
 * A real one-node cluster on this machine, installed the way a user installs Verso:
 *   sandbox (netns + mount ns + cgroup tree + veth to the host)
 *   -> control plane in it (etcd, kube-apiserver, kube-controller-manager) on the node's address
 *   -> the node (containerd with the images imported, kubelet, kube-proxy, kube-scheduler, CoreDNS)
 *   -> cert-manager CRDs, `kubectl apply -k deploy/`, certificates issued (certManager.ts)
 *   -> the webhook Deployment available in verso-system.
 * Used by the cluster suite's real-node tests and by `make demo`. stop() (or the harness
 * dying) removes every process, mount, cgroup, veth, route and rule it made.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinaries } from "../binaries.ts";
import { startControlPlane, type ControlPlane } from "../controlPlane.ts";
import { installCertManagerCrds } from "../crds.ts";
import { kubectl, type KubectlResult } from "../kubectl.ts";
import { DEPLOY_DIR } from "../paths.ts";
import { waitFor } from "../ports.ts";
import { installExitHandlers } from "../processes.ts";
import { issueCertificates } from "./certManager.ts";
import { buildImages } from "./imageBuild.ts";
import { nodeTokens, startNode, startRuntime, type Node } from "./node.ts";
import { startSandbox, type Sandbox } from "./sandbox.ts";

export const VERSO_NAMESPACE = "verso-system";
export const WEBHOOK_DEPLOYMENT = "verso-webhook";

export interface NodeClusterOptions {
  /** Apply deploy/ and wait for the webhook (default true). */
  install?: boolean;
  /** Keep the working dir (logs) after stop. Default: only when start failed. */
  keepDir?: boolean;
  log?: (line: string) => void;
}

export interface NodeCluster {
  readonly cp: ControlPlane;
  readonly sandbox: Sandbox;
  readonly node: Node;
  /** Where it all lives: logs under cp.logDir, pod logs under node/pod-logs. */
  readonly dir: string;
  /** Milliseconds per phase, for the notes and the README. */
  readonly timings: Readonly<Record<string, number>>;
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  stop(): Promise<void>;
}

interface Deployment {
  spec?: { replicas?: number };
  status?: { availableReplicas?: number; updatedReplicas?: number };
}

export async function startNodeCluster(options: NodeClusterOptions = {}): Promise<NodeCluster> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  installExitHandlers({ signals: false });
  const timings: Record<string, number> = {};
  const phase = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    const result = await work();
    timings[name] = Date.now() - t;
    return result;
  };
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "verso-node-"));
  let keep = options.keepDir === true;
  // The images and the binaries build while nothing else runs yet; both are cached.
  const [bins, images] = await Promise.all([
    phase("binaries", () => ensureBinaries(log)),
    phase("images", () => buildImages({ log })),
  ]);
  const sandbox = await phase("sandbox", () => startSandbox(dir, log));
  let cp: ControlPlane | undefined;
  const stop = async (): Promise<void> => {
    await cp?.stop().catch(() => undefined);
    await sandbox.stop();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const tokens = nodeTokens(() => randomBytes(24).toString("hex"));
    const logDir = join(dir, "cp", "logs");
    // containerd and the image import need no apiserver: they run while it starts.
    const runtimeStarted = phase("runtime", () => startRuntime(sandbox, images, logDir, log));
    const cpStarted = phase("control plane", () =>
      startControlPlane({
        dir: join(dir, "cp"),
        keepDir: true,
        signalHandlers: false,
        log,
        placement: {
          address: sandbox.net.nodeIp,
          serviceCidr: sandbox.net.serviceCidr,
          apiServiceIp: sandbox.net.apiServiceIp,
          spawn: (spec) => sandbox.spawn(spec),
          tokens: [tokens.kubelet, tokens.kubeProxy, tokens.scheduler],
          // Removes the node.kubernetes.io/not-ready taint once the kubelet reports Ready.
          extraControllers: ["node-lifecycle-controller"],
        },
      }),
    );
    // Both settle before either failure is thrown: nothing is left starting behind stop().
    const [runtimeResult, cpResult] = await Promise.allSettled([runtimeStarted, cpStarted]);
    if (cpResult.status === "fulfilled") cp = cpResult.value;
    if (cpResult.status === "rejected") throw cpResult.reason;
    if (runtimeResult.status === "rejected") throw runtimeResult.reason;
    const controlPlane = cpResult.value;
    const runtime = runtimeResult.value;
    const node = await phase("node", () =>
      startNode(sandbox, runtime, controlPlane, bins, tokens, log),
    );
    const run = (args: string[], input?: string): Promise<KubectlResult> =>
      kubectl(bins.kubectl, controlPlane.kubeconfig, args, input);
    if (options.install !== false) {
      await phase("crds", () => installCertManagerCrds(controlPlane));
      await phase("install", () => installVerso(controlPlane, run, log));
    }
    log(
      `[node] cluster ready in ${((Date.now() - started) / 1000).toFixed(1)}s ` +
        Object.entries(timings)
          .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}s`)
          .join(", "),
    );
    return { cp: controlPlane, sandbox, node, dir, timings, kubectl: run, stop };
  } catch (error) {
    keep = true;
    log(`[node] start failed; logs kept in ${dir}`);
    await stop();
    throw error;
  }
}

/** What a user does: apply deploy/, let cert-manager issue, wait for the webhook. */
async function installVerso(
  cp: ControlPlane,
  run: (args: string[]) => Promise<KubectlResult>,
  log: (line: string) => void,
): Promise<void> {
  const applied = await run(["apply", "-k", DEPLOY_DIR]);
  if (applied.code !== 0) throw new Error(`kubectl apply -k deploy/ failed: ${applied.stderr}`);
  const issued = await issueCertificates(cp.client, "verso-ca");
  log(
    `[node] deploy/ applied; certificates issued: ${issued.secrets.join(", ")}; ` +
      `CA injected into ${issued.injected.join(", ")}`,
  );
  const path = `/apis/apps/v1/namespaces/${VERSO_NAMESPACE}/deployments/${WEBHOOK_DEPLOYMENT}`;
  await waitFor(
    `${VERSO_NAMESPACE}/${WEBHOOK_DEPLOYMENT} available`,
    async () => {
      const d = await cp.client.get<Deployment>(path);
      const want = d.spec?.replicas ?? 1;
      return (d.status?.availableReplicas ?? 0) >= want ? true : undefined;
    },
    120_000,
    500,
  );
}
