/**
 * The few fields of Deployments and Pods the controller decides on, read once from the
 * apiserver objects. Pure. Identity uses the webhook's own derivation on the pod template,
 * so a Deployment's app/version is exactly what the webhook writes on its pods.
 */
import { createHash } from "node:crypto";
import type { V1Container, V1Deployment, V1Pod } from "@kubernetes/client-node";
import { LABEL } from "../../../shared/annotations.ts";
import { splitHostPort } from "../../../shared/net.ts";
import { ENV, GRPC_PORT_NAME, PROXY_CONTAINER, PROXY_PORT } from "../../../shared/pod-env.ts";
import { deriveIdentity } from "../../mutation/identity.ts";
import type { Pod } from "../../mutation/pod.ts";

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
  /**
   * `podIP:15007` (the proxy's gRPC listener) when ready and the webhook gave the proxy one;
   * undefined otherwise, so pods injected without gRPC never appear in grpcEndpoints.
   */
  grpcEndpoint: string | undefined;
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

/**
 * The port of the injected proxy's gRPC listener, read from the pod the webhook wrote:
 *
 *   proxy container has env VERSO_GRPC_LISTEN (a host:port value) -> its port
 *   else it has a container port named verso-grpc                  -> that port
 *   else (no gRPC port in the pod, no proxy, or injected before gRPC) -> none
 *
 * The env comes first because it is what the proxy binds; the named port is what a Service
 * targets, and the webhook always writes both with the same number.
 */
export function proxyGrpcPort(p: V1Pod): number | undefined {
  const spec = p.spec;
  const all: V1Container[] = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])];
  const proxy = all.find((c) => c.name === PROXY_CONTAINER);
  if (!proxy) return undefined;
  const listen = proxy.env?.find((e) => e.name === ENV.grpcListen)?.value;
  const fromEnv = listen !== undefined ? splitHostPort(listen)?.port : undefined;
  if (fromEnv !== undefined && fromEnv > 0) return fromEnv;
  return proxy.ports?.find((port) => port.name === GRPC_PORT_NAME)?.containerPort;
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
  const grpcPort = ready && ip ? proxyGrpcPort(p) : undefined;
  const grpcEndpoint = ip && grpcPort !== undefined ? formatEndpoint(ip, grpcPort) : undefined;
  return {
    namespace: meta.namespace ?? "",
    name: meta.name ?? "",
    app,
    version,
    endpoint,
    admin,
    grpcEndpoint,
  };
}

const formatEndpoint = (ip: string, port: number): string =>
  ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;

/** Everything the controller knows of one app: its Deployments and its injected pods. */
export interface AppState {
  deployments: DeploymentView[];
  pods: PodView[];
}
