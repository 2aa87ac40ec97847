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
  /** After a namespace's first complete list (its objects' add callbacks have run). */
  onSynced?(namespace: string): void;
}

export interface NamespacedWatch<T extends KubernetesObject> {
  /** Starts watching the namespace (again: nothing happens). */
  add(namespace: string): void;
  /** Stops watching it and forgets its objects (no delete callbacks). */
  remove(namespace: string): void;
  list(namespace: string): readonly T[];
  /** The namespace is watched and its first list is complete. */
  synced(namespace: string): boolean;
  stop(): Promise<void>;
}

export function namespacedWatch<T extends KubernetesObject>(
  o: NamespacedWatchOptions<T>,
): NamespacedWatch<T> {
  const watches = new Map<string, Watched<T>>();
  const listed = new Set<Watched<T>>();
  return {
    add(namespace) {
      if (watches.has(namespace)) return;
      const w = watch<T>({
        kc: o.kc,
        log: o.log,
        name: `${o.name}/${namespace}`,
        path: o.path(namespace),
        labelSelector: o.labelSelector,
        list: () => o.list(namespace),
        onChange: o.onChange,
      });
      watches.set(namespace, w);
      void w.synced.then(() => {
        // Removed (or removed and added again) meanwhile: not this watch's news to give.
        if (watches.get(namespace) !== w) return;
        listed.add(w);
        o.onSynced?.(namespace);
      });
    },
    remove(namespace) {
      const w = watches.get(namespace);
      if (!w) return;
      watches.delete(namespace);
      listed.delete(w);
      w.stop().catch((error: unknown) =>
        o.log.debug("watch stop failed", { watch: `${o.name}/${namespace}`, error }),
      );
    },
    list: (namespace) => watches.get(namespace)?.list(namespace) ?? [],
    synced: (namespace) => {
      const w = watches.get(namespace);
      return w !== undefined && listed.has(w);
    },
    async stop() {
      const all = [...watches.values()];
      watches.clear();
      listed.clear();
      await Promise.all(all.map((w) => w.stop()));
    },
  };
}
