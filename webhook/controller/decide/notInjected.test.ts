import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { DEFAULT_INJECT } from "../../mutation/config.ts";
import { decide } from "../../mutation/decide.ts";
import type { Pod } from "../../mutation/pod.ts";
import { applyPlan } from "../../mutation/render.ts";
import {
  checkInjection,
  notInjectedMessage,
  ownerDeployment,
  type InjectionCheck,
  type InjectionContext,
} from "./notInjected.ts";

const SHOP_V1 = { name: "shop-v1", uid: "uid-shop-v1" };

const ctx: InjectionContext = {
  controllerNamespace: "verso-system",
  optedIn: (ns) => ns !== "plain",
  deploymentsOf: (ns, app) => (app === "shop" && ns !== "empty" ? [SHOP_V1] : []),
};

/** A pod of shop-v1 as its ReplicaSet creates it, before any webhook touched it. */
function plainPod(edit: (p: V1Pod & { metadata: object; spec: object }) => void = () => {}): V1Pod {
  const pod = {
    metadata: {
      name: "shop-v1-7d9f8-abcde",
      namespace: "shop",
      uid: "pod-uid",
      labels: {
        "app.kubernetes.io/name": "shop",
        "app.kubernetes.io/version": "v1",
        "pod-template-hash": "7d9f8",
      },
      annotations: {},
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: "shop-v1-7d9f8",
          uid: "rs-uid",
          controller: true,
        },
      ],
    },
    spec: {
      containers: [
        { name: "app", image: "shop:v1", ports: [{ name: "http", containerPort: 8080 }] },
      ],
    },
    status: { phase: "Running" },
  };
  edit(pod);
  return pod;
}

/** The same pod as the webhook would have admitted it: proxy, labels, annotation. */
function injectedPod(): V1Pod {
  const pod = plainPod() as unknown as Pod;
  const d = decide(pod, "shop", DEFAULT_INJECT);
  if (!d.inject) throw new Error(`the fixture is not injectable: ${d.reasons.join(",")}`);
  return applyPlan(pod, d.plan, DEFAULT_INJECT) as unknown as V1Pod;
}

const no = (reason: string): InjectionCheck => ({ missing: false, reason }) as InjectionCheck;
const missing = (deployment = SHOP_V1): InjectionCheck => ({
  missing: true,
  app: "shop",
  deployment,
});

// Mirrors the truth table above checkInjection(), row by row.
describe("checkInjection (mirrors its truth table)", () => {
  it.each([
    {
      row: "terminating",
      pod: plainPod((p) => Object.assign(p.metadata, { deletionTimestamp: new Date() })),
      expected: no("leaving"),
    },
    {
      row: "Succeeded",
      pod: plainPod((p) => Object.assign(p, { status: { phase: "Succeeded" } })),
      expected: no("leaving"),
    },
    {
      row: "Failed",
      pod: plainPod((p) => Object.assign(p, { status: { phase: "Failed" } })),
      expected: no("leaving"),
    },
    {
      row: "kube-system",
      pod: plainPod((p) => Object.assign(p.metadata, { namespace: "kube-system" })),
      expected: no("protected_namespace"),
    },
    {
      row: "the controller's own namespace",
      pod: plainPod((p) => Object.assign(p.metadata, { namespace: "verso-system" })),
      expected: no("protected_namespace"),
    },
    {
      row: "namespace not opted in",
      pod: plainPod((p) => Object.assign(p.metadata, { namespace: "plain" })),
      expected: no("not_opted_in"),
    },
    { row: "injected by the webhook", pod: injectedPod(), expected: no("injected") },
    {
      row: "annotation verso.dev/injected alone",
      pod: plainPod((p) =>
        Object.assign(p.metadata, { annotations: { "verso.dev/injected": "true" } }),
      ),
      expected: no("injected"),
    },
    {
      row: "a verso-proxy container alone (not native)",
      pod: plainPod((p) =>
        Object.assign(p.spec, {
          containers: [{ name: "app", image: "shop:v1" }, { name: "verso-proxy" }],
        }),
      ),
      expected: no("injected"),
    },
    {
      row: 'annotation verso.dev/inject: "false"',
      pod: plainPod((p) =>
        Object.assign(p.metadata, { annotations: { "verso.dev/inject": "False " } }),
      ),
      expected: no("opted_out"),
    },
    {
      row: 'label verso.dev/inject: "false"',
      pod: plainPod((p) => {
        (p.metadata as { labels: Record<string, string> }).labels["verso.dev/inject"] = "false";
      }),
      expected: no("opted_out"),
    },
    {
      row: "hostNetwork",
      pod: plainPod((p) => Object.assign(p.spec, { hostNetwork: true })),
      expected: no("host_network"),
    },
    {
      row: "no app name",
      pod: plainPod((p) => Object.assign(p.metadata, { labels: { "pod-template-hash": "7d9f8" } })),
      expected: no("no_app"),
    },
    {
      row: "no Deployment of the app in the namespace",
      pod: plainPod((p) => Object.assign(p.metadata, { namespace: "empty" })),
      expected: no("untracked"),
    },
    { row: "otherwise: missing, with its Deployment", pod: plainPod(), expected: missing() },
    {
      row: "the app from the annotation verso.dev/app, as the webhook reads it",
      pod: plainPod((p) =>
        Object.assign(p.metadata, {
          labels: { app: "other", "pod-template-hash": "7d9f8" },
          annotations: { "verso.dev/app": "shop" },
        }),
      ),
      expected: missing(),
    },
    {
      row: "missing, owned by no Deployment of the app",
      pod: plainPod((p) => Object.assign(p.metadata, { ownerReferences: [] })),
      expected: { missing: true, app: "shop", deployment: undefined },
    },
  ])("$row", ({ pod, expected }) => {
    expect(checkInjection(pod, ctx)).toEqual(expected);
  });
});

describe("ownerDeployment", () => {
  it.each([
    { row: "ReplicaSet <deployment>-<hash>", pod: plainPod(), expected: "shop-v1" },
    {
      row: "the ReplicaSet's name does not end in the pod's hash",
      pod: plainPod((p) => {
        (p.metadata as { labels: Record<string, string> })["labels"]["pod-template-hash"] = "zzz";
      }),
      expected: undefined,
    },
    {
      row: "no pod-template-hash label",
      pod: plainPod((p) => Object.assign(p.metadata, { labels: {} })),
      expected: undefined,
    },
    {
      row: "an owner that is not the controller",
      pod: plainPod((p) =>
        Object.assign(p.metadata, {
          ownerReferences: [{ kind: "ReplicaSet", name: "shop-v1-7d9f8", uid: "x" }],
        }),
      ),
      expected: undefined,
    },
    {
      row: "a StatefulSet's pod",
      pod: plainPod((p) =>
        Object.assign(p.metadata, {
          ownerReferences: [{ kind: "StatefulSet", name: "shop", uid: "x", controller: true }],
        }),
      ),
      expected: undefined,
    },
  ])("$row", ({ pod, expected }) => {
    expect(ownerDeployment(pod)).toBe(expected);
  });
});

describe("notInjectedMessage", () => {
  it("names the pod and gives the remedy for its Deployment", () => {
    const text = notInjectedMessage("shop", "shop-v1-7d9f8-abcde", "shop-v1");
    expect(text).toContain("shop-v1-7d9f8-abcde");
    expect(text).toContain("kubectl -n shop rollout restart deployment/shop-v1");
    // Kubernetes cuts an Event's message at 1 KiB.
    expect(text.length).toBeLessThan(1024);
  });
});
