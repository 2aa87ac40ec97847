/**
 * Changes the installed controller's flags the way an operator would: a JSON patch of the
 * verso-webhook Deployment's container args, then `kubectl rollout status`. Done only when a
 * replica running the new args holds the leader Lease, since the leader alone measures
 * releases and a replica of the old ReplicaSet may still hold it for a moment.
 */
import { waitFor } from "../ports.ts";
import type { NodeCluster } from "./cluster.ts";
import { VERSO_NAMESPACE, WEBHOOK_DEPLOYMENT } from "./cluster.ts";

interface WebhookDeployment {
  spec: { template: { spec: { containers: { name: string; args?: string[] }[] } } };
}

interface Lease {
  spec: { holderIdentity?: string };
}

/** `args` with each `--flag=value` of `flags` set: an existing `--flag=...` replaced, else appended. */
export function withFlags(args: readonly string[], flags: Record<string, string>): string[] {
  const out = [...args];
  for (const [flag, value] of Object.entries(flags)) {
    const arg = `--${flag}=${value}`;
    const at = out.findIndex((a) => a === `--${flag}` || a.startsWith(`--${flag}=`));
    if (at >= 0) out[at] = arg;
    else out.push(arg);
  }
  return out;
}

async function run(cluster: NodeCluster, args: string[]): Promise<string> {
  const res = await cluster.kubectl(args);
  if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
  return res.stdout;
}

/** Sets controller flags; resolves once the rollout is done and a new replica leads. */
export async function setControllerFlags(
  cluster: NodeCluster,
  flags: Record<string, string>,
  timeoutMs = 240_000,
): Promise<void> {
  const client = cluster.cp.client;
  const path = `/apis/apps/v1/namespaces/${VERSO_NAMESPACE}/deployments/${WEBHOOK_DEPLOYMENT}`;
  const d = await client.get<WebhookDeployment>(path);
  const container = d.spec.template.spec.containers[0];
  if (container?.name !== "webhook")
    throw new Error("verso-webhook's first container is not webhook");
  const want = withFlags(container.args ?? [], flags);
  // The `test` op makes the patch fail rather than rewrite another container's args.
  const patch = [
    { op: "test", path: "/spec/template/spec/containers/0/name", value: "webhook" },
    { op: "replace", path: "/spec/template/spec/containers/0/args", value: want },
  ];
  await run(cluster, [
    ...["-n", VERSO_NAMESPACE, "patch", `deployment/${WEBHOOK_DEPLOYMENT}`],
    ...["--type=json", `--patch=${JSON.stringify(patch)}`],
  ]);
  await run(cluster, [
    ...["-n", VERSO_NAMESPACE, "rollout", "status", `deployment/${WEBHOOK_DEPLOYMENT}`],
    `--timeout=${Math.round(timeoutMs / 1000)}s`,
  ]);
  await waitFor(
    "a replica with the new flags holds the Lease",
    async () => {
      const lease = await client.getOptional<Lease>(
        `/apis/coordination.k8s.io/v1/namespaces/${VERSO_NAMESPACE}/leases/verso-controller`,
      );
      const holder = lease?.spec.holderIdentity;
      if (!holder) return undefined;
      const pod = await client.getOptional<{
        metadata: { deletionTimestamp?: string };
        spec: { containers: { name: string; args?: string[] }[] };
      }>(`/api/v1/namespaces/${VERSO_NAMESPACE}/pods/${holder}`);
      const args = pod?.spec.containers.find((c) => c.name === "webhook")?.args ?? [];
      const current = !pod?.metadata.deletionTimestamp && args.join(" ") === want.join(" ");
      return current ? true : undefined;
    },
    timeoutMs,
    500,
  );
}
