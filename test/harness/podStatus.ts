/**
 * Pod status from the harness's view of its containers (pure): phase, IPs, conditions and
 * container statuses in the shape the kubelet reports, so controllers (ReplicaSet
 * availability, EndpointSlices) and Verso's own controller see a normal pod.
 */
import type { ContainerState, ContainerStatus, Pod, PodCondition, PodStatus } from "./podTypes.ts";

/** The pod's Ready condition is True. */
export const isReady = (pod: Pod): boolean =>
  pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

export interface ContainerView {
  name: string;
  image: string;
  init: boolean;
  sidecar: boolean;
  ready: boolean;
  started: boolean;
  restartCount: number;
  containerID?: string;
  state: ContainerState;
  lastState: ContainerState | Record<string, never>;
}

export interface PodView {
  podIP: string;
  hostIP: string;
  startTime: string;
  restartPolicy: string;
  containers: ContainerView[];
  /** Previously reported conditions, to keep lastTransitionTime stable. */
  previous?: PodCondition[];
  now: string;
}

function toStatus(c: ContainerView): ContainerStatus {
  return {
    name: c.name,
    image: c.image,
    imageID: `harness://${c.image}`,
    ...(c.containerID ? { containerID: c.containerID } : {}),
    ready: c.ready,
    started: c.started,
    restartCount: c.restartCount,
    state: c.state,
    lastState: c.lastState,
  };
}

function phaseOf(view: PodView): string {
  const regular = view.containers.filter((c) => !c.init);
  const terminated = regular.map((c) => ("terminated" in c.state ? c.state.terminated : undefined));
  if (terminated.every((t) => t !== undefined) && view.restartPolicy !== "Always") {
    return terminated.every((t) => t?.exitCode === 0) ? "Succeeded" : "Failed";
  }
  const started = regular.some((c) => "running" in c.state || "terminated" in c.state);
  return started ? "Running" : "Pending";
}

export function buildStatus(view: PodView): PodStatus {
  const regular = view.containers.filter((c) => !c.init);
  const sidecars = view.containers.filter((c) => c.sidecar);
  const initialized = view.containers
    .filter((c) => c.init && !c.sidecar)
    .every((c) => "terminated" in c.state && c.state.terminated.exitCode === 0);
  const containersReady =
    regular.every((c) => c.ready) && sidecars.every((c) => c.ready) && regular.length > 0;
  const condition = (type: string, ok: boolean): PodCondition => {
    const status = ok ? "True" : "False";
    const prev = view.previous?.find((p) => p.type === type);
    return {
      type,
      status,
      lastTransitionTime: prev?.status === status ? prev.lastTransitionTime : view.now,
    };
  };
  return {
    phase: phaseOf(view),
    podIP: view.podIP,
    podIPs: [{ ip: view.podIP }],
    hostIP: view.hostIP,
    hostIPs: [{ ip: view.hostIP }],
    startTime: view.startTime,
    conditions: [
      condition("PodScheduled", true),
      condition("Initialized", initialized),
      condition("ContainersReady", containersReady),
      condition("Ready", containersReady),
    ],
    initContainerStatuses: view.containers.filter((c) => c.init).map(toStatus),
    containerStatuses: regular.map(toStatus),
  };
}
