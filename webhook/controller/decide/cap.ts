/**
 * The capacity guard: the weight the release may get, whatever the steps or the hand-set weight
 * ask for. Pure. `verso.dev/max-weight` is a fixed cap; `verso.dev/pod-share-factor` keeps the
 * release's share within a factor of its share of the app's ready pods, so one ready canary pod
 * out of ten (10 %) with factor 2 gets at most 20 %, not the 50 % a step asks for: the
 * proxies forward a share of every pod's traffic to the release's few pods.
 */
import type { ReleasePolicy } from "../../../shared/policy.ts";
import type { CapRecord } from "./status.ts";

export interface ReadyPods {
  /** Ready pods of the release version. */
  release: number;
  /** Ready pods of every version of the app. */
  total: number;
}

export interface Capped {
  weight: number;
  /** Present when a cap keeps `weight` below what was requested. */
  cap?: CapRecord;
}

const round2 = (n: number): number => Math.floor(n * 100) / 100;

export function capWeight(
  requested: number,
  policy: Pick<ReleasePolicy, "maxWeight" | "podShareFactor">,
  pods: ReadyPods | undefined,
): Capped {
  let weight = requested;
  let by: CapRecord["by"] | undefined;
  if (policy.maxWeight !== undefined && weight > policy.maxWeight) {
    weight = policy.maxWeight;
    by = "max-weight";
  }
  // Without any ready pod there is no share to speak of: the release cannot be sent traffic
  // it has no pod for anyway (the proxies fall back to stable), so no cap is claimed.
  if (policy.podShareFactor !== undefined && pods && pods.total > 0) {
    const share = round2((policy.podShareFactor * 100 * pods.release) / pods.total);
    if (weight > share) {
      weight = share;
      by = "pod-share";
    }
  }
  return by === undefined ? { weight } : { weight, cap: { requested, weight, by } };
}
