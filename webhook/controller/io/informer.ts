/**
 * List + watch with client-node's ListWatch (resourceVersion resume; relist on 410 Gone),
 * plus what it lacks: restart with backoff after an error, and a promise for the first list.
 */
import {
  makeInformer,
  type KubeConfig,
  type KubernetesObject,
  type KubernetesListObject,
} from "@kubernetes/client-node";
import type { Logger } from "../../../shared/log.ts";

export interface Watched<T extends KubernetesObject> {
  /** The cache, or one namespace of it (client-node keeps a per-namespace index). */
  list(namespace?: string): readonly T[];
  /** Resolves after the first complete list. */
  synced: Promise<void>;
  stop(): Promise<void>;
}

export interface WatchOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  log: Logger;
  name: string;
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  /** Called for every add, update and delete (the cache is already updated). */
  onChange: (obj: T, kind: "add" | "update" | "delete") => void;
  maxBackoffMs?: number;
}

export function watch<T extends KubernetesObject>(o: WatchOptions<T>): Watched<T> {
  let markSynced: () => void = () => {};
  const synced = new Promise<void>((r) => (markSynced = r));
  const list = async (): Promise<KubernetesListObject<T>> => {
    const result = await o.list();
    // Callbacks for the listed items run right after this resolves; defer the sync signal.
    setImmediate(markSynced);
    return result;
  };
  const informer = makeInformer<T>(o.kc, o.path, list, o.labelSelector);
  informer.on("add", (obj) => o.onChange(obj, "add"));
  informer.on("update", (obj) => o.onChange(obj, "update"));
  informer.on("delete", (obj) => o.onChange(obj, "delete"));

  let stopped = false;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  informer.on("connect", () => {
    failures = 0;
  });
  const restart = (error: unknown): void => {
    if (stopped) return;
    failures++;
    const delay = Math.min(o.maxBackoffMs ?? 30_000, 250 * 2 ** Math.min(failures, 8));
    o.log.warn("watch failed, restarting", { watch: o.name, delayMs: delay, error });
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      if (!stopped) informer.start().catch(restart);
    }, delay);
  };
  informer.on("error", restart);
  informer.start().catch(restart);

  return {
    list: (namespace) => informer.list(namespace),
    synced,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await informer.stop();
    },
  };
}
