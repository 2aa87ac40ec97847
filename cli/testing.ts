/** Builders for the CLI's unit tests: Deployments and pods as the API server returns them. */
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";

export function dep(
  name: string,
  version: string,
  annotations: Record<string, string> = {},
  options: { app?: string; replicas?: number; ready?: number; created?: string; rv?: string } = {},
): V1Deployment {
  const app = options.app ?? "shop";
  const labels = { "app.kubernetes.io/name": app, "app.kubernetes.io/version": version };
  const replicas = options.replicas ?? 1;
  return {
    metadata: {
      name,
      namespace: "ns",
      uid: `uid-${name}`,
      resourceVersion: options.rv ?? "100",
      creationTimestamp: (options.created ?? "2026-01-01T00:00:00Z") as unknown as Date,
      annotations,
    },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: "app", image: `verso-demo:${version}` }] },
      },
    },
    status: {
      replicas,
      updatedReplicas: replicas,
      readyReplicas: options.ready ?? replicas,
    },
  };
}

export function pod(name: string, version: string, ready = true, app = "shop"): V1Pod {
  return {
    metadata: {
      name,
      namespace: "ns",
      labels: { "verso.dev/app": app, "verso.dev/version": version },
    },
    status: {
      phase: "Running",
      podIP: "10.0.0.1",
      conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
    },
  };
}

export const status = (s: Record<string, unknown>): string =>
  JSON.stringify({
    reason: "Started",
    message: "",
    version: "v2",
    template: "t",
    startedAt: "2026-01-01T00:00:00Z",
    lastProgressAt: "2026-01-01T00:00:00Z",
    ...s,
  });
