/**
 * What the CLI and the dashboard show, computed from what the API server returns. Pure: the
 * same functions the controller decides with (release selection, policy resolution, the
 * weight proxies are told), so `kubectl verso` never guesses differently from the controller.
 */
import type { CoreV1Event, V1Deployment, V1Pod } from "@kubernetes/client-node";
import { ANNOTATION } from "../shared/annotations.ts";
import { VersoError } from "../shared/errors.ts";
import type { ReleasePolicy } from "../shared/policy.ts";
import { resolvePolicy, selectRelease, weightFor } from "../webhook/controller/decide/routes.ts";
import type { Phase, ReleaseStatus } from "../webhook/controller/decide/status.ts";
import {
  toDeploymentView,
  toPodView,
  type DeploymentView,
} from "../webhook/controller/decide/views.ts";
import type { Traffic } from "./traffic.ts";

/** A Deployment as the CLI needs it: the controller's view plus replica counts. */
export interface AppDeployment extends DeploymentView {
  readyReplicas: number;
}

export interface App {
  namespace: string;
  app: string;
  deployments: AppDeployment[];
  release: AppDeployment | undefined;
}

const toAppDeployment = (d: V1Deployment): AppDeployment => ({
  ...toDeploymentView(d),
  readyReplicas: d.status?.readyReplicas ?? 0,
});

/** Deployments -> apps (by namespace and `verso.dev/app` identity), sorted. */
export function groupApps(deployments: readonly V1Deployment[]): App[] {
  const byKey = new Map<string, Omit<App, "release">>();
  for (const raw of deployments) {
    const d = toAppDeployment(raw);
    if (!d.app) continue;
    const key = `${d.namespace}/${d.app}`;
    let app = byKey.get(key);
    if (!app) byKey.set(key, (app = { namespace: d.namespace, app: d.app, deployments: [] }));
    app.deployments.push(d);
  }
  const apps: App[] = [...byKey.values()].map((a) => ({
    ...a,
    deployments: a.deployments.sort(
      (x, y) => x.created - y.created || x.name.localeCompare(y.name),
    ),
    release: selectRelease(a.deployments).release as AppDeployment | undefined,
  }));
  return apps.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.app.localeCompare(b.app));
}

/** The app named APP in the namespace, with a release; clear errors otherwise. */
export function findRelease(
  apps: readonly App[],
  namespace: string,
  name: string,
): App & { release: AppDeployment } {
  const app = apps.find((a) => a.namespace === namespace && a.app === name);
  if (!app) {
    const known = apps.filter((a) => a.namespace === namespace).map((a) => a.app);
    throw new VersoError(
      "CLI_UNKNOWN_APP",
      `no app ${JSON.stringify(name)} in namespace ${JSON.stringify(namespace)}: no Deployment's pod template has verso.dev/app (or app.kubernetes.io/name, app) = ${name}` +
        (known.length > 0 ? ` (apps here: ${known.join(", ")})` : " (no apps here)"),
    );
  }
  if (!app.release) {
    throw new VersoError(
      "CLI_NO_RELEASE",
      `app ${JSON.stringify(name)} has no release: none of its Deployments (${app.deployments
        .map((d) => d.name)
        .join(", ")}) carries verso.dev/strategy`,
    );
  }
  return app as App & { release: AppDeployment };
}

export interface ReleaseState {
  policy: ReleasePolicy | undefined;
  /** Messages of problems with the current annotations. */
  policyErrors: string[];
  /** The status of this release version (a status left by another version is ignored). */
  status: ReleaseStatus | undefined;
  /** Percent of traffic the proxies are told to send to the release. */
  desiredWeight: number;
}

export function releaseState(release: DeploymentView): ReleaseState {
  const resolved = resolvePolicy(release);
  const status = resolved.status?.version === release.version ? resolved.status : undefined;
  return {
    policy: resolved.policy,
    policyErrors: resolved.errors.map((e) => e.message),
    status,
    desiredWeight: resolved.policy ? weightFor(resolved.policy, status, release.version) : 0,
  };
}

