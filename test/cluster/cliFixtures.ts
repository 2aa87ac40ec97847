/**
 * Running `kubectl-verso` as a user would (a separate process, a kubeconfig file, nothing
 * shared with the test), and making a second user: a client certificate from the harness CA
 * (the apiserver's --client-ca-file), bound to a Role.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LABEL } from "../../shared/annotations.ts";
import { startCluster, type Cluster } from "../harness/cluster.ts";
import type { ControlPlane } from "../harness/controlPlane.ts";
import { localPodRange, type LocalRange } from "../harness/localRoute.ts";
import { REPO_ROOT } from "../harness/paths.ts";
import { makeLeaf } from "../harness/pki.ts";
import { isReady } from "../harness/podStatus.ts";
import { waitFor } from "../harness/ports.ts";
import { getThroughProxy, podLoad, waitForPhase } from "./controllerFixtures.ts";
import { createNamespace, deployment, podsOf } from "./fixtures.ts";

export const CLI = join(REPO_ROOT, "bin", "kubectl-verso.js");
/** The project's Node 24 (type stripping), as `npm ci` installs it. */
export const NODE_BIN = join(REPO_ROOT, "node_modules", ".bin");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  options: { kubeconfig?: string; env?: Record<string, string>; input?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(join(NODE_BIN, "node"), [CLI, ...args], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        PATH: `${NODE_BIN}:${process.env.PATH ?? ""}`,
        ...(options.kubeconfig && { KUBECONFIG: options.kubeconfig }),
        ...options.env,
      },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("exit", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

/** A kubeconfig for `user` (client certificate signed by the cluster CA). */
export async function userKubeconfig(cp: ControlPlane, user: string): Promise<string> {
  const leaf = await makeLeaf(cp.ca, { commonName: user, client: true });
  const b64 = (s: string): string => Buffer.from(s).toString("base64");
  const dir = mkdtempSync(join(tmpdir(), `verso-${user}-`));
  const path = join(dir, "kubeconfig");
  writeFileSync(
    path,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: verso-local",
      "  cluster:",
      `    server: ${cp.credentials.server}`,
      `    certificate-authority-data: ${b64(cp.ca.cert)}`,
      "users:",
      `- name: ${user}`,
      "  user:",
      `    client-certificate-data: ${b64(leaf.cert)}`,
      `    client-key-data: ${b64(leaf.key)}`,
      "contexts:",
      `- name: ${user}`,
      "  context:",
      "    cluster: verso-local",
      `    user: ${user}`,
      "current-context: " + user,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return path;
}

/** A Role with `rules` in `namespace`, bound to the user `user`. */
export async function bindRole(
  cp: ControlPlane,
  namespace: string,
  user: string,
  rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[],
): Promise<void> {
  const name = `${user}-role`;
  await cp.client.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles`, {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name },
    rules,
  });
  await cp.client.create(
    `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`,
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
    },
  );
}

/** The read-only RBAC `kubectl verso list/get/--watch/dashboard` needs (docs/cli.md). */
export const READ_ONLY_RULES = [
  { apiGroups: ["apps"], resources: ["deployments"], verbs: ["get", "list", "watch"] },
  { apiGroups: [""], resources: ["pods", "events"], verbs: ["get", "list", "watch"] },
  { apiGroups: [""], resources: ["pods/proxy"], verbs: ["get"] },
];

/**
 * The scene both CLI suites act on, in namespace `cli`: app `shop` (v1 stable, v2 an automated
 * canary held at every step: its sample gate can never be met, so only the CLI moves it, yet
 * every 3 s interval writes an analysis with real numbers), app `cart` (a manual canary at
 * 10%), app `plain` (no release), traffic to shop's proxies, and the users `viewer` (the
 * read-only Role of docs/cli.md) and `auditor` (the same without pods/proxy).
 */
export interface Scene {
  cluster: Cluster;
  /** Undefined when pods have loopback IPs: the pod proxy cannot reach them (no live numbers). */
  range: LocalRange | undefined;
  viewer: string;
  auditor: string;
  stop(): Promise<void>;
}

export const SCENE_NS = "cli";

export async function startScene(): Promise<Scene> {
  const local = localPodRange();
  if ("skip" in local) console.warn(`[cli suites] live numbers not checked: ${local.skip}`);
  const range = "skip" in local ? undefined : local;
  const cluster = await startCluster({
    crds: false,
    controller: true,
    ...(range && { firstPodAddress: range.firstAddress }),
  });
  let stopTraffic: (() => Promise<void>) | undefined;
  const stop = async (): Promise<void> => {
    await stopTraffic?.();
    await cluster.stop();
    range?.remove();
  };
  try {
    const client = cluster.cp.client;
    await createNamespace(client, SCENE_NS, { [LABEL.injection]: "enabled" });
    const create = (d: object) =>
      client.create(`/apis/apps/v1/namespaces/${SCENE_NS}/deployments`, d);
    await create(deployment("shop-v1", "v1"));
    await create(
      deployment("shop-v2", "v2", 1, {
        annotations: {
          "verso.dev/strategy": "canary",
          "verso.dev/steps": "20,50,100",
          "verso.dev/interval": "3s",
          "verso.dev/max-error-rate": "5",
          "verso.dev/max-p99": "500ms",
          "verso.dev/min-requests": "1000000",
          "verso.dev/progress-deadline": "1h",
        },
      }),
    );
    await create(deployment("cart-v1", "v1", 1, { app: "cart" }));
    await create(
      deployment("cart-v2", "v2", 1, {
        app: "cart",
        annotations: { "verso.dev/strategy": "canary", "verso.dev/weight": "10" },
      }),
    );
    await create(deployment("plain-v1", "v1", 1, { app: "plain" }));
    await waitFor(
      "5 ready pods",
      async () => {
        const pods = await podsOf(client, SCENE_NS);
        return pods.length === 5 && pods.every(isReady) ? true : undefined;
      },
      240_000,
      500,
    );
    await waitForPhase(client, SCENE_NS, "shop-v2", "Progressing", 60_000);
    const viewer = await userKubeconfig(cluster.cp, "viewer");
    await bindRole(cluster.cp, SCENE_NS, "viewer", READ_ONLY_RULES);
    const auditor = await userKubeconfig(cluster.cp, "auditor");
    await bindRole(cluster.cp, SCENE_NS, "auditor", READ_ONLY_RULES.slice(0, 2));
    stopTraffic = traffic(cluster, "shop");
    return { cluster, range, viewer, auditor, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Requests to every ready proxy of the app, about 20 per second each, until stopped. */
const traffic = (cluster: Cluster, app: string): (() => Promise<void>) =>
  podLoad(cluster.cp.client, SCENE_NS, app, getThroughProxy, {
    perList: 20,
    minutes: Infinity,
    max: Infinity,
  }).stop;
