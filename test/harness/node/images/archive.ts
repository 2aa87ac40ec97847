/**
 * The docker-archive (what `docker save` writes and `ctr images import` reads): one layer, a
 * config per image, and manifest.json naming them. Deterministic: the same root gives the same
 * bytes, and so the same image IDs.
 */
import { mkdirSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ImageConfig } from "../dockerfile.ts";
import { sha256, sha256File } from "./hashing.ts";
import { replaceAtomically, run } from "./host.ts";
import type { BuiltImage } from "./names.ts";

/** One image of an archive: several (verso-demo v1 and v2) may share its layer. */
export interface ImageSpec {
  names: string[];
  config: ImageConfig;
  createdBy: string;
}

/** Every image is created at the epoch: a date would make each build's ID differ. */
const EPOCH = "1970-01-01T00:00:00Z";

/** GNU tar of a directory's contents, byte-for-byte the same for the same tree. */
function tarDir(dir: string, out: string): void {
  const entries = readdirSync(dir).sort();
  run("tar", [
    "--create",
    `--file=${out}`,
    "--format=gnu",
    "--sort=name",
    "--mtime=@0",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "--no-acls",
    "--no-xattrs",
    "--no-selinux",
    "-C",
    dir,
    "--",
    ...entries,
  ]);
}

/** The image config Docker would write for a one-layer image. */
function configJson(image: ImageSpec, diffId: string): string {
  return JSON.stringify({
    architecture: "amd64",
    os: "linux",
    created: EPOCH,
    config: image.config,
    rootfs: { type: "layers", diff_ids: [`sha256:${diffId}`] },
    history: [
      {
        created: EPOCH,
        created_by: image.createdBy,
        comment: "verso local image builder (no Docker)",
      },
    ],
  });
}

/**
 * `root` as the one layer of every image in `images`, laid out as `docker save` does, written
 * to `out` atomically. `work` is scratch space on the same file system.
 */
export async function writeArchive(
  root: string,
  images: ImageSpec[],
  out: string,
  work: string,
): Promise<BuiltImage[]> {
  const layer = join(work, "layer.tar");
  tarDir(root, layer);
  const diffId = await sha256File(layer);
  const dir = join(work, "archive");
  mkdirSync(join(dir, diffId), { recursive: true });
  renameSync(layer, join(dir, diffId, "layer.tar"));
  const manifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const built: BuiltImage[] = [];
  for (const image of images) {
    const config = configJson(image, diffId);
    const id = sha256(config);
    writeFileSync(join(dir, `${id}.json`), config);
    manifest.push({ Config: `${id}.json`, RepoTags: image.names, Layers: [`${diffId}/layer.tar`] });
    built.push({ names: image.names, archive: out, id: `sha256:${id}` });
  }
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  replaceAtomically(out, (partial) => tarDir(dir, partial));
  return built;
}
