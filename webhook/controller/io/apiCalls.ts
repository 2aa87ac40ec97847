/**
 * Every Kubernetes API call the webhook process makes, with why: the one list that
 * deploy/rbac.yaml grants (test/golden/rbac.test.ts holds them equal, and holds this list
 * equal to the client calls found in the code) and docs/security.md explains. Admission makes
 * no API call at all; everything here is the controller's.
 *
 * KubeApi's methods (kube.ts) name the calls each makes, checked by the compiler: a new
 * method does not build until it says which calls it needs. The same names turn a 403 into an
 * error that says which grant is missing, instead of the apiserver's bare "forbidden".
 */
import { VersoError } from "../../../shared/errors.ts";
import type { KubeApi } from "./kube.ts";

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete";

export interface ApiCall {
  /** "" for the core group. */
  readonly group: string;
  readonly resource: string;
  readonly verb: Verb;
  /**
   * Where deploy/rbac.yaml grants it: the ClusterRole (every namespace), the Role in Verso's
   * own namespace, or nowhere (a call made only outside a cluster; `why` says when).
   */
  readonly grant: "cluster" | "own-namespace" | "none";
  /** Only these objects (the Role's resourceNames), when the call never needs another. */
  readonly names?: readonly string[];
  readonly why: string;
}

const HOP_SECRET = "verso-hop-key";

export const API_CALLS = {
  listDeployments: {
    group: "apps",
    resource: "deployments",
    verb: "list",
    grant: "cluster",
    why: "the Deployments informer's initial list: releases are Deployments carrying verso.dev annotations, in any opted-in namespace; and, when a status write is refused (422), one Deployment by name, to tell a status someone else changed from a refusal",
  },
  watchDeployments: {
    group: "apps",
    resource: "deployments",
    verb: "watch",
    grant: "cluster",
    why: "the Deployments informer: a new version, an annotation change or a rollout starts or moves a release",
  },
  patchDeployments: {
    group: "apps",
    resource: "deployments",
    verb: "patch",
    grant: "cluster",
    why: "writes the release status annotation (verso.dev/status, a JSON Patch that tests the status it was decided from) and, after a promotion, scales the superseded Deployment to 0 (--scale-down-delay; spec.replicas only)",
  },
  listPods: {
    group: "",
    resource: "pods",
    verb: "list",
    grant: "cluster",
    why: "the injected pods' informer (label verso.dev/app, all namespaces) and, per opted-in namespace, the pods without that label, to report the ones that started without the proxy",
  },
  watchPods: {
    group: "",
    resource: "pods",
    verb: "watch",
    grant: "cluster",
    why: "the same two informers: ready pods are the endpoints in every routing table, and a pod seen without the proxy gets a NotInjected Event",
  },
  listNamespaces: {
    group: "",
    resource: "namespaces",
    verb: "list",
    grant: "cluster",
    why: "the namespaces informer's initial list (label verso.dev/injection=enabled): which namespaces are opted in",
  },
  watchNamespaces: {
    group: "",
    resource: "namespaces",
    verb: "watch",
    grant: "cluster",
    why: "the namespaces informer: a namespace opting in or out adds or drops its apps' tables",
  },
  listConfigMaps: {
    group: "",
    resource: "configmaps",
    verb: "list",
    grant: "cluster",
    why: "per opted-in namespace, the ConfigMaps informer's initial list: a release may declare its gates in a ConfigMap it names (verso.dev/gates-configmap)",
  },
  getConfigMaps: {
    group: "",
    resource: "configmaps",
    verb: "get",
    grant: "cluster",
    why: "a gates ConfigMap a release names but the informer has not seen (yet): read once before it is reported missing, since a ConfigMap and its Deployment applied together may arrive in either order",
  },
  watchConfigMaps: {
    group: "",
    resource: "configmaps",
    verb: "watch",
    grant: "cluster",
    why: "the same informer: a change to a gates ConfigMap reconciles the releases that name it at once",
  },
  getNamespaces: {
    group: "",
    resource: "namespaces",
    verb: "get",
    grant: "cluster",
    why: "at start, whether the controller's own namespace exists (it always does in a cluster, so the create below is never made there)",
  },
  createNamespaces: {
    group: "",
    resource: "namespaces",
    verb: "create",
    grant: "none",
    why: "local runs only (an admin kubeconfig, e.g. the test harness): makes the controller's own namespace when it is missing. Not granted: in a cluster the install makes it, and a refusal is only logged",
  },
  createEvents: {
    group: "",
    resource: "events",
    verb: "create",
    grant: "cluster",
    why: "release progress, gate results, rollbacks and NotInjected warnings as core/v1 Events on the Deployment, in its namespace (each Event is created, never updated)",
  },
  createTokenReviews: {
    group: "authentication.k8s.io",
    resource: "tokenreviews",
    verb: "create",
    grant: "cluster",
    why: "authenticates each proxy that opens the route stream by its projected service-account token (audience verso), and learns its namespace from it",
  },
  getLeases: {
    group: "coordination.k8s.io",
    resource: "leases",
    verb: "get",
    grant: "own-namespace",
    why: "leader election: reads the Lease verso-controller in Verso's namespace",
  },
  createLeases: {
    group: "coordination.k8s.io",
    resource: "leases",
    verb: "create",
    grant: "own-namespace",
    why: "leader election: the first replica creates the Lease (create cannot be limited by name)",
  },
  updateLeases: {
    group: "coordination.k8s.io",
    resource: "leases",
    verb: "update",
    grant: "own-namespace",
    why: "leader election: renews, takes over or releases the Lease (optimistic on resourceVersion)",
  },
  getHopKeySecret: {
    group: "",
    resource: "secrets",
    verb: "get",
    grant: "own-namespace",
    names: [HOP_SECRET],
    why: "reads the hop-token key every replica signs with; no other Secret can be read",
  },
  createSecrets: {
    group: "",
    resource: "secrets",
    verb: "create",
    grant: "own-namespace",
    why: `the first replica creates ${HOP_SECRET} when none exists (create cannot be limited by name, so it is a rule of its own, in Verso's namespace only)`,
  },
} as const satisfies Record<string, ApiCall>;

