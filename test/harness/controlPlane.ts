/**
 * A real Kubernetes control plane as local processes: etcd, kube-apiserver and
 * kube-controller-manager on random 127.0.0.1 ports, with a generated CA, a static admin
 * token (group system:masters) and a service-account signing key, so TokenRequest and
 * TokenReview work. `stop()` tears everything down; so does process exit.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinaries, type KubeBinaries } from "./binaries.ts";
import { KubeClient, type Credentials } from "./kubeClient.ts";
import { writeKubeconfig } from "./kubeconfig.ts";
import { makeCa, makeLeaf, makeServiceAccountKey, writePem, type Pem } from "./pki.ts";
import { freePort, sleep, waitFor } from "./ports.ts";
import {
  installExitHandlers,
  startProcess,
  type ManagedProcess,
  type ProcessSpec,
} from "./processes.ts";

export const SERVICE_CIDR = "10.96.0.0/16";
export const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";
/** Where kube-apiserver sits in the start order (etcd, kube-apiserver, kube-controller-manager). */
const APISERVER = 1;

/** Controllers kube-controller-manager runs (no scheduler, no node lifecycle: see README). */
export const CONTROLLERS = [
  "deployment-controller",
  "replicaset-controller",
  "endpointslice-controller",
  "endpoints-controller",
  "serviceaccount-controller",
  "serviceaccount-token-controller",
  "namespace-controller",
  "garbage-collector-controller",
  "root-ca-certificate-publisher-controller",
  "clusterrole-aggregation-controller",
];

/** A user the apiserver knows by a static token (kubelet, kube-proxy, ...). */
export interface StaticToken {
  token: string;
  user: string;
  groups: readonly string[];
}

/**
 * Where the control plane runs. By default: processes of this host serving on 127.0.0.1,
 * with no node (the stand-in kubelet). The real node (node/cluster.ts) runs it inside its
 * sandbox on the node's address instead, with the identities and wiring a node needs.
 */
export interface Placement {
  /** Every component binds and advertises this address; the host reaches it too. */
  address: string;
  serviceCidr: string;
  /** ClusterIP of the `kubernetes` Service (a SAN of the serving certificate). */
  apiServiceIp: string;
  spawn(spec: ProcessSpec): ManagedProcess;
  tokens: readonly StaticToken[];
  /** Controllers beyond CONTROLLERS, e.g. the node lifecycle controller a real node needs. */
  extraControllers: readonly string[];
}

const LOCAL: Placement = {
  address: "127.0.0.1",
  serviceCidr: SERVICE_CIDR,
  apiServiceIp: "10.96.0.1",
  spawn: startProcess,
  tokens: [],
  extraControllers: [],
};

export interface ControlPlaneOptions {
  placement?: Placement;
  /** Working dir for data, certs, logs; a fresh temp dir when omitted. */
  dir?: string;
  /** Keep the working dir after stop (logs for debugging). Default: keep on failure only. */
  keepDir?: boolean;
  /** Tear everything down on SIGINT/SIGTERM/SIGHUP, then exit (default true). */
  signalHandlers?: boolean;
  log?: (line: string) => void;
}

