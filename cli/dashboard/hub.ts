/**
 * Live data for the dashboard's pages: one loop per page kind (the release list of a scope,
 * one release), running only while a browser listens (server-sent events), refreshing every
 * interval with the user's credentials, and fanning each result out to every listener. A
 * release's live numbers are the difference between consecutive refreshes, as in `--watch`.
 */
import { LABEL } from "../../shared/annotations.ts";
import { VersoError } from "../../shared/errors.ts";
import type { Kube } from "../kube.ts";
import { loadView, scrapeApp, sleep } from "../live.ts";
import { groupApps, releaseRow, type App, type AppDeployment } from "../model.ts";
import { trafficBetween, type Scrape, type Traffic } from "../traffic.ts";
import { appendSample, sampleOf, type Sample } from "./history.ts";

export type Send = (event: string, data: unknown) => void;

export interface HubOptions {
  kube: Kube;
  intervalMs: number;
  metrics: boolean;
  /** Samples kept per release for the charts. */
  historyLimit?: number;
  now?: () => number;
}

interface Loop {
  subscribers: Set<Send>;
  last?: { event: string; data: unknown };
  running: boolean;
}

export interface Hub {
  /** Releases of `namespace` (undefined: every namespace); returns the unsubscribe. */
  list(namespace: string | undefined, send: Send): () => void;
  release(namespace: string, app: string, send: Send): () => void;
  stop(): void;
}

const problem = (error: unknown) =>
  error instanceof VersoError
    ? { code: error.code, message: error.message }
    : { code: "CLI_INTERNAL", message: String(error) };

export function createHub(options: HubOptions): Hub {
  const { kube } = options;
  const now = options.now ?? Date.now;
  const limit = options.historyLimit ?? 150;
  const loops = new Map<string, Loop>();
  const abort = new AbortController();

  function join(key: string, send: Send, tick: () => Promise<{ event: string; data: unknown }>) {
    let loop = loops.get(key);
    if (!loop) loops.set(key, (loop = { subscribers: new Set(), running: false }));
    loop.subscribers.add(send);
    if (loop.last) send(loop.last.event, loop.last.data);
    if (!loop.running) {
      loop.running = true;
      const l = loop;
      void (async () => {
        while (l.subscribers.size > 0 && !abort.signal.aborted) {
          const started = now();
          try {
            l.last = await tick();
          } catch (error) {
            l.last = { event: "problem", data: problem(error) };
          }
          for (const s of l.subscribers) s(l.last.event, l.last.data);
          await sleep(Math.max(0, options.intervalMs - (now() - started)), abort.signal);
        }
        l.running = false;
        if (l.subscribers.size === 0) loops.delete(key);
      })();
    }
    return () => {
      loop.subscribers.delete(send);
    };
  }

  return {
    list(namespace, send) {
      const previous = new Map<string, Scrape>();
      return join(`list/${namespace ?? "*"}`, send, async () => {
        type Released = App & { release: AppDeployment };
        const apps = groupApps(await kube.listDeployments(namespace)).filter(
          (a): a is Released => a.release !== undefined,
        );
        const traffic = new Map<string, Traffic>();
        let note: string | undefined;
        if (options.metrics && apps.length > 0) {
          const pods = await kube.listPods(namespace, LABEL.app);
          await Promise.all(
            apps.map(async (a) => {
              const key = `${a.namespace}/${a.app}`;
              const own = pods.filter((p) => p.metadata?.namespace === a.namespace);
              const r = await scrapeApp(kube, a.namespace, a.app, own);
              note ??= r.note;
              const before = previous.get(key);
              previous.set(key, r.scrape);
              if (before && r.scrape.pods.size > 0)
                traffic.set(key, trafficBetween(before, r.scrape, a.release.version));
            }),
          );
        }
        const items = apps.map((a) => releaseRow(a, traffic.get(`${a.namespace}/${a.app}`)));
        return { event: "list", data: { at: now(), namespace: namespace ?? null, items, note } };
      });
    },
    release(namespace, app, send) {
      let previous: Scrape | undefined;
      let history: Sample[] = [];
      return join(`release/${namespace}/${app}`, send, async () => {
        const live = await loadView(kube, namespace, app, {
          metrics: options.metrics,
          windowMs: 0,
          previous: previous ?? { at: now(), pods: new Map() },
          signal: abort.signal,
        });
        const view = live.view;
        if (previous === undefined) {
          // Counters since the proxies started are not a rate: numbers from the next refresh.
          delete view.traffic;
          delete view.actualWeight;
        }
        previous = live.scrape;
        history = appendSample(history, sampleOf(view, now()), limit);
        return { event: "release", data: { at: now(), view, history } };
      });
    },
    stop() {
      abort.abort();
    },
  };
}
