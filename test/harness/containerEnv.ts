/**
 * Container environment as a kubelet would build it, plus the harness's two rewrites
 * (pure, no I/O):
 *
 *  1. Mount paths: an env value equal to a volume mount path, or under it, is rewritten to
 *     the local directory the harness materialised that volume in (there is no mount
 *     namespace). `/var/run/secrets/verso/token` -> `<pod dir>/volumes/<volume>/token`.
 *  2. Bind addresses: a value of the form `0.0.0.0:<port>`, `127.0.0.1:<port>` or
 *     `localhost:<port>` (alone, or after `scheme://`) gets the pod IP as host, so every pod's
 *     processes sit on their own 127.0.0.x address, as if each had its own network namespace.
 *
 * Also: `$(VAR)` references expand to earlier variables (as the kubelet does), fieldRef
 * resolves the downward API fields, resourceFieldRef is approximated ("0": no limits here).
 */
import type { Container, EnvVar, Pod } from "./podTypes.ts";

export interface EnvContext {
  pod: Pod;
  podIP: string;
  hostIP: string;
  nodeName: string;
  /** Container mount path -> local directory. */
  mounts: ReadonlyMap<string, string>;
  /** configMap/secret key lookups, resolved before calling (name/key -> value). */
  lookups?: ReadonlyMap<string, string>;
}

export type EnvResult = { ok: true; env: Record<string, string> } | { ok: false; reason: string };

export const lookupKey = (kind: "configmap" | "secret", name: string, key: string): string =>
  `${kind}/${name}/${key}`;

export function fieldValue(pod: Pod, fieldPath: string, ctx: EnvContext): string | undefined {
  const meta = pod.metadata;
  switch (fieldPath) {
    case "metadata.name":
      return meta.name;
    case "metadata.namespace":
      return meta.namespace ?? "default";
    case "metadata.uid":
      return meta.uid ?? "";
    case "spec.nodeName":
      return ctx.nodeName;
    case "spec.serviceAccountName":
      return pod.spec.serviceAccountName ?? "default";
    case "status.podIP":
    case "status.podIPs":
      return ctx.podIP;
    case "status.hostIP":
    case "status.hostIPs":
      return ctx.hostIP;
  }
  const label = /^metadata\.labels\['(.+)'\]$/.exec(fieldPath);
  if (label?.[1] !== undefined) return meta.labels?.[label[1]] ?? "";
  const annotation = /^metadata\.annotations\['(.+)'\]$/.exec(fieldPath);
  if (annotation?.[1] !== undefined) return meta.annotations?.[annotation[1]] ?? "";
  return undefined;
}

function expand(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name?: string) =>
    name === undefined ? "$" : (env[name] ?? whole),
  );
}

function resolveOne(v: EnvVar, env: Record<string, string>, ctx: EnvContext): string | Error {
  if (v.value !== undefined) return expand(v.value, env);
  const from = v.valueFrom;
  if (!from) return "";
  if (from.fieldRef) {
    const value = fieldValue(ctx.pod, from.fieldRef.fieldPath, ctx);
    return value ?? new Error(`unsupported fieldRef ${from.fieldRef.fieldPath}`);
  }
  if (from.resourceFieldRef) return "0";
  const ref = from.configMapKeyRef ?? from.secretKeyRef;
  if (ref) {
    const kind = from.configMapKeyRef ? "configmap" : "secret";
    const value = ctx.lookups?.get(lookupKey(kind, ref.name, ref.key));
    if (value !== undefined) return value;
    return ref.optional ? "" : new Error(`${kind} ${ref.name} key ${ref.key} not found`);
  }
  return "";
}

const BIND =
  /^((?:[a-z][a-z0-9+.-]*:\/\/)?)(0\.0\.0\.0|127\.0\.0\.1|localhost)(:\d{1,5}(?:\/.*)?)$/;

export function rewriteValue(value: string, ctx: EnvContext): string {
  for (const [mountPath, local] of ctx.mounts) {
    if (value === mountPath) return local;
    if (value.startsWith(`${mountPath}/`)) return local + value.slice(mountPath.length);
  }
  const bind = BIND.exec(value);
  if (bind) return `${bind[1]}${ctx.podIP}${bind[3]}`;
  return value;
}

export function resolveEnv(container: Container, ctx: EnvContext): EnvResult {
  const env: Record<string, string> = {};
  for (const v of container.env ?? []) {
    const value = resolveOne(v, env, ctx);
    if (value instanceof Error) return { ok: false, reason: value.message };
    env[v.name] = rewriteValue(value, ctx);
  }
  return { ok: true, env };
}
