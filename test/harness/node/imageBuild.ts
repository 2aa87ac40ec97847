/**
 * Builds Verso's container images on this machine without Docker or a registry, as
 * docker-archive tars that containerd imports (`ctr -n k8s.io images import FILE`).
 *
 * The Dockerfiles in deploy/images/ cannot be built here: their bases come from Docker Hub and
 * `apk add` needs Alpine's mirrors (docs/images.md). So each Dockerfile is *interpreted*: its
 * stages, COPY and RUN steps and final config come from dockerfile.ts, COPY takes the same
 * sources from the checkout, the few RUN commands it knows are run with the repo's own pinned
 * tools (`bun build` with the very same arguments; `npm run build`; `npm ci --omit=dev` as the
 * lockfile's production closure copied from node_modules), and a base image is stood in for by
 * the same runtime from node_modules plus the glibc libraries it links against (ldd), busybox
 * for Alpine's userland, and Debian's iptables for `apk add iptables`. Any instruction or
 * command it does not know fails the build with its line number: a Dockerfile change cannot be
 * silently ignored. Each image is one layer, tarred deterministically (sorted, mtime 0, uid 0).
 *
 * This is the entry point; the builder's parts are in images/:
 *   names.ts        the image names, containerd's form of them, BuiltImage
 *   recipes.ts      one recipe per archive: its key inputs and how its root is made
 *   interpreter.ts  a Dockerfile's stages run here; RUN commands mapped to local stand-ins
 *   baseImages.ts   the base images' stand-ins: runtimes, busybox, iptables, accounts
 *   parts.ts        a piece of a root from the host, its key, and its shared libraries (ldd)
 *   rootfs.ts       a root filesystem being assembled; Docker's COPY semantics
 *   npmClosure.ts   `npm ci --omit=dev` from the lockfile and node_modules
 *   archive.ts      root + configs -> docker-archive
 *   cache.ts        keys, hit or miss, pruning
 *   hashing.ts, host.ts   content hashes; running tools and requiring host files
 *
 *   node test/harness/node/imageBuild.ts [--tag T]     builds all, prints each archive path
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { builderKey, cachedOrBuilt, openCache, seconds } from "./images/cache.ts";
import { DEFAULT_TAG, uniqueArchives, type BuiltImage } from "./images/names.ts";
import { recipes } from "./images/recipes.ts";

export {
  containerdName,
  DEFAULT_TAG,
  IMAGE_NAMES,
  imageNames,
  uniqueArchives,
  type BuiltImage,
} from "./images/names.ts";
export { productionPackages } from "./images/npmClosure.ts";

export interface BuildOptions {
  tag?: string;
  log?: (line: string) => void;
}

/** Every image, each archive from the cache or built now (docs/images.md). */
export async function buildImages(options: BuildOptions = {}): Promise<BuiltImage[]> {
  const tag = options.tag ?? DEFAULT_TAG;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag))
    throw new Error(`--tag ${tag}: not a valid image tag`);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dir = openCache();
  const started = performance.now();
  const common = builderKey();
  const out: BuiltImage[] = [];
  // Directories that cpSync and mkdirSync make get 755 whatever umask the caller runs with.
  const umask = process.umask(0o022);
  try {
    for (const recipe of recipes(tag)) out.push(...(await cachedOrBuilt(recipe, dir, common, log)));
  } finally {
    process.umask(umask);
  }
  const total = seconds(performance.now() - started);
  log(`[images] ${uniqueArchives(out).length} archives ready in ${total}`);
  return out;
}

async function main(argv: string[]): Promise<void> {
  let tag: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--tag" && i + 1 < argv.length) tag = argv[++i];
    else if (arg.startsWith("--tag=")) tag = arg.slice("--tag=".length);
    else if (arg === "--help" || arg === "-h") {
      process.stdout.write(
        "usage: node test/harness/node/imageBuild.ts [--tag T]  (docs/images.md)\n",
      );
      return;
    } else throw new Error(`unexpected argument ${arg} (usage: imageBuild.ts [--tag T])`);
  }
  const images = await buildImages(tag === undefined ? {} : { tag });
  for (const archive of uniqueArchives(images)) process.stdout.write(`${archive}\n`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(
      `[images] failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  });
}
