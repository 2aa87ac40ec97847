/** decide + applyPlan + toPatch: the whole mutation for one pod, still pure. */
import type { Operation } from "fast-json-patch";
import type { InjectConfig } from "./config.ts";
import { decide, type Decision } from "./decide.ts";
import type { Pod } from "./pod.ts";
import { toPatch } from "./patch.ts";
import { applyPlan } from "./render.ts";

export interface Mutation {
  decision: Decision;
  /** Present only when the pod changed. */
  patch: Operation[] | undefined;
}

export function mutatePod(pod: Pod, namespace: string, config: InjectConfig): Mutation {
  const decision = decide(pod, namespace, config);
  if (!decision.inject) return { decision, patch: undefined };
  return { decision, patch: toPatch(pod, applyPlan(pod, decision.plan, config)) };
}
