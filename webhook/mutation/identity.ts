/**
 * Identity labels (docs/design.md, "Identity"). Precedence, first non-empty wins after sanitising:
 *
 *   app:     annotation verso.dev/app > label app.kubernetes.io/name > label app
 *   version: annotation verso.dev/version > label app.kubernetes.io/version > label version
 *            > image tag of the first container (digest prefix when pinned by digest; "latest")
 *   color:   annotation verso.dev/color (blue-green), else none
 */
import { ANNOTATION, toLabelValue } from "../../shared/annotations.ts";
import type { Pod } from "./pod.ts";

export interface Identity {
  app: string | undefined;
  version: string;
  color: string | undefined;
}

function firstValue(candidates: (string | undefined)[]): string | undefined {
  for (const c of candidates) {
    if (c === undefined) continue;
    const v = toLabelValue(c);
    if (v !== "") return v;
  }
  return undefined;
}

/** `repo/name:tag@sha256:...` -> tag; digest-only -> first 12 hex of the digest; none -> latest. */
export function imageVersion(image: string | undefined): string {
  if (!image) return "latest";
  const at = image.indexOf("@");
  const ref = at >= 0 ? image.slice(0, at) : image;
  const lastSlash = ref.lastIndexOf("/");
  const colon = ref.indexOf(":", lastSlash + 1);
  if (colon >= 0) return ref.slice(colon + 1);
  if (at >= 0) {
    const digest = image.slice(at + 1);
    const hex = digest.slice(digest.indexOf(":") + 1);
    return hex.slice(0, 12);
  }
  return "latest";
}

export function deriveIdentity(pod: Pod): Identity {
  const labels = pod.metadata?.labels ?? {};
  const ann = pod.metadata?.annotations ?? {};
  const app = firstValue([ann[ANNOTATION.app], labels["app.kubernetes.io/name"], labels.app]);
  const version =
    firstValue([
      ann[ANNOTATION.version],
      labels["app.kubernetes.io/version"],
      labels.version,
      imageVersion(pod.spec.containers[0]?.image),
    ]) ?? "latest";
  const color = firstValue([ann[ANNOTATION.color]]);
  return { app, version, color };
}