export type ApiCallName = keyof typeof API_CALLS;

/** The calls each KubeApi method makes. */
export const KUBE_API_CALLS = {
  review: ["createTokenReviews"],
  annotateDeployment: ["patchDeployments", "listDeployments"],
  scaleDeployment: ["patchDeployments"],
  event: ["createEvents"],
  eventOnce: ["createEvents"],
  readLease: ["getLeases"],
  writeLease: ["createLeases", "updateLeases"],
  readSecretKey: ["getHopKeySecret"],
  readConfigMap: ["getConfigMaps"],
  ensureNamespace: ["getNamespaces", "createNamespaces"],
  createSecret: ["createSecrets"],
} as const satisfies Record<keyof KubeApi, readonly ApiCallName[]>;

/** `verb resource.group` as RBAC and kubectl auth can-i spell it. */
export function describeCall(name: ApiCallName): string {
  const c: ApiCall = API_CALLS[name];
  const target = c.group === "" ? c.resource : `${c.resource}.${c.group}`;
  return `${c.verb} ${target}${c.names ? ` (${c.names.join(", ")})` : ""}`;
}

const isForbidden = (e: unknown): boolean => {
  const o = e as { code?: unknown; statusCode?: unknown } | null;
  return o?.code === 403 || o?.statusCode === 403;
};

/**
 * The same API, with a 403 from any method turned into a VersoError CONTROLLER_FORBIDDEN
 * naming the grants that method needs; every other failure passes through unchanged.
 */
export function withGrants(api: KubeApi): KubeApi {
  const guarded: Record<string, unknown> = { ...api };
  for (const [method, calls] of Object.entries(KUBE_API_CALLS)) {
    const call = api[method as keyof KubeApi] as (...args: unknown[]) => Promise<unknown>;
    guarded[method] = async (...args: unknown[]): Promise<unknown> => {
      try {
        return await call(...args);
      } catch (error) {
        if (!isForbidden(error)) throw error;
        throw new VersoError(
          "CONTROLLER_FORBIDDEN",
          `${method}: the apiserver refused; the controller's ServiceAccount needs ${calls
            .map((c) => describeCall(c))
            .join(" and ")} (deploy/rbac.yaml, docs/security.md)`,
          { cause: error },
        );
      }
    };
  }
  return guarded as unknown as KubeApi;
}
