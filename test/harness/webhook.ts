/**
 * The Verso webhook as a local process, registered with the real apiserver: a serving cert
 * for 127.0.0.1 (IP SAN) signed by a generated CA, and a MutatingWebhookConfiguration with
 * `url: https://127.0.0.1:<port>/mutate` and that CA as caBundle. Rules, selectors and
 * failurePolicy are taken from the MutatingWebhookConfiguration shipped in deploy/, so the
 * cluster suite exercises the shipped policy.
 */
import { mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { Agent, get } from "node:https";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import type { ControlPlane } from "./controlPlane.ts";
import type { KubeClient } from "./kubeClient.ts";
import { DEPLOY_DIR, EXAMPLES_DIR, NODE, REPO_ROOT, WEBHOOK_MAIN } from "./paths.ts";
import { makeCa, makeLeaf, writePem, type Pem } from "./pki.ts";
import { freePort, waitFor } from "./ports.ts";
import { startProcess, type ManagedProcess } from "./processes.ts";

export const WEBHOOK_CONFIG_NAME = "verso-harness";

export interface WebhookEntry {
  name: string;
  failurePolicy?: string;
  namespaceSelector?: unknown;
  objectSelector?: unknown;
  rules?: unknown;
  sideEffects?: string;
  timeoutSeconds?: number;
  admissionReviewVersions?: string[];
  reinvocationPolicy?: string;
  matchPolicy?: string;
  clientConfig?: unknown;
}

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (path === EXAMPLES_DIR) continue;
    if (statSync(path).isDirectory()) out.push(...yamlFiles(path));
    else if (/\.ya?ml$/.test(entry)) out.push(path);
  }
  return out;
}

/** The webhook entry shipped in deploy/ (and the file it came from). */
export function shippedWebhook(): { entry: WebhookEntry; file: string } {
  for (const file of yamlFiles(DEPLOY_DIR)) {
    for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
      const obj = doc.toJS() as { kind?: string; webhooks?: WebhookEntry[] } | null;
      const entry = obj?.kind === "MutatingWebhookConfiguration" ? obj.webhooks?.[0] : undefined;
      if (entry) return { entry, file };
    }
  }
  throw new Error(`no MutatingWebhookConfiguration under ${DEPLOY_DIR}`);
}

export interface WebhookOptions {
  cp: ControlPlane;
  /** Extra flags after the harness's own (`--capture port`, `--controller-url`, ...). */
  args?: string[];
  /** Run the controller too (needs the cluster; it reads $KUBECONFIG). Default false. */
  controller?: boolean;
  log?: (line: string) => void;
}

export interface Webhook {
  readonly url: string;
  readonly port: number;
  readonly ca: Pem;
  readonly caFile: string;
  readonly process: ManagedProcess;
  /** GET a path on the webhook (e.g. /metrics), verified against its CA. */
  fetchText(path: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startWebhook(options: WebhookOptions): Promise<Webhook> {
  const { cp } = options;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dir = join(cp.dir, "webhook");
  mkdirSync(dir, { recursive: true });
  const ca = await makeCa("verso-webhook-ca");
  const caFiles = writePem(dir, "ca", ca);
  const leaf = await makeLeaf(ca, {
    commonName: "verso-webhook",
    dnsNames: ["localhost", "verso-webhook.verso-system.svc"],
    ips: ["127.0.0.1"],
    server: true,
  });
  const tls = writePem(dir, "tls", leaf);
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const args = [
    WEBHOOK_MAIN,
    "--listen",
    `127.0.0.1:${port}`,
    "--tls-cert",
    tls.certFile,
    "--tls-key",
    tls.keyFile,
    "--capture",
    "port",
    "--controller-url",
    url,
    // No endpoint removal to wait for here: the harness stops it at once (a Service's
    // endpoints would need the delay; SIGKILL after 5 s would otherwise win every teardown).
    "--drain-delay",
    "0",
    ...(options.controller === true ? [] : ["--no-controller"]),
    ...(options.args ?? []),
  ];
  const proc = startProcess({
    name: "webhook",
    command: NODE,
    args,
    cwd: REPO_ROOT,
    env: { ...process.env, KUBECONFIG: cp.kubeconfig, NODE_EXTRA_CA_CERTS: caFiles.certFile },
    logFile: join(cp.logDir, "webhook.log"),
  });
  const agent = new Agent({ ca: ca.cert });
  const fetchText = async (path: string): Promise<string> => {
    return new Promise((resolve, reject) => {
      get(`${url}${path}`, { agent }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () =>
          (res.statusCode ?? 0) < 400
            ? resolve(body)
            : reject(new Error(`${path}: ${res.statusCode}`)),
        );
      }).once("error", reject);
    });
  };
  await waitFor(
    "webhook /readyz",
    async () => {
      if (!proc.running()) throw new Error(`webhook exited; see ${proc.logFile}`);
      return fetchText("/readyz").then(
        () => true,
        () => undefined,
      );
    },
    30_000,
  );
  log(`[harness] webhook ready at ${url} (log ${proc.logFile})`);
  return {
    url,
    port,
    ca,
    caFile: caFiles.certFile,
    process: proc,
    fetchText,
    stop: async () => {
      agent.destroy();
      await proc.stop(5_000);
    },
  };
}

/** Creates (or replaces) the MutatingWebhookConfiguration pointing at a local webhook. */
export async function registerWebhook(
  client: KubeClient,
  target: { url: string; caPem: string },
  entry: WebhookEntry = shippedWebhook().entry,
): Promise<WebhookEntry> {
  const webhook: WebhookEntry = {
    ...entry,
    clientConfig: {
      url: `${target.url}/mutate`,
      caBundle: Buffer.from(target.caPem).toString("base64"),
    },
  };
  const path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
  await client.delete(`${path}/${WEBHOOK_CONFIG_NAME}`).catch(() => undefined);
  await client.create(path, {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: WEBHOOK_CONFIG_NAME },
    webhooks: [webhook],
  });
  return webhook;
}
