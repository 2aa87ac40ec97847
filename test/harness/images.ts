/**
 * What runs for a container image (pure). There are no images here: the harness knows two
 * programs from this repository and runs them as their images do: the proxy on the repo's Bun,
 * the demo app on its Node.
 *   `verso-demo:<tag>`                          -> test/demo-app/server.ts (VERSION=<tag>)
 *   a container named verso-proxy, or an image
 *   containing `verso-sidecar` / `verso-proxy`  -> sidecar/main.ts (configured by env)
 * Anything else is reported as Waiting with reason `HarnessImageUnsupported`.
 */
import { PROXY_CONTAINER } from "../../shared/pod-env.ts";
import { BUN, DEMO_APP, NODE, SIDECAR_MAIN } from "./paths.ts";
import type { Container } from "./podTypes.ts";

export type Program =
  | {
      ok: true;
      kind: "demo" | "proxy";
      command: string;
      args: string[];
      env: Record<string, string>;
    }
  | { ok: false; reason: string };

export function tagOf(image: string): string {
  const lastSlash = image.lastIndexOf("/");
  const colon = image.indexOf(":", lastSlash + 1);
  if (colon < 0) return "latest";
  return image.slice(colon + 1).split("@")[0] ?? "latest";
}

export function programFor(container: Container, podIP: string): Program {
  const image = container.image ?? "";
  const repo = image.split("@")[0]?.replace(/:[^/]*$/, "") ?? "";
  if (container.name === PROXY_CONTAINER || /verso-(sidecar|proxy)/.test(repo)) {
    return { ok: true, kind: "proxy", command: BUN, args: [SIDECAR_MAIN], env: {} };
  }
  if (/(^|\/)verso-demo$/.test(repo)) {
    const port = container.ports?.[0]?.containerPort ?? 8080;
    return {
      ok: true,
      kind: "demo",
      command: NODE,
      args: [DEMO_APP, tagOf(image)],
      env: { HOST: podIP, PORT: String(port), VERSION: tagOf(image) },
    };
  }
  return { ok: false, reason: `image ${image} is not one the harness can run` };
}
