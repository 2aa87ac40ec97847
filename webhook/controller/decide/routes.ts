/**
 * Deployments + pods of one app -> its routing table. Pure: every replica computes the same
 * table from the same apiserver state (the streamed weight comes from `verso.dev/status`,
 * which only the leader writes), so proxies may connect to any replica.
 */
import { ANNOTATION } from "../../../shared/annotations.ts";
import {
  isRelease,
  parsePolicy,
  pickPolicyAnnotations,
  withGatesConfigMap,
  type ConfigMapLookup,
  type PolicyError,
  type PolicyMatchRule,
  type ReleasePolicy,
} from "../../../shared/policy.ts";
import type { MatchRule, Release, RoutingTable } from "../../../shared/table.ts";
import { capWeight, type ReadyPods } from "./cap.ts";
import { parseStatus, type ReleaseStatus } from "./status.ts";
import type { DeploymentView, PodView } from "./views.ts";

export interface ReleaseChoice {
  release: DeploymentView | undefined;
  /** Other Deployments of the app that also carry a strategy: they are ignored. */
  superseded: DeploymentView[];
}

/** Newest creationTimestamp wins; ties by name so every replica picks the same one. */
export function selectRelease(deployments: readonly DeploymentView[]): ReleaseChoice {
  const candidates = deployments
    .filter((d) => isRelease(d.annotations))
    .sort((a, b) => b.created - a.created || a.name.localeCompare(b.name));
  return { release: candidates[0], superseded: candidates.slice(1) };
}

export interface ResolvedPolicy {
  /** The policy in force: the annotations when valid, else the last good one, else none. */
  policy: ReleasePolicy | undefined;
  /** Problems with the current annotations (empty when they are valid). */
  errors: PolicyError[];
  status: ReleaseStatus | undefined;
  /**
   * The policy annotations now, with the gates of `verso.dev/gates-configmap`'s ConfigMap
   * folded in (shared/policy.ts withGatesConfigMap): what the leader records as `applied`.
   */
  annotations: Record<string, string>;
  /**
   * The release names a gates ConfigMap that cannot be read yet (its namespace's ConfigMaps
   * are still being listed): `policy` is the last good one, and nothing is to be decided.
   */
  pending?: true;
}

/**
 * Where a release's gates ConfigMap is read from: the ConfigMaps of its namespace, "pending"
 * while they are not listed yet, or nothing (the CLI: the annotations alone are the policy).
 */
export type GatesSource = ConfigMapLookup | "pending" | undefined;

/**
 * Last good policy, in order: the annotations themselves (with the gates of the ConfigMap
 * they name); the set recorded in `status.applied` by the leader (survives restarts, same on
 * every replica); this replica's memory of the last valid parse. A missing or invalid gates
 * ConfigMap is a problem like a bad annotation.
 */
export function resolvePolicy(
  d: DeploymentView,
  remembered?: ReleasePolicy,
  gates?: GatesSource,
): ResolvedPolicy {
  const status = parseStatus(d.annotations[ANNOTATION.status]);
  const lastGood = (): ReleasePolicy | undefined => {
    const applied = status?.applied ? parsePolicy(status.applied) : undefined;
    return applied?.ok ? applied.value : remembered;
  };
  if (gates === "pending" && d.annotations[ANNOTATION.gatesConfigMap] !== undefined) {
    const annotations = pickPolicyAnnotations(d.annotations);
    return { policy: lastGood(), errors: [], status, annotations, pending: true };
  }
  const merged =
    typeof gates === "function"
      ? withGatesConfigMap(d.annotations, gates)
      : { annotations: d.annotations, errors: [] };
  const annotations = pickPolicyAnnotations(merged.annotations);
  const parsed = parsePolicy(merged.annotations);
  const errors = [...merged.errors, ...(parsed.ok ? [] : parsed.error)];
  if (parsed.ok && errors.length === 0)
    return { policy: parsed.value, errors, status, annotations };
  return { policy: lastGood(), errors, status, annotations };
}

/**
 * The weight proxies are told. Abort and Failed always mean 0 and need no leader, so a
 * rollback written by anyone takes effect on every replica at once.
 *
 * | abort | phase    | strategy   | promote | steps | weight            |
 * |-------|----------|------------|---------|-------|-------------------|
 * | yes   | -        | -          | -       | -     | 0                 |
 * | no    | Failed   | -          | -       | -     | 0                 |
 * | no    | -        | blue-green | true    | -     | 100 (with a smoke-test gate: once Promoted) |
 * | no    | -        | blue-green | false   | -     | 0                 |
 * | no    | -        | BG auto    | -       | -     | status.weight (0 or 100: the machine switches) |
 * | no    | -        | canary     | true    | -     | 100               |
 * | no    | Promoted | canary     | false   | -     | 100               |
 * | no    | other    | canary     | false   | yes   | status.weight, 0 without status |
 * | no    | other    | canary     | false   | no    | verso.dev/weight, capped (cap.ts) |
 */
/** Aborted, or this version's release failed: nobody is sent to it any more. */
const stopped = (policy: ReleasePolicy, status: ReleaseStatus | undefined, version: string) =>
  policy.abort || (status?.version === version && status.phase === "Failed");

