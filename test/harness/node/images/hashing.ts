/**
 * Content hashes: the digests a docker-archive names its layer and configs by, and the keys of
 * the build's inputs, which a cached archive is reused by (see cache.ts).
 */
import { createHash } from "node:crypto";
import {
  createReadStream,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
} from "node:fs";
import { join } from "node:path";

/** Files above this are keyed by size and mtime, not content (hashing 230 MB per run is slow). */
const HASH_LIMIT = 16 * 1024 * 1024;

export const sha256 = (data: string | Buffer): string =>
  createHash("sha256").update(data).digest("hex");

/** Streamed: a layer is hundreds of MB. */
export function sha256File(path: string): Promise<string> {
  return new Promise((done, fail) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", fail)
      .on("end", () => done(hash.digest("hex")));
  });
}

/** Per run, by path, size and mtime: several recipes key the same runtimes and libraries. */
const fileKeys = new Map<string, string>();

/** Content hash; for the big runtimes, size and mtime (their versions are keyed separately). */
export function fileKey(path: string): string {
  const st = statSync(path);
  const memo = `${path}:${st.size}:${st.mtimeMs}`;
  let key = fileKeys.get(memo);
  if (key === undefined) {
    key = st.size > HASH_LIMIT ? memo : sha256(readFileSync(path));
    fileKeys.set(memo, key);
  }
  return key;
}

/** Every file under `path` (or the file itself): relative path, mode and content. */
export function treeKey(path: string): string[] {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return [`link ${readlinkSync(path)}`];
  if (!st.isDirectory()) return [`file ${(st.mode & 0o7777).toString(8)} ${fileKey(path)}`];
  const out: string[] = [];
  for (const name of readdirSync(path).sort()) {
    for (const entry of treeKey(join(path, name))) out.push(`${name}/${entry}`);
  }
  return out;
}
