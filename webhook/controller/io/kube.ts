/**
 * The apiserver calls the controller makes, behind one small interface so the decision code
 * never sees client-node types and tests can count writes. Built on @kubernetes/client-node.
 * Which RBAC grant each method needs is listed in apiCalls.ts (KUBE_API_CALLS).
 */
import {
  AppsV1Api,
  AuthenticationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  PatchStrategy,
  type CoreV1Event,
  V1MicroTime,
  setHeaderOptions,
  type KubeConfig,
  type V1Lease,
} from "@kubernetes/client-node";
import { VersoError } from "../../../shared/errors.ts";
import { withGrants } from "./apiCalls.ts";
import type { ReviewAnswer } from "./tokenReview.ts";

export interface EventRef {
  kind: "Deployment";
  namespace: string;
  name: string;
  uid: string;
}

export interface LeaseRecord {
  holder: string | undefined;
  renewTime: number | undefined;
  durationSeconds: number;
  transitions: number;
  resourceVersion: string | undefined;
}

export interface KubeApi {
  review(token: string, audiences: string[]): Promise<ReviewAnswer>;
  /**
   * Sets annotations of a Deployment (null removes one) if `expect.annotation` still holds
   * `expect.value` on the server (null: is absent; a JSON Patch `test`); the new
   * resourceVersion. Otherwise a VersoError CONTROLLER_STATUS_CONFLICT and nothing is written.
   * A resourceVersion precondition would fail on every status update of the Deployment
   * controller; this one fails only when someone else wrote our annotation (an old leader,
   * `kubectl verso`).
   */
  annotateDeployment(
    namespace: string,
    name: string,
    annotations: Record<string, string | null>,
    expect: { annotation: string; value: string | null },
  ): Promise<string | undefined>;
  scaleDeployment(namespace: string, name: string, replicas: number): Promise<void>;
  event(ref: EventRef, type: "Normal" | "Warning", reason: string, message: string): Promise<void>;
  /**
   * An Event with a fixed name, for a fact to report once whoever reports it: false when an
   * Event of that name exists already (the apiserver drops Events after its event TTL, 1 h
   * by default, so a fact still true then is reported again).
   */
  eventOnce(
    ref: EventRef,
    name: string,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ): Promise<boolean>;
  readLease(namespace: string, name: string): Promise<LeaseRecord | undefined>;
  /** Create (no resourceVersion) or replace (optimistic on resourceVersion); false on conflict. */
  writeLease(
    namespace: string,
    name: string,
    lease: LeaseRecord & { holder: string; renewTime: number },
  ): Promise<boolean>;
  readSecretKey(namespace: string, name: string, key: string): Promise<Buffer | undefined>;
  /** A ConfigMap's data ({} when it has none); undefined when there is no such ConfigMap. */
  readConfigMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Create the namespace when it is missing (local runs). */
  ensureNamespace(name: string): Promise<void>;
  /** false when it already exists (someone else made it first). */
  createSecret(namespace: string, name: string, data: Record<string, Buffer>): Promise<boolean>;
}

const statusCode = (e: unknown): number | undefined => {
  const c =
    (e as { code?: unknown; statusCode?: unknown })?.code ??
    (e as { statusCode?: unknown })?.statusCode;
  return typeof c === "number" ? c : undefined;
};

/** `call`'s result, or `fallback` when the apiserver answers `code` (404 missing, 409 taken). */
async function unless<T, F>(code: 404 | 409, fallback: F, call: () => Promise<T>): Promise<T | F> {
  try {
    return await call();
  } catch (e) {
    if (statusCode(e) === code) return fallback;
    throw e;
  }
}

const COMPONENT = "verso-controller";

