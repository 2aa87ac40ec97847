/**
 * Watches the proxies of live releases for a cut-off (docs/controller.md, "Fast cut-off"):
 * every `periodMs` it reads each ready pod's admin `/metrics` and, the first time one reports
 * `verso_release_cutoff{version=<release>} 1`, hands a `cutOff` event to the loop, which rolls
 * back at once instead of at the end of the interval. Only releases that take traffic are
 * watched, so an idle cluster costs nothing.
 */
import { request } from "undici";
import type { Logger } from "../../../shared/log.ts";
import { reportsCutOff } from "../decide/cutoffs.ts";
import type { Clock, TimerHandle } from "./clock.ts";

export interface WatchTarget {
  app: string;
  version: string;
  /** Admin addresses (`podIP:15020`) of the app's ready pods. */
  admins: string[];
}

export interface CutoffWatch {
  /** Watch (or update) the release of `key` (namespace/app). */
  watch(key: string, target: WatchTarget): void;
  unwatch(key: string): void;
  stop(): void;
}

export function createCutoffWatch(o: {
  log: Logger;
  clock: Clock;
  periodMs: number;
  /** Called once per watched release version: `proxies` reported the cut. */
  onCutOff(key: string, version: string, proxies: number, at: number): void;
}): CutoffWatch {
  const watched = new Map<string, WatchTarget & { fired: boolean }>();
  let timer: TimerHandle | undefined;
  let busy = false;

  async function scrape(addr: string, t: WatchTarget): Promise<boolean> {
    try {
      const res = await request(`http://${addr}/metrics`, {
        headersTimeout: o.periodMs * 2,
        bodyTimeout: o.periodMs * 2,
      });
      const text = await res.body.text();
      return res.statusCode === 200 && reportsCutOff(text, t.app, t.version);
    } catch {
      return false;
    }
  }

  async function tick(): Promise<void> {
    if (busy) return;
    busy = true;
    try {
      await Promise.all(
        [...watched].map(async ([key, t]) => {
          if (t.fired) return;
          const cut = (await Promise.all(t.admins.map((a) => scrape(a, t)))).filter(Boolean);
          if (cut.length === 0 || t.fired || watched.get(key) !== t) return;
          t.fired = true;
          o.log.warn("proxies cut the release off", {
            app: key,
            version: t.version,
            proxies: cut.length,
          });
          o.onCutOff(key, t.version, cut.length, o.clock.now());
        }),
      );
    } finally {
      busy = false;
    }
  }

  const ensureTimer = (): void => {
    if (watched.size > 0 && timer === undefined)
      timer = o.clock.setInterval(() => void tick(), o.periodMs);
    if (watched.size === 0 && timer !== undefined) {
      o.clock.clearInterval(timer);
      timer = undefined;
    }
  };

  return {
    watch(key, target) {
      const old = watched.get(key);
      const fired = old?.version === target.version ? old.fired : false;
      watched.set(key, { ...target, fired });
      ensureTimer();
    },
    unwatch(key) {
      watched.delete(key);
      ensureTimer();
    },
    stop() {
      watched.clear();
      ensureTimer();
    },
  };
}
