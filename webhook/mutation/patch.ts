/**
 * The JSON Patch is the diff between the pod as received and the pod as mutated (never a
 * template): whatever the pod looks like, the ops apply to it. fast-json-patch escapes keys
 * per RFC 6901 (`verso.dev/app` -> `verso.dev~1app`) and adds missing maps whole.
 */
import fjp from "fast-json-patch";
import type { Operation } from "fast-json-patch";
import type { Pod } from "./pod.ts";

/** managedFields is the apiserver's bookkeeping: never diffed, never patched. */
export function withoutManagedFields(pod: Pod): Pod {
  if (pod.metadata?.managedFields === undefined) return pod;
  const { managedFields: _drop, ...metadata } = pod.metadata;
  return { ...pod, metadata };
}

/** RFC 6902 ops turning `original` into `mutated`; undefined when nothing changed. */
export function toPatch(original: Pod, mutated: Pod): Operation[] | undefined {
  const ops = fjp.compare(withoutManagedFields(original), withoutManagedFields(mutated));
  return ops.length > 0 ? ops : undefined;
}
