/**
 * Pods left outside the release: created in an opted-in namespace for an app the controller
 * tracks, yet running without the proxy. The webhook runs with `failurePolicy: Ignore`, so
 * a pod created while it is down (or slower than its timeout) is admitted as it was: it
 * serves its own version to whatever reaches it, unrouted and unmeasured. Pure.
 *
 *   terminating, Succeeded or Failed                               -> no: leaving
 *   namespace kube-system or the controller's own                  -> no: protected_namespace
 *   namespace not labelled verso.dev/injection=enabled             -> no: not_opted_in
 *   annotation verso.dev/injected, or a verso-proxy container      -> no: injected
 *   annotation or label verso.dev/inject: "false"                  -> no: opted_out
 *   spec.hostNetwork (the webhook never injects those)             -> no: host_network
 *   no app name (the webhook's own derivation)                     -> no: no_app
 *   no Deployment of that app in the namespace                     -> no: untracked
 *   otherwise                                                      -> missing: the app, and
 *     the Deployment that owns the pod through its ReplicaSet, when it is one of the app's
 */
import type { V1Pod } from "@kubernetes/client-node";
import { ANNOTATION } from "../../../shared/annotations.ts";
import { PROXY_CONTAINER } from "../../../shared/pod-env.ts";
import { PROTECTED_NAMESPACES } from "../../mutation/decide.ts";
import { deriveIdentity } from "../../mutation/identity.ts";
import type { Pod } from "../../mutation/pod.ts";

/** Why a pod is not reported: one code, the log field and the test's expectation. */
export type InjectedOrExcused =
  | "leaving"
  | "protected_namespace"
  | "not_opted_in"
  | "injected"
  | "opted_out"
  | "host_network"
  | "no_app"
  | "untracked";

export interface DeploymentRef {
  name: string;
  uid: string;
}

export type InjectionCheck =
  | { missing: true; app: string; deployment: DeploymentRef | undefined }
  | { missing: false; reason: InjectedOrExcused };

export interface InjectionContext {
  /** Verso's own namespace: never injected, like kube-system. */
  controllerNamespace: string;
  /** The namespace carries verso.dev/injection=enabled. */
  optedIn(namespace: string): boolean;
  /** The Deployments of `app` in `namespace`: what the controller tracks. */
  deploymentsOf(namespace: string, app: string): readonly DeploymentRef[];
}

const excused = (reason: InjectedOrExcused): InjectionCheck => ({ missing: false, reason });

export function checkInjection(pod: V1Pod, ctx: InjectionContext): InjectionCheck {
  const meta = pod.metadata ?? {};
  const namespace = meta.namespace ?? "";
  const phase = pod.status?.phase;
  if (meta.deletionTimestamp !== undefined || phase === "Succeeded" || phase === "Failed") {
    return excused("leaving");
  }
  if (PROTECTED_NAMESPACES.includes(namespace) || namespace === ctx.controllerNamespace) {
    return excused("protected_namespace");
  }
  if (!ctx.optedIn(namespace)) return excused("not_opted_in");
  const annotations = meta.annotations ?? {};
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  if (
    annotations[ANNOTATION.injected] !== undefined ||
    containers.some((c) => c.name === PROXY_CONTAINER)
  ) {
    return excused("injected");
  }
  const optOut = annotations[ANNOTATION.inject] ?? meta.labels?.[ANNOTATION.inject];
  if (optOut?.trim().toLowerCase() === "false") return excused("opted_out");
  if (pod.spec?.hostNetwork === true) return excused("host_network");
  const app = appOf(pod);
  if (app === undefined) return excused("no_app");
  const deployments = ctx.deploymentsOf(namespace, app);
  if (deployments.length === 0) return excused("untracked");
  const owner = ownerDeployment(pod);
  return { missing: true, app, deployment: deployments.find((d) => d.name === owner) };
}

/** The app the webhook would have given the pod (annotation, then labels). */
function appOf(pod: V1Pod): string | undefined {
  return deriveIdentity({
    metadata: { labels: pod.metadata?.labels ?? {}, annotations: pod.metadata?.annotations ?? {} },
    spec: {
      containers: (pod.spec?.containers ?? []).map((c) => ({ name: c.name, image: c.image })),
    },
  } as Pod).app;
}

/**
 * The Deployment behind the pod's ReplicaSet: a Deployment names its ReplicaSets
 * `<deployment>-<pod-template-hash>` and puts that hash on their pods. Undefined for a pod
 * no ReplicaSet controls (a bare pod, a StatefulSet's).
 */
export function ownerDeployment(pod: V1Pod): string | undefined {
  const rs = pod.metadata?.ownerReferences?.find(
    (o) => o.kind === "ReplicaSet" && o.controller === true,
  );
  const hash = pod.metadata?.labels?.["pod-template-hash"];
  if (!rs || !hash || !rs.name.endsWith(`-${hash}`)) return undefined;
  return rs.name.slice(0, -(hash.length + 1)) || undefined;
}

/** The Event's text: what happened, what it costs, and the remedy (docs/operations.md). */
export function notInjectedMessage(namespace: string, pod: string, deployment: string): string {
  return (
    `pod ${pod} runs without the Verso proxy: the injection webhook did not answer when it was ` +
    `created (or skipped it; its log says why). It serves outside the release, unrouted and ` +
    `unmeasured. Once the webhook is back: kubectl -n ${namespace} rollout restart deployment/${deployment}`
  );
}