function eventBody(
  ref: EventRef,
  naming: { name: string } | { generateName: string },
  type: "Normal" | "Warning",
  reason: string,
  message: string,
  reportingInstance: string,
): CoreV1Event {
  const now = new Date();
  return {
    metadata: { ...naming, namespace: ref.namespace },
    involvedObject: {
      apiVersion: "apps/v1",
      kind: ref.kind,
      namespace: ref.namespace,
      name: ref.name,
      uid: ref.uid,
    },
    type,
    reason,
    message: message.slice(0, 1024),
    source: { component: COMPONENT },
    reportingComponent: COMPONENT,
    reportingInstance,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

export function createKubeApi(kc: KubeConfig, reportingInstance: string): KubeApi {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const auth = kc.makeApiClient(AuthenticationV1Api);
  const coord = kc.makeApiClient(CoordinationV1Api);
  const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
  const jsonPatch = setHeaderOptions("Content-Type", PatchStrategy.JsonPatch);

  // Each method names its calls in apiCalls.ts: a 403 then says which grant is missing.
  return withGrants({
    async review(token, audiences) {
      const r = await auth.createTokenReview({
        body: {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenReview",
          spec: { token, audiences },
        },
      });
      const s = r.status ?? {};
      const answer: ReviewAnswer = { authenticated: s.authenticated === true };
      if (s.user?.username !== undefined) answer.username = s.user.username;
      if (s.audiences) answer.audiences = s.audiences;
      if (s.error) answer.error = s.error;
      return answer;
    },
    async annotateDeployment(namespace, name, annotations, expect) {
      const path = (key: string): string =>
        `/metadata/annotations/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`;
      const body = [
        { op: "test", path: path(expect.annotation), value: expect.value },
        ...Object.entries(annotations).map(([key, value]) =>
          value === null
            ? { op: "remove", path: path(key) }
            : { op: "add", path: path(key), value },
        ),
      ];
      try {
        const d = await apps.patchNamespacedDeployment({ namespace, name, body }, jsonPatch);
        return d.metadata?.resourceVersion;
      } catch (error) {
        // A failed `test` is a 422, and so is a refusal that retrying cannot cure (annotations
        // over 256 KiB, an admission policy): it is a conflict only if the value did change.
        if (statusCode(error) !== 422) throw error;
        const now = await apps.listNamespacedDeployment({
          namespace,
          fieldSelector: `metadata.name=${name}`,
        });
        const value = now.items[0]?.metadata?.annotations?.[expect.annotation] ?? null;
        if (value === expect.value) throw error;
        throw new VersoError(
          "CONTROLLER_STATUS_CONFLICT",
          `${expect.annotation} of ${namespace}/${name} changed since it was read`,
          { cause: error },
        );
      }
    },
    async scaleDeployment(namespace, name, replicas) {
      await apps.patchNamespacedDeployment(
        { namespace, name, body: { spec: { replicas } } },
        merge,
      );
    },
    async event(ref, type, reason, message) {
      await core.createNamespacedEvent({
        namespace: ref.namespace,
        body: eventBody(
          ref,
          { generateName: `${ref.name}.verso-` },
          type,
          reason,
          message,
          reportingInstance,
        ),
      });
    },
    async eventOnce(ref, name, type, reason, message) {
      return unless(409, false, async () => {
        await core.createNamespacedEvent({
          namespace: ref.namespace,
          body: eventBody(ref, { name }, type, reason, message, reportingInstance),
        });
        return true;
      });
    },
    async readLease(namespace, name) {
      const lease = await unless(404, undefined, () =>
        coord.readNamespacedLease({ namespace, name }),
      );
      if (!lease) return undefined;
      const renew = lease.spec?.renewTime;
      return {
        holder: lease.spec?.holderIdentity,
        renewTime: renew ? new Date(renew).getTime() : undefined,
        durationSeconds: lease.spec?.leaseDurationSeconds ?? 15,
        transitions: lease.spec?.leaseTransitions ?? 0,
        resourceVersion: lease.metadata?.resourceVersion,
      };
    },
    async writeLease(namespace, name, l) {
      const body: V1Lease = {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: {
          name,
          namespace,
          ...(l.resourceVersion ? { resourceVersion: l.resourceVersion } : {}),
        },
        spec: {
          holderIdentity: l.holder,
          leaseDurationSeconds: l.durationSeconds,
          renewTime: new V1MicroTime(l.renewTime),
          leaseTransitions: l.transitions,
        },
      };
      return unless(409, false, async () => {
        if (l.resourceVersion) await coord.replaceNamespacedLease({ namespace, name, body });
        else await coord.createNamespacedLease({ namespace, body });
        return true;
      });
    },
    async readSecretKey(namespace, name, key) {
      const s = await unless(404, undefined, () => core.readNamespacedSecret({ namespace, name }));
      const v = s?.data?.[key];
      return v === undefined ? undefined : Buffer.from(v, "base64");
    },
    async readConfigMap(namespace, name) {
      const cm = await unless(404, undefined, () =>
        core.readNamespacedConfigMap({ namespace, name }),
      );
      return cm ? (cm.data ?? {}) : undefined;
    },
    async ensureNamespace(name) {
      if (await unless(404, undefined, () => core.readNamespace({ name }))) return;
      await unless(409, undefined, () => core.createNamespace({ body: { metadata: { name } } }));
    },
    async createSecret(namespace, name, data) {
      return unless(409, false, async () => {
        await core.createNamespacedSecret({
          namespace,
          body: {
            metadata: { name, namespace, labels: { "app.kubernetes.io/managed-by": COMPONENT } },
            type: "Opaque",
            data: Object.fromEntries(
              Object.entries(data).map(([k, v]) => [k, v.toString("base64")]),
            ),
          },
        });
        return true;
      });
    },
  });
}
