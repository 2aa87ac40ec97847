/**
 * The image cache, `${VERSO_CACHE:-~/.cache/verso}/images/<slug>-<key>.tar` beside a `.json`
 * of its names and IDs. The key hashes every input, so a run with nothing changed only hashes
 * and stats; an archive of an older input set is pruned once no checkout sharing the cache has
 * used it for an hour.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { cacheRoot } from "../../paths.ts";
import { writeArchive } from "./archive.ts";
import { fileKey, sha256 } from "./hashing.ts";
import { replaceAtomically, run } from "./host.ts";
import type { BuiltImage } from "./names.ts";
import type { Recipe } from "./recipes.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
/** test/harness/node: imageBuild.ts and dockerfile.ts, with this directory's modules. */
const NODE_DIR = join(HERE, "..");

/** Work dirs of builds that were killed are removed once they are this old. */
const SWEEP_AFTER_MS = 60 * 60 * 1000;
/** An archive of an older input set is removed once unused for this long. */
const PRUNE_AFTER_MS = 60 * 60 * 1000;

interface Meta {
  key: string;
  images: { names: string[]; id: string }[];
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 1000 ? 2 : 1)} s`;
const megabytes = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/** The cache directory, created, without the leftovers of killed builds. */
export function openCache(): string {
  const dir = join(cacheRoot(), "images");
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(".work-")) continue;
    const path = join(dir, name);
    if (Date.now() - statSync(path).mtimeMs > SWEEP_AFTER_MS)
      rmSync(path, { recursive: true, force: true });
  }
  return dir;
}

/**
 * The key lines every recipe shares: each module of the builder (a change to how an image is
 * made must rebuild it) and GNU tar, which writes every layer.
 */
export function builderKey(): string[] {
  const modules = readdirSync(HERE)
    .filter((name) => name.endsWith(".ts"))
    .sort()
    .map((name) => join(HERE, name));
  const sources = [join(NODE_DIR, "imageBuild.ts"), join(NODE_DIR, "dockerfile.ts"), ...modules];
  return [
    ...sources.map((f) => `builder ${relative(NODE_DIR, f)} ${fileKey(f)}`),
    `tar ${run("tar", ["--version"]).split("\n")[0]}`,
  ];
}

/**
 * Older archives of this recipe (another input set) are dead weight, unless another checkout
 * sharing the cache (make demo beside make test, a CI clone) used one in the last hour: its
 * run may be importing it right now.
 */
function pruneOlder(dir: string, slug: string, current: string): void {
  const mine = new RegExp(`^${slug.replace(/\./g, "\\.")}-[0-9a-f]{16}\\.tar$`);
  for (const name of readdirSync(dir)) {
    if (!mine.test(name) || name.startsWith(current)) continue;
    const old = join(dir, name);
    if (Date.now() - statSync(old).mtimeMs < PRUNE_AFTER_MS) continue;
    rmSync(old, { force: true });
    rmSync(old.replace(/\.tar$/, ".json"), { force: true });
  }
}

/** One recipe: its archive from the cache when the key matches, else built now. */
export async function cachedOrBuilt(
  recipe: Recipe,
  dir: string,
  common: readonly string[],
  log: (line: string) => void,
): Promise<BuiltImage[]> {
  const t0 = performance.now();
  const label = recipe.names.join(", ");
  const key = sha256([...common, `names ${recipe.names.join(" ")}`, ...recipe.key()].join("\n"));
  const stem = `${recipe.slug}-${key.slice(0, 16)}`;
  const archive = join(dir, `${stem}.tar`);
  const metaFile = join(dir, `${stem}.json`);
  if (existsSync(archive) && existsSync(metaFile)) {
    const meta = JSON.parse(readFileSync(metaFile, "utf8")) as Meta;
    if (meta.key === key) {
      // Marks it in use: pruning spares archives another checkout used recently.
      const now = new Date();
      utimesSync(archive, now, now);
      log(`[images] ${label} cached (${seconds(performance.now() - t0)})`);
      return meta.images.map((i) => ({ ...i, archive }));
    }
  }
  log(`[images] building ${label} ...`);
  const work = mkdtempSync(join(dir, ".work-"));
  let built: BuiltImage[];
  try {
    const { rootfs, images } = recipe.build(work);
    built = await writeArchive(rootfs.dir, images, archive, work);
    const meta: Meta = { key, images: built.map(({ names, id }) => ({ names, id })) };
    replaceAtomically(metaFile, (partial) => writeFileSync(partial, JSON.stringify(meta, null, 2)));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  pruneOlder(dir, recipe.slug, stem);
  const size = megabytes(statSync(archive).size);
  log(`[images] ${label} built in ${seconds(performance.now() - t0)}, ${size}: ${archive}`);
  return built;
}
