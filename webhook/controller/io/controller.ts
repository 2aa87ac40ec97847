/**
 * The controller's wiring: three watches (opted-in Namespaces, Deployments, injected Pods)
 * feed one in-memory view; any change marks its app dirty, and dirty apps get their routing
 * table rebuilt on the next turn of the event loop (so a burst of pod events is one table).
 * Every replica does this and serves streams; the leader also runs the release loop, which
 * leader election starts and stops. A fourth watch per opted-in namespace sees the pods the
 * webhook never labelled, so pods that started without the proxy are reported (notInjected.ts).
 * A fifth, per opted-in namespace too, holds its ConfigMaps: a release's gates may be declared
 * in one (`verso.dev/gates-configmap`), and a change to it reconciles the releases naming it.
 */
import { randomBytes } from "node:crypto";
import {
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1ConfigMap,
  type V1Deployment,
  type V1Namespace,
  type V1Pod,
} from "@kubernetes/client-node";
import { ANNOTATION, LABEL } from "../../../shared/annotations.ts";
import type { Logger } from "../../../shared/log.ts";
import type { ReleasePolicy } from "../../../shared/policy.ts";
import { deriveHopKey, HOP_SECRET_NAME, loadHopSecret } from "./hopKey.ts";
import type { KubeApi } from "./kube.ts";
import { startLeaderElection, type Leader } from "./leader.ts";
import type { MetricsSource } from "./metrics/source.ts";
import type { Clock } from "./clock.ts";
import { systemClock } from "./clock.ts";
import { createCutoffWatch } from "./cutoffWatch.ts";
import { createGateRunner } from "./gateCalls.ts";
import { createInbox } from "./inbox.ts";
import { namespacedWatch } from "./namespacedWatch.ts";
import { createNotInjectedReporter, type NotInjectedCount } from "./notInjected.ts";
import type { Notifier } from "./notify.ts";
import { createReleaseLoop, type ReleaseLoop } from "./reconcile.ts";
import type { ReleaseMetrics } from "./releaseMetrics.ts";
import {
  buildTable,
  endpointsOf,
  grpcEndpointsOf,
  readyPodsOf,
  releaseFor,
  resolvePolicy,
  selectRelease,
  type GatesSource,
} from "../decide/routes.ts";
import { checkInjection, type InjectionContext } from "../decide/notInjected.ts";
import { createHub, type RouteHub } from "./stream.ts";
import { watch, type Watched } from "./informer.ts";
import {
  deploymentApp,
  toDeploymentView,
  toPodView,
  type AppState,
  type PodView,
} from "../decide/views.ts";

export interface ControllerDeps {
  kc: KubeConfig;
  kube: KubeApi;
  log: Logger;
  /** The controller's own namespace: Lease and hop-key Secret live here. */
  namespace: string;
  /** This replica's name in the Lease (pod name, or host+pid). */
  identity: string;
  metrics: MetricsSource;
  /** Scale superseded Deployments to 0 this long after a promotion; 0 = never touch them. */
  scaleDownDelayMs: number;
  hub?: RouteHub;
  /** Every app is reconciled this often while leading, as a net for missed events (default 30 s). */
  resyncMs?: number;
  /** Delay before a failed reconcile is retried (default 1 s); doubles per failure, up to 5 min. */
  retryMs?: number;
  leaseDurationMs?: number;
  leaseRenewMs?: number;
  clock?: Clock;
  /** Notifications (`--notify-url`, `--notify-slack-url`); none when absent. */
  notifier?: Notifier;
  releaseMetrics?: ReleaseMetrics;
  /** How often live releases' proxies are polled for a cut-off (default 500 ms). */
  cutoffPollMs?: number;
  /** How often the leader looks at every pod for one that runs without the proxy (default 30 s). */
  notInjectedSweepMs?: number;
}

