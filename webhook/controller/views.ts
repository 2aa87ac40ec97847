/**
 * The few fields of Deployments and Pods the controller decides on, read once from the
 * apiserver objects. Pure. Identity uses the webhook's own derivation on the pod template,
 * so a Deployment's app/version is exactly what the webhook writes on its pods.
 */
import { createHash } from "node:crypto";
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import { LABEL } from "../../shared/annotations.ts";
import { PROXY_PORT } from "../../shared/pod-env.ts";
import { deriveIdentity } from "../mutation/identity.ts";
import type { Pod } from "../mutation/pod.ts";

export interface DeploymentView {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
  /** creationTimestamp, epoch ms. */
  created: number;
  /** Short hash of spec.template: what a "new spec" means for a failed release. */
  template: string;
  annotations: Record<string, string>;
  app: string | undefined;
  version: string;
  replicas: number;
  /** Every desired replica is updated and ready, and the spec is observed. */
  ready: boolean;
}

export interface PodView {
  namespace: string;
  name: string;
  app: string;
  version: string;
  /** `podIP:15006` when ready and not terminating; undefined otherwise. */
  endpoint: string | undefined;
  /** `podIP:15020` (the proxy's admin server, for scraping) when ready. */
  admin: string | undefined;
}

const epoch = (d: Date | string | undefined): number => {
  if (d === undefined) return 0;
  const t = d instanceof Date ? d.getTime() : Date.parse(d);
  return Number.isFinite(t) ? t : 0;
};

function identityOf(d: V1Deployment): { app: string | undefined; version: string } {
  const template = d.spec?.template;
  return deriveIdentity({
    metadata: {
      labels: template?.metadata?.labels ?? {},
      annotations: template?.metadata?.annotations ?? {},
    },
    spec: {
      containers: (template?.spec?.containers ?? []).map((c) => ({ name: c.name, image: c.image })),
    },
  } as Pod);
}

/** The app of a Deployment, without the rest of its view (no template hash, no copies). */
export const deploymentApp = (d: V1Deployment): string | undefined => identityOf(d).app;

export function toDeploymentView(d: V1Deployment): DeploymentView {
  const meta = d.metadata ?? {};
  const template = d.spec?.template;
  const identity = identityOf(d);
  const replicas = d.spec?.replicas ?? 1;
  const st = d.status ?? {};
  const ready =
    replicas > 0 &&
    // Not observedGeneration: annotation writes (ours included) bump a Deployment's generation.
    (st.replicas ?? 0) <= replicas &&
    (st.updatedReplicas ?? 0) >= replicas &&
    (st.readyReplicas ?? 0) >= replicas;
  return {
    namespace: meta.namespace ?? "",
    name: meta.name ?? "",
    uid: meta.uid ?? "",
    resourceVersion: meta.resourceVersion ?? "",
    created: epoch(meta.creationTimestamp),
    template: createHash("sha256")
      .update(JSON.stringify(template ?? {}))
      .digest("hex")
      .slice(0, 16),
    annotations: { ...(meta.annotations ?? {}) },
    app: identity.app,
    version: identity.version,
    replicas,
    ready,
  };
}

/** Undefined for pods the webhook did not label (not part of any app). */
export function toPodView(p: V1Pod): PodView | undefined {
  const meta = p.metadata ?? {};
  const app = meta.labels?.[LABEL.app];
  const version = meta.labels?.[LABEL.version];
  if (!app || !version) return undefined;
  const ready =
    meta.deletionTimestamp === undefined &&
    p.status?.phase === "Running" &&
    (p.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
  const ip = p.status?.podIP;
  // Peers always reach the proxy's inbound port: in iptables mode it is the redirect target,
  // in port mode the Service targets it too.
  const endpoint = ready && ip ? formatEndpoint(ip, PROXY_PORT.inbound) : undefined;
  const admin = ready && ip ? formatEndpoint(ip, PROXY_PORT.admin) : undefined;
  return { namespace: meta.namespace ?? "", name: meta.name ?? "", app, version, endpoint, admin };
}

const formatEndpoint = (ip: string, port: number): string =>
  ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
