/**
 * The images, one recipe per archive: what keys it (every input but the builder's own source,
 * which cache.ts adds) and how its root and configs are made. Three come from their
 * Dockerfiles; pause and tools exist only for the local node and are made directly.
 */
import { chmodSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { REPO_ROOT } from "../../paths.ts";
import { parseDockerfile, type Dockerfile, type ImageConfig } from "../dockerfile.ts";
import type { ImageSpec } from "./archive.ts";
import { accountsPart, BASE_PATH, baseEnv, busyboxPart } from "./baseImages.ts";
import { fileKey, sha256, treeKey } from "./hashing.ts";
import { run } from "./host.ts";
import { contextSources, dockerfileParts, runDockerfile } from "./interpreter.ts";
import { imageNames } from "./names.ts";
import { partKey } from "./parts.ts";
import { Rootfs } from "./rootfs.ts";

const DOCKERFILE_DIR = join(REPO_ROOT, "deploy", "images");
/** Beside the node harness, not in deploy/images: real clusters bring their own pause. */
const PAUSE_SOURCE = join(dirname(fileURLToPath(import.meta.url)), "..", "pause.c");

export interface Recipe {
  /** File-name stem of the archive in the cache. */
  slug: string;
  names: string[];
  key: () => string[];
  build: (work: string) => { rootfs: Rootfs; images: ImageSpec[] };
}

/**
 * A Dockerfile's image(s): one per variant, all sharing one root (a build arg may change the
 * config, not the steps). The key is the Dockerfile, the variants, the host parts the build
 * pulls in and every file it COPYs from the checkout.
 */
function dockerfileRecipe(
  slug: string,
  dockerfile: string,
  variants: { names: string[]; buildArgs: Record<string, string> }[],
): Recipe {
  const path = join(DOCKERFILE_DIR, dockerfile);
  const rel = relative(REPO_ROOT, path);
  const text = (): string => readFileSync(path, "utf8");
  const parse = (buildArgs: Record<string, string>): Dockerfile =>
    parseDockerfile(text(), { buildArgs, baseEnv });
  return {
    slug,
    names: variants.flatMap((v) => v.names),
    key: () => {
      const file = parse(variants[0]!.buildArgs);
      return [
        `dockerfile ${rel} ${sha256(text())}`,
        `variants ${JSON.stringify(variants)}`,
        ...dockerfileParts(file, rel).flatMap(partKey),
        ...contextSources(file).flatMap((s) =>
          treeKey(join(REPO_ROOT, s)).map((e) => `context ${s}: ${e}`),
        ),
      ];
    },
    build: (work) => {
      const files = variants.map((v) => parse(v.buildArgs));
      const steps = (f: Dockerfile): string =>
        JSON.stringify(f.stages.map((s) => [s.base, s.steps]));
      if (files.some((f) => steps(f) !== steps(files[0]!)))
        throw new Error(`${rel}: the build args change the filesystem; give each its own recipe`);
      const rootfs = runDockerfile(files[0]!, rel, work);
      return {
        rootfs,
        images: variants.map((v, i) => ({
          names: v.names,
          config: files[i]!.final.config,
          createdBy: `${rel} ${Object.entries(v.buildArgs)
            .map(([k, val]) => `--build-arg ${k}=${val}`)
            .join(" ")}`.trim(),
        })),
      };
    },
  };
}

/** An image with no Dockerfile: one root that `fill` makes, one config with the base PATH. */
function directRecipe(r: {
  slug: string;
  name: string;
  key: () => string[];
  fill: (rootfs: Rootfs) => void;
  config: Omit<ImageConfig, "Env">;
  createdBy: string;
}): Recipe {
  return {
    slug: r.slug,
    names: [r.name],
    key: r.key,
    build: (work) => {
      const rootfs = new Rootfs(join(work, "rootfs"));
      r.fill(rootfs);
      const config: ImageConfig = { Env: [`PATH=${BASE_PATH}`], ...r.config };
      return { rootfs, images: [{ names: [r.name], config, createdBy: r.createdBy }] };
    },
  };
}

/** The sandbox image: pause.c, static, as the only file. */
const pauseRecipe = (name: string): Recipe =>
  directRecipe({
    slug: "pause",
    name,
    key: () => [
      `pause.c ${fileKey(PAUSE_SOURCE)}`,
      `gcc ${run("gcc", ["-dumpfullversion"]).trim()}`,
      `libc.a ${fileKey(run("gcc", ["-print-file-name=libc.a"]).trim())}`,
    ],
    fill: (rootfs) => {
      const out = rootfs.at("/pause");
      run("gcc", ["-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror", "-o", out, PAUSE_SOURCE]);
      chmodSync(out, 0o755);
    },
    // 65535 as the upstream sandbox image: no passwd needed, never root.
    config: { Entrypoint: ["/pause"], User: "65535:65535" },
    createdBy: "gcc -static -Os test/harness/node/pause.c",
  });

/** A shell and busybox's tools alone, for test client pods. */
const toolsRecipe = (name: string): Recipe =>
  directRecipe({
    slug: "tools",
    name,
    key: () => [...partKey(accountsPart()), ...partKey(busyboxPart())],
    fill: (rootfs) => {
      rootfs.add(accountsPart());
      rootfs.add(busyboxPart());
    },
    config: { Entrypoint: ["/bin/sh"], WorkingDir: "/" },
    createdBy: "busybox-static (sh, wget, nc, sleep, ...)",
  });

/** Every archive `buildImages` makes, with the sidecar and webhook tagged `tag`. */
export function recipes(tag: string): Recipe[] {
  const n = imageNames(tag);
  return [
    dockerfileRecipe(`sidecar-${tag}`, "Dockerfile.sidecar", [
      { names: [n.sidecar], buildArgs: {} },
    ]),
    dockerfileRecipe(`webhook-${tag}`, "Dockerfile.webhook", [
      { names: [n.webhook], buildArgs: {} },
    ]),
    dockerfileRecipe("demo", "Dockerfile.demo", [
      { names: [n.demoV1], buildArgs: { VERSION: "v1" } },
      { names: [n.demoV2], buildArgs: { VERSION: "v2" } },
    ]),
    pauseRecipe(n.pause),
    toolsRecipe(n.tools),
  ];
}