export interface Controller {
  readonly hub: RouteHub;
  /** All three watches listed once and the first tables are built. */
  readonly synced: Promise<void>;
  isLeader(): boolean;
  /** Pods running outside the release without the proxy, per tracked app (0s included). */
  notInjected(): NotInjectedCount[];
  /**
   * Stop leading for good: the release loop stops and the Lease is released, so a peer takes
   * over at once. The watches go on, so the tables this replica still streams stay current.
   */
  resign(): Promise<void>;
  /** resign(), then stop the watches. */
  stop(): Promise<void>;
}

const key = (ns: string, app: string): string => `${ns}/${app}`;
/** key() read back: split at the first "/", since a namespace name never holds one. */
const appOfKey = (k: string): { namespace: string; app: string } => {
  const i = k.indexOf("/");
  return { namespace: k.slice(0, i), app: k.slice(i + 1) };
};

export async function startController(deps: ControllerDeps): Promise<Controller> {
  const { kc, log } = deps;
  const clock = deps.clock ?? systemClock;
  const now = clock.now;
  const hub = deps.hub ?? createHub();
  try {
    await deps.kube.ensureNamespace(deps.namespace);
  } catch (error) {
    // Without rights to read or make namespaces, the Lease and Secret calls below say more.
    log.debug("namespace check failed", { namespace: deps.namespace, error });
  }
  let secret: Buffer;
  try {
    secret = await loadHopSecret(deps.kube, deps.namespace);
  } catch (error) {
    // Serving routes matters more than agreeing on a key: each replica then signs with its
    // own key, and a hop token forwarded across replicas' tables fails (served locally).
    secret = randomBytes(32);
    log.error("cannot read or create the hop-key Secret: using a key of this replica only", {
      namespace: deps.namespace,
      secret: HOP_SECRET_NAME,
      error,
    });
  }
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);

  const enabled = new Set<string>();
  const remembered = new Map<string, ReleasePolicy>();
  const appOfDeployment = new Map<string, string>();
  const dirty = new Set<string>();
  let flushScheduled = false;
  let loop: ReleaseLoop | undefined = undefined;

  // Read from the informers' per-namespace index: no scan of the whole cluster per app.
  const podsIn = (ns: string): PodView[] =>
    pods
      .list(ns)
      .map(toPodView)
      .filter((p): p is PodView => p !== undefined);

  function stateOf(ns: string, app: string): AppState {
    return {
      // Only this app's Deployments get a full view (each hashes its pod template).
      deployments: deployments
        .list(ns)
        .filter((d) => deploymentApp(d) === app)
        .map(toDeploymentView),
      pods: podsIn(ns).filter((p) => p.app === app),
    };
  }

  function rebuild(ns: string, app: string): void {
    if (!enabled.has(ns)) {
      hub.delete(ns, app);
      return;
    }
    const state = stateOf(ns, app);
    if (state.deployments.length === 0 && state.pods.length === 0) {
      hub.delete(ns, app);
      return;
    }
    const { release } = selectRelease(state.deployments);
    let rel;
    if (release) {
      const resolved = resolvePolicy(release, remembered.get(release.uid), gatesIn(ns));
      if (!resolved.pending && resolved.errors.length === 0 && resolved.policy)
        remembered.set(release.uid, resolved.policy);
      rel = releaseFor(release, resolved, readyPodsOf(state.pods, release.version));
    }
    const table = buildTable(
      {
        app,
        release: rel,
        endpoints: endpointsOf(state.pods),
        grpcEndpoints: grpcEndpointsOf(state.pods),
        hopKey: deriveHopKey(secret, ns, app),
      },
      hub.get(ns, app),
      now(),
    );
    hub.set(ns, table);
    loop?.poke(ns, app);
  }

  function markDirty(ns: string | undefined, app: string | undefined): void {
    if (!ns || !app) return;
    dirty.add(key(ns, app));
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(() => {
      flushScheduled = false;
      const keys = [...dirty];
      dirty.clear();
      for (const k of keys) {
        const { namespace, app } = appOfKey(k);
        try {
          rebuild(namespace, app);
        } catch (error) {
          log.error("table rebuild failed", { app: k, error });
        }
      }
    });
  }

  /** The releases of `ns` that name the ConfigMap `name` (any ConfigMap: undefined) are dirty. */
  function markConfigMapUsers(ns: string | undefined, name: string | undefined): void {
    if (!ns) return;
    for (const d of deployments.list(ns)) {
      const named = d.metadata?.annotations?.[ANNOTATION.gatesConfigMap]?.trim();
      if (named !== undefined && (name === undefined || named === name))
        markDirty(ns, deploymentApp(d));
    }
  }

  /** A namespace's ConfigMaps by name (`cm.data`, {} when it has none), once they are listed. */
  const gatesIn = (ns: string): GatesSource => {
    if (!configMaps.synced(ns)) return "pending";
    return (name) => {
      const cm = configMaps.list(ns).find((c) => c.metadata?.name === name);
      return cm ? (cm.data ?? {}) : undefined;
    };
  };

  function markNamespace(ns: string): void {
    for (const d of deployments.list(ns)) markDirty(ns, deploymentApp(d));
    for (const p of podsIn(ns)) markDirty(ns, p.app);
    for (const { namespace, app } of hub.keys().map(appOfKey)) {
      if (namespace === ns) markDirty(ns, app);
    }
  }

  const injection: InjectionContext = {
    controllerNamespace: deps.namespace,
    optedIn: (ns) => enabled.has(ns),
    deploymentsOf: (ns, app) =>
      deployments
        .list(ns)
        .filter((d) => deploymentApp(d) === app)
        .map((d) => ({ name: d.metadata?.name ?? "", uid: d.metadata?.uid ?? "" })),
  };
  const notInjected = createNotInjectedReporter({
    kube: deps.kube,
    log,
    clock,
    isLeader: () => leader.isLeader(),
    // A pod the webhook skipped has no verso.dev/app label; one a user labelled so by hand
    // is in the injected pods' watch, without the proxy all the same.
    *pods() {
      for (const ns of enabled) {
        yield* unlabelled.list(ns);
        yield* pods.list(ns);
      }
    },
    check: (pod) => checkInjection(pod, injection),
    apps: () => hub.keys().map(appOfKey),
    sweepMs: deps.notInjectedSweepMs ?? 30_000,
  });
  const seenPod = (p: V1Pod, kind: "add" | "update" | "delete"): void => {
    if (kind !== "delete") notInjected.seen(p);
  };

  const namespaces: Watched<V1Namespace> = watch<V1Namespace>({
    kc,
    log,
    name: "namespaces",
    path: "/api/v1/namespaces",
    labelSelector: `${LABEL.injection}=enabled`,
    list: () => core.listNamespace({ labelSelector: `${LABEL.injection}=enabled` }),
    onChange: (ns, kind) => {
      const name = ns.metadata?.name;
      if (!name) return;
      if (kind === "delete") {
        enabled.delete(name);
        unlabelled.remove(name);
        configMaps.remove(name);
      } else {
        enabled.add(name);
        unlabelled.add(name);
        configMaps.add(name);
      }
      markNamespace(name);
    },
  });
  const deployments: Watched<V1Deployment> = watch<V1Deployment>({
    kc,
    log,
    name: "deployments",
    path: "/apis/apps/v1/deployments",
    list: () => apps.listDeploymentForAllNamespaces(),
    onChange: (d, kind) => {
      const uid = d.metadata?.uid ?? "";
      const ns = d.metadata?.namespace;
      const before = appOfDeployment.get(uid);
      const app = deploymentApp(d);
      if (kind === "delete") {
        appOfDeployment.delete(uid);
        remembered.delete(uid);
      } else if (app) appOfDeployment.set(uid, app);
      if (before !== app) markDirty(ns, before);
      markDirty(ns, app);
    },
  });
  const pods: Watched<V1Pod> = watch<V1Pod>({
    kc,
    log,
    name: "pods",
    path: "/api/v1/pods",
    labelSelector: LABEL.app,
    list: () => core.listPodForAllNamespaces({ labelSelector: LABEL.app }),
    onChange: (p, kind) => {
      markDirty(p.metadata?.namespace, p.metadata?.labels?.[LABEL.app]);
      seenPod(p, kind);
    },
  });
  const unlabelled = namespacedWatch<V1Pod>({
    kc,
    log,
    name: "unlabelled-pods",
    path: (ns) => `/api/v1/namespaces/${ns}/pods`,
    labelSelector: `!${LABEL.app}`,
    list: (ns) => core.listNamespacedPod({ namespace: ns, labelSelector: `!${LABEL.app}` }),
    onChange: seenPod,
  });
  // Every ConfigMap of an opted-in namespace: which ones releases name is known only from the
  // Deployments, and a watch by name would need one per ConfigMap.
  const configMaps = namespacedWatch<V1ConfigMap>({
    kc,
    log,
    name: "configmaps",
    path: (ns) => `/api/v1/namespaces/${ns}/configmaps`,
    list: (ns) => core.listNamespacedConfigMap({ namespace: ns }),
    onChange: (cm) => markConfigMapUsers(cm.metadata?.namespace, cm.metadata?.name),
    onSynced: (ns) => markConfigMapUsers(ns, undefined),
  });

  const leader: Leader = startLeaderElection(deps.kube, log, {
    namespace: deps.namespace,
    name: "verso-controller",
    identity: deps.identity,
    durationMs: deps.leaseDurationMs,
    renewMs: deps.leaseRenewMs,
    onChange: (leading) => {
      // Before the first sync neither runs: both start below, once the caches are full.
      loop?.lead(leading);
      if (loop) notInjected.lead(leading);
    },
  });

  const synced = Promise.all([namespaces.synced, deployments.synced, pods.synced]).then(
    () => new Promise<void>((r) => setImmediate(r)),
  );
  await synced;
  const inbox = createInbox();
  const cutoffs = createCutoffWatch({
    log,
    clock,
    periodMs: deps.cutoffPollMs ?? 500,
    onCutOff(k, version, proxies, at) {
      const { namespace, app } = appOfKey(k);
      const release = selectRelease(stateOf(namespace, app).deployments).release;
      if (!release || release.version !== version) return;
      inbox.push(release.uid, { event: { type: "cutOff", version, proxies }, at });
      loop?.poke(namespace, app);
    },
  });
  loop = createReleaseLoop({
    kube: deps.kube,
    log,
    metrics: deps.metrics,
    isLeader: () => leader.isLeader(),
    // Not the hub: its table goes only on the next flush, after the namespace event.
    optedIn: (ns) => enabled.has(ns),
    apps: () => hub.keys().map(appOfKey),
    state: stateOf,
    remembered: (uid) => remembered.get(uid),
    configMaps: gatesIn,
    scaleDownDelayMs: deps.scaleDownDelayMs,
    resyncMs: deps.resyncMs ?? 30_000,
    retryMs: deps.retryMs ?? 1_000,
    clock,
    inbox,
    gates: createGateRunner(log),
    notifier: deps.notifier,
    releaseMetrics: deps.releaseMetrics,
    cutoffs,
  });
  // Leadership won while the watches were still listing: start the loop now.
  if (leader.isLeader()) {
    loop.lead(true);
    notInjected.lead(true);
  }

  const resign = async (): Promise<void> => {
    loop?.stop();
    notInjected.stop();
    await leader.stop();
  };
  return {
    hub,
    synced,
    isLeader: () => leader.isLeader(),
    notInjected: () => notInjected.counts(),
    resign,
    async stop() {
      await resign();
      await Promise.all([
        namespaces.stop(),
        deployments.stop(),
        pods.stop(),
        unlabelled.stop(),
        configMaps.stop(),
      ]);
    },
  };
}