/** Switched or promoted: the release takes all traffic, whatever its rules say. */
export const promoted = (
  policy: ReleasePolicy,
  status: ReleaseStatus | undefined,
  version: string,
): boolean => policy.promote || (status?.version === version && status.phase === "Promoted");

export function weightFor(
  policy: ReleasePolicy,
  status: ReleaseStatus | undefined,
  version: string,
  pods?: ReadyPods,
): number {
  if (stopped(policy, status, version)) return 0;
  const own = status?.version === version ? status : undefined;
  if (policy.strategy === "blue-green") {
    if (policy.autoPromote) return own?.weight ?? 0;
    // A smoke test must pass first: the switch waits for the leader to write Promoted.
    if (policy.webhooks["smoke-test"] !== undefined) return own?.phase === "Promoted" ? 100 : 0;
    return policy.promote ? 100 : 0;
  }
  if (policy.promote || own?.phase === "Promoted") return 100;
  if (policy.steps) return own?.weight ?? 0;
  // A hand-set weight takes effect without the leader, so the capacity guard applies here too.
  return capWeight(policy.weight, policy, pods).weight;
}

/** Ready pods of the release version and of the whole app (the capacity guard's pod share). */
export function readyPodsOf(pods: readonly PodView[], version: string): ReadyPods {
  let release = 0;
  let total = 0;
  for (const p of pods) {
    if (p.endpoint === undefined) continue;
    total++;
    if (p.version === version) release++;
  }
  return { release, total };
}

/**
 * The table's rules: fixed weights as written; a rule that follows the steps (`@steps`) gets the
 * release's weight of the moment, so the proxies never need to know about steps.
 */
export function tableRules(rules: readonly PolicyMatchRule[], weight: number): MatchRule[] {
  return rules.map(({ followsSteps, ...rule }) => (followsSteps ? { ...rule, weight } : rule));
}

export function releaseFor(
  d: DeploymentView,
  resolved: ResolvedPolicy,
  pods?: ReadyPods,
): Release | undefined {
  const policy = resolved.policy;
  if (!policy) return undefined;
  const weight = weightFor(policy, resolved.status, d.version, pods);
  const release: Release = { version: d.version, strategy: policy.strategy, weight };
  if (policy.cutoffFailures > 0) release.cutoffFailures = policy.cutoffFailures;
  // A stopped release keeps no match rules either; nor does a promoted one: it is the new
  // stable version, and a rule's own weight (`@20`) must not hold traffic back from it.
  if (stopped(policy, resolved.status, d.version)) return release;
  if (promoted(policy, resolved.status, d.version)) return release;
  if (policy.match && policy.match.length > 0) release.match = tableRules(policy.match, weight);
  if (policy.sticky) release.sticky = policy.sticky;
  return release;
}

/**
 * version -> sorted endpoints, versions sorted. `pick` chooses which address of a pod:
 * its HTTP endpoint (the default) or its gRPC one (grpcEndpointsOf).
 */
export function endpointsOf(
  pods: readonly PodView[],
  pick: (p: PodView) => string | undefined = (p) => p.endpoint,
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const p of pods) {
    const endpoint = pick(p);
    if (endpoint === undefined) continue;
    (out[p.version] ??= []).push(endpoint);
  }
  for (const list of Object.values(out)) list.sort();
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** The ready pods' gRPC listeners, by version; empty when no pod of the app has one. */
export const grpcEndpointsOf = (pods: readonly PodView[]): Record<string, string[]> =>
  endpointsOf(pods, (p) => p.grpcEndpoint);

/** Everything a proxy acts on: a change in any of it is a new revision. */
const contentOf = (t: Omit<RoutingTable, "revision">): string =>
  JSON.stringify([
    t.app,
    t.release ?? null,
    t.endpoints,
    t.grpcEndpoints ?? null,
    t.hopKey ?? null,
  ]);

/**
 * The table for an app, or `prev` itself when nothing changed. A new revision is
 * max(prev + 1, now in ms): it never goes backwards across restarts or between replicas
 * whose clocks agree, so a proxy that ignores older revisions still takes every change.
 */
export function buildTable(
  input: {
    app: string;
    release: Release | undefined;
    endpoints: Record<string, string[]>;
    /** Omitted from the table when empty, so apps without gRPC get the tables they always had. */
    grpcEndpoints?: Record<string, string[]>;
    hopKey?: string;
  },
  prev: RoutingTable | undefined,
  now: number,
): RoutingTable {
  const next: RoutingTable = { app: input.app, revision: 0, endpoints: input.endpoints };
  if (input.grpcEndpoints && Object.keys(input.grpcEndpoints).length > 0) {
    next.grpcEndpoints = input.grpcEndpoints;
  }
  if (input.release) next.release = input.release;
  if (input.hopKey !== undefined) next.hopKey = input.hopKey;
  if (prev && contentOf(prev) === contentOf(next)) return prev;
  next.revision = Math.max((prev?.revision ?? 0) + 1, Math.floor(now));
  return next;
}
