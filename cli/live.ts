/**
 * Reading what the CLI shows: the app's Deployments, pods and Events, and the proxies'
 * counters through the API server's pod proxy subresource (`pods/proxy`, the user's own RBAC;
 * no endpoint of Verso's is involved). I/O only; the decisions are in model.ts / traffic.ts.
 */
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import { LABEL } from "../shared/annotations.ts";
import { VersoError } from "../shared/errors.ts";
import { PROXY_PORT } from "../shared/pod-env.ts";
import { toPodView } from "../webhook/controller/decide/views.ts";
import type { Kube } from "./kube.ts";
import { findRelease, groupApps, releaseView, type App, type AppDeployment } from "./model.ts";
import type { ReleaseView } from "./model.ts";
import { toScrape, trafficBetween, type Scrape } from "./traffic.ts";

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

export interface ScrapeResult {
  scrape: Scrape;
  /** Why some or all pods gave no numbers (forbidden, unreachable). */
  note?: string;
}

/** One scrape of every ready pod of the app that runs Verso's proxy. */
export async function scrapeApp(
  kube: Kube,
  namespace: string,
  app: string,
  pods: readonly V1Pod[],
): Promise<ScrapeResult> {
  const targets = pods
    .map(toPodView)
    .filter((p) => p !== undefined && p.app === app && p.admin !== undefined)
    .map((p) => p!.name);
  const texts = new Map<string, string>();
  const failures: VersoError[] = [];
  await Promise.all(
    targets.map(async (name) => {
      try {
        texts.set(name, await kube.podMetrics(namespace, name, PROXY_PORT.admin));
      } catch (error) {
        failures.push(
          error instanceof VersoError ? error : new VersoError("CLI_API", String(error)),
        );
      }
    }),
  );
  const scrape = toScrape(Date.now(), texts, app);
  if (failures.length === 0) return { scrape };
  const first = failures[0]!;
  const note =
    first.code === "CLI_FORBIDDEN"
      ? `live numbers need "get" on pods/proxy: ${first.message}`
      : `${failures.length} of ${targets.length} pods gave no numbers: ${first.message}`;
  return { scrape, note };
}

export interface Snapshot {
  app: App & { release: AppDeployment };
  pods: V1Pod[];
  events: CoreV1Event[];
}

/** Deployments, pods and Events of one app; CLI_UNKNOWN_APP / CLI_NO_RELEASE when absent. */
async function loadApp(kube: Kube, namespace: string, name: string): Promise<Snapshot> {
  const [deployments, pods, events] = await Promise.all([
    kube.listDeployments(namespace),
    kube.listPods(namespace, `${LABEL.app}=${name}`),
    kube.listEvents(namespace).catch((error: unknown) => {
      // Events are context, not the point: a user who may not list them still gets the rest.
      if (error instanceof VersoError && error.code === "CLI_FORBIDDEN") return [];
      throw error;
    }),
  ]);
  const app = findRelease(groupApps(deployments), namespace, name);
  return { app, pods, events };
}

export interface LiveView {
  view: ReleaseView;
  /** The scrape this view measured up to; the next refresh measures from it. */
  scrape: Scrape | undefined;
}

/**
 * The `get` view. Live numbers are the difference between `previous` and a scrape taken now;
 * without `previous` two scrapes `windowMs` apart are taken (so `get` takes that long).
 */
export async function loadView(
  kube: Kube,
  namespace: string,
  name: string,
  options: { metrics: boolean; windowMs: number; previous?: Scrape; signal?: AbortSignal },
): Promise<LiveView> {
  let snap = await loadApp(kube, namespace, name);
  if (!options.metrics) return { view: releaseView({ ...snap }), scrape: undefined };
  let before = options.previous;
  let note: string | undefined;
  if (!before) {
    const first = await scrapeApp(kube, namespace, name, snap.pods);
    before = first.scrape;
    note = first.note;
    await sleep(options.windowMs, options.signal);
    snap = await loadApp(kube, namespace, name);
  }
  const after = await scrapeApp(kube, namespace, name, snap.pods);
  note = after.note ?? note;
  const traffic =
    after.scrape.pods.size > 0 || before.pods.size > 0
      ? trafficBetween(before, after.scrape, snap.app.release.version)
      : undefined;
  const trafficNote =
    note ?? (traffic ? undefined : "no ready pod with Verso's proxy to read numbers from");
  return {
    view: releaseView({ ...snap, traffic, trafficNote }),
    scrape: after.scrape,
  };
}