export interface ReleaseRow {
  namespace: string;
  app: string;
  deployment: string;
  version: string;
  strategy: string;
  phase: Phase | "Unknown";
  /** `2/3` for an automated canary, else absent. */
  step?: string;
  desiredWeight: number;
  /** Measured share of requests the release served, percent (live numbers only). */
  actualWeight?: number;
  /** When the release Deployment was created (ISO). */
  created: string;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function stepText(policy: ReleasePolicy | undefined, status: ReleaseStatus | undefined) {
  if (!policy?.steps) return undefined;
  if (status?.step !== undefined) return `${status.step}/${policy.steps.length}`;
  // Promoted at once (--full) or failed before a step: no step to show.
  return !status || status.phase === "Pending" ? `0/${policy.steps.length}` : undefined;
}

export function releaseRow(app: App & { release: AppDeployment }, traffic?: Traffic): ReleaseRow {
  const r = app.release;
  const state = releaseState(r);
  const row: ReleaseRow = {
    namespace: app.namespace,
    app: app.app,
    deployment: r.name,
    version: r.version,
    strategy: state.policy?.strategy ?? r.annotations[ANNOTATION.strategy] ?? "",
    phase: state.status?.phase ?? "Unknown",
    desiredWeight: state.desiredWeight,
    created: iso(r.created),
  };
  const step = stepText(state.policy, state.status);
  if (step !== undefined) row.step = step;
  if (traffic?.releaseShare !== undefined) row.actualWeight = traffic.releaseShare;
  return row;
}

export interface PodRow {
  name: string;
  ready: boolean;
}

export interface VersionRow {
  version: string;
  role: "release" | "stable";
  deployments: string[];
  desiredReplicas: number;
  readyReplicas: number;
  pods: PodRow[];
}

export interface GateRow {
  gate: "error-rate" | "p99" | "p99-ratio" | "min-requests";
  /** What the gate allows: a maximum, or for min-requests a minimum. */
  threshold: number;
  unit: "%" | "ms" | "x" | "requests";
  /** The value of the last analysis; absent when it had none (no traffic, no baseline). */
  value?: number;
  /** Requests of the release the value was measured on (ratio: and of stable). */
  sample?: number;
  baselineSample?: number;
  result: "pass" | "fail" | "no data";
}

export interface EventRow {
  at: string;
  type: string;
  reason: string;
  message: string;
  object: string;
  count: number;
}

export interface ReleaseView extends ReleaseRow {
  reason: string;
  message: string;
  steps?: number[];
  intervalMs?: number;
  paused: boolean;
  aborted: boolean;
  promoteAnnotation: boolean;
  /** Rules in force and what each sends to the release now (from the status). */
  match?: { rule: string; weight: number }[];
  policyErrors: string[];
  startedAt?: string;
  stepStartedAt?: string;
  promotedAt?: string;
  versions: VersionRow[];
  gates: GateRow[];
  analysis?: { at: string; action: string; reason: string; message: string };
  traffic?: Traffic;
  /** Why live numbers are missing, when they are. */
  trafficNote?: string;
  events: EventRow[];
}

/** Gates of the policy with the numbers of the last analysis (what the controller judged). */
export function gateRows(policy: ReleasePolicy | undefined, status?: ReleaseStatus): GateRow[] {
  if (!policy) return [];
  const m = status?.analysis?.measured;
  const rows: GateRow[] = [];
  const judge = (value: number | undefined, ok: (v: number) => boolean): GateRow["result"] =>
    value === undefined ? "no data" : ok(value) ? "pass" : "fail";
  const g = policy.gates;
  if (g.maxErrorRate !== undefined) {
    const value = m?.releaseErrorRate;
    rows.push({
      gate: "error-rate",
      threshold: g.maxErrorRate,
      unit: "%",
      ...(value !== undefined && { value }),
      ...(m && { sample: m.releaseRequests }),
      result: judge(value, (v) => v <= g.maxErrorRate!),
    });
  }
  if (g.maxP99Ms !== undefined) {
    const value = m?.releaseP99Ms;
    rows.push({
      gate: "p99",
      threshold: g.maxP99Ms,
      unit: "ms",
      ...(value !== undefined && { value }),
      ...(m && { sample: m.releaseRequests }),
      result: judge(value, (v) => v <= g.maxP99Ms!),
    });
  }
  if (g.maxP99Ratio !== undefined) {
    const comparable =
      m?.releaseP99Ms !== undefined &&
      m.stableP99Ms !== undefined &&
      m.stableP99Ms > 0 &&
      m.stableRequests > 0;
    const value = comparable
      ? Math.round((m.releaseP99Ms! / m.stableP99Ms!) * 1000) / 1000
      : undefined;
    rows.push({
      gate: "p99-ratio",
      threshold: g.maxP99Ratio,
      unit: "x",
      ...(value !== undefined && { value }),
      ...(m && { sample: m.releaseRequests, baselineSample: m.stableRequests }),
      result: judge(value, (v) => v <= g.maxP99Ratio!),
    });
  }
  if (policy.steps) {
    const need = Math.max(1, g.minRequests);
    rows.push({
      gate: "min-requests",
      threshold: need,
      unit: "requests",
      ...(m && { value: m.releaseRequests, sample: m.releaseRequests }),
      result: judge(m?.releaseRequests, (v) => v >= need),
    });
  }
  return rows;
}

const eventTime = (e: CoreV1Event): number => {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
  const ms = t instanceof Date ? t.getTime() : typeof t === "string" ? Date.parse(t) : NaN;
  return Number.isFinite(ms) ? ms : 0;
};

/** The app's Deployments' Events, oldest first, the last `limit`. */
export function eventRows(
  events: readonly CoreV1Event[],
  deployments: readonly string[],
  limit = 12,
): EventRow[] {
  const names = new Set(deployments);
  return events
    .filter((e) => e.involvedObject.kind === "Deployment" && names.has(e.involvedObject.name ?? ""))
    .map((e) => ({ e, t: eventTime(e) }))
    .sort((a, b) => a.t - b.t)
    .slice(-limit)
    .map(({ e, t }) => ({
      at: iso(t),
      type: e.type ?? "Normal",
      reason: e.reason ?? "",
      message: e.message ?? "",
      object: e.involvedObject.name ?? "",
      count: e.count ?? 1,
    }));
}

function versionRows(app: App & { release: AppDeployment }, pods: readonly V1Pod[]): VersionRow[] {
  const byVersion = new Map<string, VersionRow>();
  const row = (version: string): VersionRow => {
    let r = byVersion.get(version);
    if (!r) {
      r = {
        version,
        role: version === app.release.version ? "release" : "stable",
        deployments: [],
        desiredReplicas: 0,
        readyReplicas: 0,
        pods: [],
      };
      byVersion.set(version, r);
    }
    return r;
  };
  for (const d of app.deployments) {
    const r = row(d.version);
    r.deployments.push(d.name);
    r.desiredReplicas += d.replicas;
    r.readyReplicas += d.readyReplicas;
  }
  for (const p of pods) {
    const v = toPodView(p);
    if (!v || v.app !== app.app || v.namespace !== app.namespace) continue;
    row(v.version).pods.push({ name: v.name, ready: v.endpoint !== undefined });
  }
  for (const r of byVersion.values()) r.pods.sort((a, b) => a.name.localeCompare(b.name));
  return [...byVersion.values()].sort(
    (a, b) =>
      (a.role === "release" ? 1 : 0) - (b.role === "release" ? 1 : 0) ||
      a.version.localeCompare(b.version),
  );
}

export interface ViewInput {
  app: App & { release: AppDeployment };
  pods: readonly V1Pod[];
  events: readonly CoreV1Event[];
  traffic?: Traffic | undefined;
  trafficNote?: string | undefined;
}

export function releaseView(input: ViewInput): ReleaseView {
  const { app } = input;
  const r = app.release;
  const state = releaseState(r);
  const { policy, status } = state;
  const view: ReleaseView = {
    ...releaseRow(app, input.traffic),
    reason: status?.reason ?? "",
    message: status?.message ?? "",
    paused: policy?.paused ?? false,
    aborted: policy?.abort ?? false,
    promoteAnnotation: policy?.promote ?? false,
    policyErrors: state.policyErrors,
    versions: versionRows(app, input.pods),
    gates: gateRows(policy, status),
    events: eventRows(
      input.events,
      app.deployments.map((d) => d.name),
    ),
  };
  if (policy?.steps) view.steps = policy.steps;
  if (policy) view.intervalMs = policy.intervalMs;
  if (status?.match) view.match = status.match;
  if (status?.startedAt) view.startedAt = status.startedAt;
  if (status?.stepStartedAt) view.stepStartedAt = status.stepStartedAt;
  if (status?.promotedAt) view.promotedAt = status.promotedAt;
  if (status?.analysis) {
    const a = status.analysis;
    view.analysis = { at: a.at, action: a.action, reason: a.reason, message: a.message };
  }
  if (input.traffic) view.traffic = input.traffic;
  if (input.trafficNote) view.trafficNote = input.trafficNote;
  return view;
}
