/** Small builders and waits shared by the cluster suite (real apiserver, no mocks). */
import type { KubeClient } from "../harness/kubeClient.ts";
import type { List, Pod } from "../harness/podTypes.ts";
import { waitFor } from "../harness/ports.ts";

export async function createNamespace(
  client: KubeClient,
  name: string,
  labels: Record<string, string> = {},
): Promise<void> {
  await client.create("/api/v1/namespaces", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name, labels },
  });
  // Pods are only admitted once the controller manager made the default service account.
  await waitFor(
    `serviceaccount ${name}/default`,
    () => client.getOptional<object>(`/api/v1/namespaces/${name}/serviceaccounts/default`),
    30_000,
  );
}

export function demoPod(name: string, annotations: Record<string, string> = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      labels: { "app.kubernetes.io/name": "shop", "app.kubernetes.io/version": "v1" },
      annotations,
    },
    spec: {
      containers: [
        {
          name: "app",
          image: "verso-demo:v1",
          ports: [{ name: "http", containerPort: 8080 }],
        },
      ],
    },
  };
}

export interface DeploymentOptions {
  /** `app.kubernetes.io/name`; "shop" unless told. */
  app?: string;
  annotations?: Record<string, string>;
  env?: Record<string, string>;
  /** Container ports declared after `http` 8080 (e.g. a `grpc` port). */
  extraPorts?: { name: string; containerPort: number }[];
}

export function deployment(
  name: string,
  version: string,
  replicas = 1,
  { app = "shop", annotations, env, extraPorts = [] }: DeploymentOptions = {},
): object {
  const labels = { "app.kubernetes.io/name": app, "app.kubernetes.io/version": version };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, labels, ...(annotations && { annotations }) },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: "app",
              image: `verso-demo:${version}`,
              ports: [{ name: "http", containerPort: 8080 }, ...extraPorts],
              ...(env && { env: Object.entries(env).map(([name, value]) => ({ name, value })) }),
              readinessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  };
}

export const allContainers = (pod: Pod): string[] => [
  ...(pod.spec.initContainers ?? []).map((c) => c.name),
  ...pod.spec.containers.map((c) => c.name),
];

export async function podsOf(client: KubeClient, ns: string, selector?: string): Promise<Pod[]> {
  const q = selector ? `?labelSelector=${encodeURIComponent(selector)}` : "";
  const list = await client.get<List<Pod>>(`/api/v1/namespaces/${ns}/pods${q}`);
  return list.items.filter((p) => !p.metadata.deletionTimestamp);
}
