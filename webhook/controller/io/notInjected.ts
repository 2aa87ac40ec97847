/**
 * Reports pods that run outside the release because they started without the proxy
 * (decide/notInjected.ts says which): the counts per app for `verso_pods_not_injected`, and,
 * from the leader only, one Warning Event `NotInjected` per pod on its Deployment with the
 * remedy. Each Event has a name derived from the pod's uid, so a pod is reported once
 * whichever replica leads and however often it looks (a second create is a 409). The
 * leader looks at every pod when it takes over and every `sweepMs` after, besides each pod
 * change, so a pod seen before its Deployment still gets its Event.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../../../shared/log.ts";
import {
  notInjectedMessage,
  type DeploymentRef,
  type InjectionCheck,
} from "../decide/notInjected.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import type { KubeApi } from "./kube.ts";

export const NOT_INJECTED_REASON = "NotInjected";

export interface NotInjectedCount {
  namespace: string;
  app: string;
  pods: number;
}

export interface NotInjectedDeps {
  kube: KubeApi;
  log: Logger;
  clock: Clock;
  isLeader(): boolean;
  /** Every pod that could be outside the release: those of the opted-in namespaces. */
  pods(): Iterable<V1Pod>;
  check(pod: V1Pod): InjectionCheck;
  /** The apps the controller tracks, so each has a series (0 when all is well). */
  apps(): { namespace: string; app: string }[];
  sweepMs: number;
}

export interface NotInjectedReporter {
  /** A pod was added or changed: its Event, if it is outside the release and not yet reported. */
  seen(pod: V1Pod): void;
  counts(): NotInjectedCount[];
  /** Leadership gained (look at every pod now and every sweepMs) or lost. */
  lead(leading: boolean): void;
  stop(): void;
}

/** A name per pod, so creating it twice is a conflict instead of a second Event. */
const eventName = (deployment: string, podUid: string): string =>
  `${deployment}.verso-not-injected.${podUid}`.slice(0, 253);

export function createNotInjectedReporter(deps: NotInjectedDeps): NotInjectedReporter {
  const { kube, log, clock } = deps;
  /** Pod uids this replica has reported (or is reporting): no second call for them. */
  const reported = new Set<string>();
  let sweep: TimerHandle | undefined;
  let stopped = false;

  function report(pod: V1Pod, deployment: DeploymentRef): void {
    const namespace = pod.metadata?.namespace ?? "";
    const name = pod.metadata?.name ?? "";
    const uid = pod.metadata?.uid ?? "";
    if (uid === "" || reported.has(uid)) return;
    reported.add(uid);
    const ref = { kind: "Deployment" as const, namespace, ...deployment };
    const message = notInjectedMessage(namespace, name, deployment.name);
    kube
      .eventOnce(ref, eventName(deployment.name, uid), "Warning", NOT_INJECTED_REASON, message)
      .then(
        (created) => {
          if (created) log.warn("pod runs without the proxy", { pod: `${namespace}/${name}` });
        },
        (error: unknown) => {
          // Forgotten, so the next sweep tries again.
          reported.delete(uid);
          log.warn("NotInjected event failed", { pod: `${namespace}/${name}`, error });
        },
      );
  }

  function seen(pod: V1Pod): void {
    if (stopped || sweep === undefined || !deps.isLeader()) return;
    const c = deps.check(pod);
    if (c.missing && c.deployment) report(pod, c.deployment);
  }

  function sweepAll(): void {
    const present = new Set<string>();
    for (const pod of deps.pods()) {
      present.add(pod.metadata?.uid ?? "");
      seen(pod);
    }
    // Pods gone since: their uids never come back.
    for (const uid of reported) if (!present.has(uid)) reported.delete(uid);
  }

  return {
    seen,
    counts() {
      const counts = new Map<string, NotInjectedCount>();
      for (const { namespace, app } of deps.apps()) {
        counts.set(`${namespace}/${app}`, { namespace, app, pods: 0 });
      }
      for (const pod of deps.pods()) {
        const c = deps.check(pod);
        if (!c.missing) continue;
        const namespace = pod.metadata?.namespace ?? "";
        const k = `${namespace}/${c.app}`;
        const entry = counts.get(k) ?? { namespace, app: c.app, pods: 0 };
        entry.pods++;
        counts.set(k, entry);
      }
      return [...counts.values()];
    },
    lead(leading) {
      clock.clearInterval(sweep);
      sweep = undefined;
      if (!leading || stopped) return;
      sweep = clock.setInterval(sweepAll, deps.sweepMs);
      sweepAll();
    },
    stop() {
      stopped = true;
      clock.clearInterval(sweep);
      sweep = undefined;
    },
  };
}
