/**
 * admit: one AdmissionRequest in, one AdmissionResponse out. Pure (no I/O), so goldens and
 * the server run exactly the same code; dryRun needs no special case because nothing here
 * has side effects.
 *
 *   not a core/v1 Pod, or a subresource -> allowed, no patch (not_pod)
 *   operation other than CREATE         -> allowed, no patch (not_create)
 *   object does not look like a Pod     -> allowed, no patch, warning (malformed_pod)
 *   decide() skips                      -> allowed, no patch (+ warning for user mistakes)
 *   decide() injects                    -> allowed, JSONPatch (absent when nothing changed)
 */
import type { InjectConfig } from "../mutation/config.ts";
import { mutatePod } from "../mutation/mutate.ts";
import { parsePod } from "../mutation/pod.ts";
import { REASON_TEXT, type ReasonCode, WARN_ON_SKIP } from "../mutation/reasons.ts";
import type { AdmissionRequest, AdmissionResponse } from "./review.ts";

export type Outcome = "injected" | "skipped";

export interface Admission {
  response: AdmissionResponse;
  outcome: Outcome;
  reasons: ReasonCode[];
  details: string[];
  namespace: string;
  /** Pod name, or generateName for pods made by a controller; for logs only. */
  podName: string | undefined;
}

const WARNING_PREFIX = "verso";

export function warningText(code: ReasonCode, detail?: string): string {
  return `${WARNING_PREFIX}: proxy not injected (${code}): ${REASON_TEXT[code]}${detail ? `: ${detail}` : ""}`;
}

export function admit(request: AdmissionRequest, config: InjectConfig): Admission {
  const namespace = request.namespace ?? "default";
  const base = { namespace, podName: undefined };
  const skip = (reasons: ReasonCode[], details: string[] = []): Admission => {
    const response: AdmissionResponse = { uid: request.uid, allowed: true };
    const warnings = reasons
      .filter((r) => WARN_ON_SKIP.has(r))
      .map((r, i) => warningText(r, i === 0 ? details.join("; ") : undefined));
    if (warnings.length > 0) response.warnings = warnings;
    return { ...base, response, outcome: "skipped", reasons, details };
  };

  const { kind } = request;
  if (kind.group !== "" || kind.version !== "v1" || kind.kind !== "Pod" || request.subResource) {
    return skip(["not_pod"]);
  }
  if (request.operation !== "CREATE") return skip(["not_create"]);
  const pod = parsePod(request.object);
  if (!pod.ok) return skip(["malformed_pod"], [pod.error]);

  const meta = pod.value.metadata;
  const podName = meta?.name ?? meta?.generateName;
  const { decision, patch } = mutatePod(pod.value, namespace, config);
  if (!decision.inject) return { ...skip(decision.reasons, decision.details), podName };

  const response: AdmissionResponse = { uid: request.uid, allowed: true };
  if (patch) {
    response.patchType = "JSONPatch";
    response.patch = Buffer.from(JSON.stringify(patch)).toString("base64");
  }
  return { response, outcome: "injected", reasons: [], details: [], namespace, podName };
}
