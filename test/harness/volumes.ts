/**
 * Volumes materialised as local directories under the pod dir (there are no mounts):
 * projected service-account tokens (TokenRequest API, audience from the volume, bound to
 * the pod, refreshed at 80% of their lifetime), configMaps, secrets, downward API
 * (metadata fields) and emptyDirs. Containers find them through the env rewrite in
 * containerEnv.ts.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fieldValue, type EnvContext } from "./containerEnv.ts";
import type { KubeClient } from "./kubeClient.ts";
import type { KeyToPath, Pod, ProjectionSource, Volume } from "./podTypes.ts";

export interface Volumes {
  /** Volume name -> local directory. */
  dirs: Map<string, string>;
  stop(): void;
}

interface TokenRequestStatus {
  status: { token: string; expirationTimestamp: string };
}

interface DataObject {
  data?: Record<string, string>;
}

function writeAt(dir: string, path: string, content: string | Buffer): void {
  const file = join(dir, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content, { mode: 0o644 });
}

async function requestToken(
  client: KubeClient,
  pod: Pod,
  audience: string | undefined,
  expirationSeconds: number,
): Promise<{ token: string; refreshInMs: number }> {
  const ns = pod.metadata.namespace ?? "default";
  const sa = pod.spec.serviceAccountName ?? "default";
  const res = await client.create<TokenRequestStatus>(
    `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: {
        audiences: audience ? [audience] : [],
        expirationSeconds,
        boundObjectRef: {
          apiVersion: "v1",
          kind: "Pod",
          name: pod.metadata.name,
          uid: pod.metadata.uid,
        },
      },
    },
  );
  const lifetime = Date.parse(res.status.expirationTimestamp) - Date.now();
  return { token: res.status.token, refreshInMs: Math.max(10_000, lifetime * 0.8) };
}

async function writeData(
  client: KubeClient,
  dir: string,
  kind: "configmaps" | "secrets",
  ns: string,
  name: string,
  { items, optional = false }: { items?: KeyToPath[]; optional?: boolean },
): Promise<void> {
  const obj = await client.getOptional<DataObject>(`/api/v1/namespaces/${ns}/${kind}/${name}`);
  if (!obj) {
    if (optional) return;
    throw new Error(`${kind} ${ns}/${name} not found`);
  }
  const decode = (v: string): string | Buffer =>
    kind === "secrets" ? Buffer.from(v, "base64") : v;
  const data = obj.data ?? {};
  const pairs = items ?? Object.keys(data).map((key) => ({ key, path: key }));
  for (const { key, path } of pairs) {
    const value = data[key];
    if (value !== undefined) writeAt(dir, path, decode(value));
  }
}

export async function materialiseVolumes(
  client: KubeClient,
  pod: Pod,
  rootDir: string,
  ctx: EnvContext,
): Promise<Volumes> {
  const dirs = new Map<string, string>();
  const timers: NodeJS.Timeout[] = [];
  const ns = pod.metadata.namespace ?? "default";

  const projectToken = async (
    dir: string,
    src: NonNullable<ProjectionSource["serviceAccountToken"]>,
  ) => {
    const refresh = async (): Promise<void> => {
      const { token, refreshInMs } = await requestToken(
        client,
        pod,
        src.audience,
        src.expirationSeconds ?? 3607,
      );
      writeAt(dir, src.path, token);
      const timer = setTimeout(() => void refresh().catch(() => undefined), refreshInMs);
      timer.unref();
      timers.push(timer);
    };
    await refresh();
  };

  for (const volume of pod.spec.volumes ?? []) {
    const dir = join(rootDir, volume.name);
    mkdirSync(dir, { recursive: true });
    dirs.set(volume.name, dir);
    await materialise(volume, dir);
  }
  return { dirs, stop: () => timers.forEach((t) => clearTimeout(t)) };

  async function materialise(volume: Volume, dir: string): Promise<void> {
    const { configMap, secret } = volume;
    if (configMap) await writeData(client, dir, "configmaps", ns, configMap.name, configMap);
    if (secret) await writeData(client, dir, "secrets", ns, secret.secretName, secret);
    for (const src of volume.projected?.sources ?? []) {
      if (src.serviceAccountToken) await projectToken(dir, src.serviceAccountToken);
      if (src.configMap) {
        await writeData(client, dir, "configmaps", ns, src.configMap.name, src.configMap);
      }
      if (src.secret) await writeData(client, dir, "secrets", ns, src.secret.name, src.secret);
      for (const item of src.downwardAPI?.items ?? []) {
        const value = item.fieldRef ? fieldValue(pod, item.fieldRef.fieldPath, ctx) : undefined;
        writeAt(dir, item.path, value ?? "");
      }
    }
  }
}
