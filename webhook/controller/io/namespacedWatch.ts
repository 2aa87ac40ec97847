/**
 * One watch per namespace, started and stopped as namespaces opt in and out: for objects the
 * controller needs only in opted-in namespaces, where a cluster-wide watch would cache every
 * such object of the cluster (every pod without Verso's label, kube-system's included).
 * Each watch is informer.ts's: list, watch, resume, restart with backoff.
 */
import type { KubeConfig, KubernetesListObject, KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "../../../shared/log.ts";
import { watch, type Watched } from "./informer.ts";

export interface NamespacedWatchOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  log: Logger;
  /** For logs: `<name>/<namespace>`. */
  name: string;
  path(namespace: string): string;
  list(namespace: string): Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  onChange(obj: T, kind: "add" | "update" | "delete"): void;
}

export interface NamespacedWatch<T extends KubernetesObject> {
  /** Starts watching the namespace (again: nothing happens). */
  add(namespace: string): void;
  /** Stops watching it and forgets its objects (no delete callbacks). */
  remove(namespace: string): void;
  list(namespace: string): readonly T[];
  stop(): Promise<void>;
}

export function namespacedWatch<T extends KubernetesObject>(
  o: NamespacedWatchOptions<T>,
): NamespacedWatch<T> {
  const watches = new Map<string, Watched<T>>();
  return {
    add(namespace) {
      if (watches.has(namespace)) return;
      watches.set(
        namespace,
        watch<T>({
          kc: o.kc,
          log: o.log,
          name: `${o.name}/${namespace}`,
          path: o.path(namespace),
          labelSelector: o.labelSelector,
          list: () => o.list(namespace),
          onChange: o.onChange,
        }),
      );
    },
    remove(namespace) {
      const w = watches.get(namespace);
      if (!w) return;
      watches.delete(namespace);
      w.stop().catch((error: unknown) =>
        o.log.debug("watch stop failed", { watch: `${o.name}/${namespace}`, error }),
      );
    },
    list: (namespace) => watches.get(namespace)?.list(namespace) ?? [],
    async stop() {
      const all = [...watches.values()];
      watches.clear();
      await Promise.all(all.map((w) => w.stop()));
    },
  };
}