export interface ControlPlane {
  readonly dir: string;
  readonly kubeconfig: string;
  readonly credentials: Credentials;
  readonly client: KubeClient;
  readonly binaries: KubeBinaries;
  readonly ca: Pem;
  readonly pkiDir: string;
  readonly logDir: string;
  /** Milliseconds from first process start to a ready control plane. */
  readonly startupMs: number;
  /**
   * A fault drill: stops kube-apiserver (SIGTERM, SIGKILL after 5 s), keeps it down `downMs`
   * more, then starts it again with the same flags, port and certificates; resolves once its
   * /readyz answers ok, with how long the API was gone. etcd and every client stay up.
   */
  restartApiserver(options?: { downMs?: number }): Promise<{ unavailableMs: number }>;
  stop(): Promise<void>;
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const placement = options.placement ?? LOCAL;
  const host = placement.address;
  const onNode = placement !== LOCAL;
  installExitHandlers({ signals: options.signalHandlers ?? true });
  const binaries = await ensureBinaries(log);
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "verso-cp-"));
  const pkiDir = join(dir, "pki");
  const logDir = join(dir, "logs");
  mkdirSync(pkiDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });

  const started = Date.now();
  const procs: ManagedProcess[] = [];
  let client: KubeClient | undefined;
  const stop = async (): Promise<void> => {
    client?.close();
    for (const proc of [...procs].reverse()) await proc.stop(5_000);
    if (options.keepDir !== true) rmSync(dir, { recursive: true, force: true });
  };

  try {
    const ca = await makeCa("verso-local-ca");
    writePem(pkiDir, "ca", ca);
    const serving = await makeLeaf(ca, {
      commonName: "kube-apiserver",
      dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
      ips: [...new Set(["127.0.0.1", host, placement.apiServiceIp])],
      server: true,
    });
    const servingFiles = writePem(pkiDir, "apiserver", serving);
    const saKey = makeServiceAccountKey();
    writeFileSync(join(pkiDir, "sa.key"), saKey.key, { mode: 0o600 });
    writeFileSync(join(pkiDir, "sa.pub"), saKey.publicKey);
    const token = randomBytes(24).toString("hex");
    const tokens: StaticToken[] = [
      { token, user: "admin", groups: ["system:masters"] },
      ...placement.tokens,
    ];
    writeFileSync(
      join(pkiDir, "tokens.csv"),
      tokens.map((t) => `${t.token},${t.user},${t.user}-uid,"${t.groups.join(",")}"\n`).join(""),
      { mode: 0o600 },
    );
    // The apiserver's own identity towards kubelets (logs, exec, port-forward).
    const kubeletClient = writePem(
      pkiDir,
      "apiserver-kubelet-client",
      await makeLeaf(ca, {
        commonName: "kube-apiserver-kubelet-client",
        organization: "system:masters",
        client: true,
      }),
    );

    const [etcdClient, etcdPeer, apiPort, kcmPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);

    const etcdUrl = `http://${host}:${etcdClient}`;
    procs.push(
      placement.spawn({
        name: "etcd",
        command: binaries.etcd,
        args: [
          "--name=verso",
          `--data-dir=${join(dir, "etcd")}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=http://${host}:${etcdPeer}`,
          `--initial-advertise-peer-urls=http://${host}:${etcdPeer}`,
          `--initial-cluster=verso=http://${host}:${etcdPeer}`,
          "--unsafe-no-fsync",
          "--log-level=warn",
        ],
        logFile: join(logDir, "etcd.log"),
      }),
    );
    await waitFor(
      "etcd /health",
      async () => ((await fetch(`${etcdUrl}/health`)).ok ? true : undefined),
      20_000,
      100,
    );
    log(`[harness] etcd ready at ${etcdUrl} (${Date.now() - started}ms)`);

    const server = `https://${host}:${apiPort}`;
    // Kept whole so restartApiserver() starts the very same process again.
    const apiserverSpec: ProcessSpec = {
      name: "kube-apiserver",
      command: binaries.apiserver,
      args: [
        `--etcd-servers=${etcdUrl}`,
        `--bind-address=${host}`,
        `--advertise-address=${host}`,
        `--secure-port=${apiPort}`,
        `--cert-dir=${join(dir, "apiserver-certs")}`,
        `--tls-cert-file=${servingFiles.certFile}`,
        `--tls-private-key-file=${servingFiles.keyFile}`,
        `--client-ca-file=${join(pkiDir, "ca.crt")}`,
        `--token-auth-file=${join(pkiDir, "tokens.csv")}`,
        `--service-cluster-ip-range=${placement.serviceCidr}`,
        `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
        `--service-account-key-file=${join(pkiDir, "sa.pub")}`,
        `--service-account-signing-key-file=${join(pkiDir, "sa.key")}`,
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy",
        "--allow-privileged=true",
        `--kubelet-client-certificate=${kubeletClient.certFile}`,
        `--kubelet-client-key=${kubeletClient.keyFile}`,
        "--kubelet-preferred-address-types=InternalIP",
        // Without a node nothing routes to the `kubernetes` Service; on the real node pods
        // reach the API through it, so the apiserver keeps its endpoints.
        `--endpoint-reconciler-type=${onNode ? "lease" : "none"}`,
        "--v=1",
      ],
      logFile: join(logDir, "kube-apiserver.log"),
    };
    procs.push(placement.spawn(apiserverSpec));
    const credentials: Credentials = { server, token, caPem: ca.cert };
    client = new KubeClient(credentials);
    const api = client;
    const apiserverReady = (): Promise<true> =>
      waitFor(
        "kube-apiserver /readyz",
        async () => {
          if (!procs[APISERVER]?.running()) throw new Error(`kube-apiserver exited; see ${logDir}`);
          return api.text("/readyz").then(
            (text) => (text.trim() === "ok" ? true : undefined),
            () => undefined,
          );
        },
        60_000,
        200,
      );
    await apiserverReady();
    log(`[harness] kube-apiserver ready at ${server} (${Date.now() - started}ms)`);

    const kubeconfig = join(dir, "kubeconfig");
    writeKubeconfig(kubeconfig, credentials);
    procs.push(
      placement.spawn({
        name: "kube-controller-manager",
        command: binaries.controllerManager,
        args: [
          `--kubeconfig=${kubeconfig}`,
          `--authentication-kubeconfig=${kubeconfig}`,
          `--authorization-kubeconfig=${kubeconfig}`,
          `--bind-address=${host}`,
          `--secure-port=${kcmPort}`,
          `--cert-dir=${join(dir, "kcm-certs")}`,
          `--controllers=${[...CONTROLLERS, ...placement.extraControllers].join(",")}`,
          "--leader-elect=false",
          `--service-account-private-key-file=${join(pkiDir, "sa.key")}`,
          `--root-ca-file=${join(pkiDir, "ca.crt")}`,
          "--use-service-account-credentials=false",
          "--concurrent-deployment-syncs=5",
          "--concurrent-replicaset-syncs=5",
          "--v=1",
        ],
        logFile: join(logDir, "kube-controller-manager.log"),
      }),
    );
    // The serviceaccount controller creating `default` proves the controller manager works
    // (pods cannot be admitted in a namespace before its default service account exists).
    await waitFor(
      "kube-controller-manager (default service account)",
      async () => {
        if (!procs[2]?.running()) throw new Error(`kube-controller-manager exited; see ${logDir}`);
        return api.getOptional<object>("/api/v1/namespaces/default/serviceaccounts/default");
      },
      60_000,
      200,
    );
    const startupMs = Date.now() - started;
    log(`[harness] control plane ready in ${startupMs}ms (logs: ${logDir})`);
    return {
      dir,
      kubeconfig,
      credentials,
      client: api,
      binaries,
      ca,
      pkiDir,
      logDir,
      startupMs,
      async restartApiserver({ downMs = 0 } = {}) {
        const gone = Date.now();
        await procs[APISERVER]?.stop(5_000);
        if (downMs > 0) await sleep(downMs);
        procs[APISERVER] = placement.spawn(apiserverSpec);
        await apiserverReady();
        return { unavailableMs: Date.now() - gone };
      },
      stop,
    };
  } catch (error) {
    log(`[harness] control plane failed to start; logs kept in ${logDir}`);
    options.keepDir = true;
    await stop();
    throw error;
  }
}
