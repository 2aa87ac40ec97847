/**
 * Everything tier 3 needs, started in order and stopped in reverse: control plane,
 * cert-manager CRDs, the webhook (registered with the apiserver), the stand-in kubelet.
 * Used by the cluster suite and by `make demo`.
 */
import { join } from "node:path";
import { ENV } from "../../shared/pod-env.ts";
import { startControlPlane, type ControlPlane } from "./controlPlane.ts";
import { installCertManagerCrds } from "./crds.ts";
import { kubectl, type KubectlResult } from "./kubectl.ts";
import { startKubelet, type Kubelet } from "./kubelet.ts";
import { registerWebhook, startWebhook, type Webhook, type WebhookEntry } from "./webhook.ts";

export interface ClusterOptions {
  crds?: boolean;
  /** Start and register the webhook (default true). */
  webhook?: boolean;
  /** Run Verso's controller inside the webhook process. */
  controller?: boolean;
  kubelet?: boolean;
  /** First pod address for the kubelet (see kubelet.ts). */
  firstPodAddress?: string;
  signalHandlers?: boolean;
  keepDir?: boolean;
  log?: (line: string) => void;
}

export interface Cluster {
  readonly cp: ControlPlane;
  readonly webhook: Webhook | undefined;
  readonly webhookEntry: WebhookEntry | undefined;
  readonly kubelet: Kubelet | undefined;
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  stop(): Promise<void>;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const cp = await startControlPlane({
    signalHandlers: options.signalHandlers,
    keepDir: options.keepDir,
    log,
  });
  let webhook: Webhook | undefined;
  let kubelet: Kubelet | undefined;
  const stop = async (): Promise<void> => {
    await kubelet?.stop();
    await webhook?.stop();
    await cp.stop();
  };
  try {
    if (options.crds !== false) {
      const t = Date.now();
      await installCertManagerCrds(cp);
      log(`[harness] cert-manager CRDs installed (${Date.now() - t}ms)`);
    }
    let webhookEntry: WebhookEntry | undefined;
    if (options.webhook !== false) {
      webhook = await startWebhook({ cp, controller: options.controller ?? false, log });
      webhookEntry = await registerWebhook(cp.client, { url: webhook.url, caPem: webhook.ca.cert });
    }
    if (options.kubelet !== false) {
      const hook = webhook;
      kubelet = await startKubelet({
        client: cp.client,
        dir: join(cp.dir, "pods"),
        firstAddress: options.firstPodAddress,
        log,
        // In a cluster the proxy reaches the controller through its Service; here it is the
        // local webhook process, verified against the webhook's CA.
        envOverrides: (_container, kind): Record<string, string> =>
          kind === "proxy" && hook
            ? {
                [ENV.controllerUrl]: hook.url,
                [ENV.controllerCa]: hook.caFile,
                NODE_EXTRA_CA_CERTS: hook.caFile,
              }
            : {},
      });
    }
    return {
      cp,
      webhook,
      webhookEntry,
      kubelet,
      kubectl: (args, input) => kubectl(cp.binaries.kubectl, cp.kubeconfig, args, input),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
