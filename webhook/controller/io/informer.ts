/**
 * List + watch with client-node's ListWatch (resourceVersion resume; relist on 410 Gone),
 * plus what it lacks: restart with backoff (jittered) after an error, and a promise for the
 * first list.
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

/** An attempt that lasted this long had worked: its failure starts the backoff over. */
const STABLE_MS = 10_000;
/**
 * The longest wait between attempts. Short, because a watch that is down freezes the routing
 * tables: after an apiserver outage they follow changes again within this (plus the
 * connection deadline, connectTimeout.ts), not the 30 s client-go's reflectors allow.
 */
const MAX_BACKOFF_MS = 5_000;

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
  let startedAt = 0;
  let timer: NodeJS.Timeout | undefined;
  const begin = (): void => {
    startedAt = Date.now();
    informer.start().catch(restart);
  };
  // Not reset on the informer's "connect": client-node emits it as every attempt begins, so
  // the wait never grew (500 ms for ever, whatever the outage). An attempt that stayed up a
  // while had worked: the backoff starts over after it.
  const restart = (error: unknown): void => {
    if (stopped) return;
    if (Date.now() - startedAt >= STABLE_MS) failures = 0;
    failures++;
    const ceiling = Math.min(o.maxBackoffMs ?? MAX_BACKOFF_MS, 250 * 2 ** Math.min(failures, 8));
    // Half fixed, half random: the watches of a replica (one per opted-in namespace) fail
    // together when the apiserver goes, and must not all come back in the same instant.
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    o.log.warn("watch failed, restarting", { watch: o.name, delayMs: delay, error });
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      if (!stopped) begin();
    }, delay);
  };
  informer.on("error", restart);
  begin();

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
