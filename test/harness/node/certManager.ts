/**
 * Plays cert-manager's part for the install (its controller cannot be built here: its command
 * modules are not on the Go module proxy). It does exactly what cert-manager and cainjector
 * would do for what `deploy/` declares, reading the declarations from the API:
 *   - every Certificate gets its Secret (`spec.secretName`): tls.crt, tls.key and ca.crt,
 *     for the Certificate's dnsNames, signed by one CA (deploy/'s self-signed -> CA chain);
 *   - every MutatingWebhookConfiguration annotated `cert-manager.io/inject-ca-from: ns/name`
 *     gets that Certificate's CA in each webhook's clientConfig.caBundle.
 */
import type { KubeClient } from "../kubeClient.ts";
import { makeCa, makeLeaf, type Pem } from "../pki.ts";

export const INJECT_CA_FROM = "cert-manager.io/inject-ca-from";

interface Certificate {
  metadata: { name: string; namespace: string };
  spec: { secretName: string; dnsNames?: string[]; isCA?: boolean; commonName?: string };
}

interface WebhookConfiguration {
  metadata: { name: string; annotations?: Record<string, string> };
  webhooks?: { name: string; clientConfig: Record<string, unknown> }[];
}

const b64 = (text: string): string => Buffer.from(text).toString("base64");

export interface Issued {
  /** Secrets written, as namespace/name. */
  secrets: string[];
  /** Webhook configurations given a CA bundle. */
  injected: string[];
}

export async function issueCertificates(client: KubeClient, caName: string): Promise<Issued> {
  const ca: Pem = await makeCa(caName);
  const certs = await client.get<{ items: Certificate[] }>("/apis/cert-manager.io/v1/certificates");
  const secrets: string[] = [];
  for (const cert of certs.items) {
    const { name, namespace } = cert.metadata;
    const pem = cert.spec.isCA
      ? ca
      : await makeLeaf(ca, {
          commonName: cert.spec.commonName ?? cert.spec.dnsNames?.[0] ?? name,
          dnsNames: cert.spec.dnsNames ?? [],
          server: true,
        });
    const secret = {
      apiVersion: "v1",
      kind: "Secret",
      type: "kubernetes.io/tls",
      metadata: {
        name: cert.spec.secretName,
        namespace,
        annotations: { "cert-manager.io/certificate-name": name },
      },
      data: { "tls.crt": b64(pem.cert), "tls.key": b64(pem.key), "ca.crt": b64(ca.cert) },
    };
    await client.request(`/api/v1/namespaces/${namespace}/secrets/${cert.spec.secretName}`, {
      method: "PATCH",
      body: secret,
      contentType: "application/apply-patch+yaml",
      query: { fieldManager: "verso-harness-cert-manager", force: "true" },
    });
    secrets.push(`${namespace}/${cert.spec.secretName}`);
  }

  const hooks = await client.get<{ items: WebhookConfiguration[] }>(
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
  );
  const injected: string[] = [];
  for (const hook of hooks.items) {
    const from = hook.metadata.annotations?.[INJECT_CA_FROM];
    if (from === undefined) continue;
    const [namespace, name] = from.split("/");
    if (!certs.items.some((c) => c.metadata.namespace === namespace && c.metadata.name === name)) {
      throw new Error(`${hook.metadata.name}: ${INJECT_CA_FROM} names unknown Certificate ${from}`);
    }
    const patch = (hook.webhooks ?? []).map((_, i) => ({
      op: "add",
      path: `/webhooks/${i}/clientConfig/caBundle`,
      value: b64(ca.cert),
    }));
    await client.patch(
      `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${hook.metadata.name}`,
      patch,
      "json",
    );
    injected.push(hook.metadata.name);
  }
  return { secrets, injected };
}
