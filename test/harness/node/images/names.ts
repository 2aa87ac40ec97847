/**
 * What the images are called (the Makefile's names, and the form containerd stores them
 * under) and what a build hands back. Pure: callers that only import images need no builder.
 */

export const DEFAULT_TAG = "0.1.0";

/** The names the Makefile gives the images (`make images`), plus the two the harness adds. */
export function imageNames(tag: string = DEFAULT_TAG) {
  return {
    webhook: `verso/webhook:${tag}`,
    sidecar: `verso/sidecar:${tag}`,
    demoV1: "verso-demo:v1",
    demoV2: "verso-demo:v2",
    pause: "verso.local/pause:3.10",
    tools: "verso.local/tools:1",
  } as const;
}

export const IMAGE_NAMES = imageNames();

/**
 * The name containerd stores after import, as the CRI resolves a pod's `image:`
 * (`verso/sidecar:0.1.0` -> `docker.io/verso/sidecar:0.1.0`, `verso-demo:v1` ->
 * `docker.io/library/verso-demo:v1`; a first component with a dot stays as is).
 */
export function containerdName(name: string): string {
  const slash = name.indexOf("/");
  const first = slash < 0 ? "" : name.slice(0, slash);
  if (first.includes(".") || first.includes(":") || first === "localhost") return name;
  return `docker.io/${slash < 0 ? "library/" : ""}${name}`;
}

export interface BuiltImage {
  /** repo:tag names this image carries in its archive. */
  names: string[];
  /** The docker-archive. One archive may hold several images (verso-demo v1 and v2). */
  archive: string;
  /** `sha256:` of the image config: the image ID Docker and containerd show. */
  id: string;
}

/** Each archive once (verso-demo's two images share one): what to `ctr images import`. */
export function uniqueArchives(images: readonly BuiltImage[]): string[] {
  return [...new Set(images.map((i) => i.archive))];
}
