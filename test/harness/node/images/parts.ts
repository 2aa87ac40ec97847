/**
 * A Part: a piece of a root filesystem taken from this host (a runtime, busybox, iptables, the
 * accounts files), described before anything is copied, so the same description both keys the
 * cache (partKey) and fills a root (Rootfs.add). Also what a binary needs beside it: the
 * shared libraries the host's loader resolves for it (ldd).
 */
import { spawnSync } from "node:child_process";
import { realpathSync } from "node:fs";
import { fileKey, sha256 } from "./hashing.ts";

export interface Part {
  what: string;
  /** Host files copied to `dest`, keeping their mode unless one is given. */
  files: { src: string; dest: string; mode?: number }[];
  writes: { dest: string; content: string; mode: number }[];
  dirs: { path: string; mode: number }[];
  links: { path: string; target: string }[];
  /** Versions the files' keys would not show (the big runtimes are keyed by size and mtime). */
  versions: string[];
}

export type PartFile = Part["files"][number];

export const part = (what: string, p: Partial<Omit<Part, "what">>): Part => ({
  what,
  files: p.files ?? [],
  writes: p.writes ?? [],
  dirs: p.dirs ?? [],
  links: p.links ?? [],
  versions: p.versions ?? [],
});

/** The cache-key lines of a part: everything that decides what it puts in the root. */
export function partKey(p: Part): string[] {
  return [
    `part ${p.what}`,
    ...p.versions,
    ...p.files.map((f) => `file ${f.dest} ${f.mode ?? "-"} ${fileKey(f.src)}`),
    ...p.writes.map((w) => `write ${w.dest} ${w.mode} ${sha256(w.content)}`),
    ...p.dirs.map((d) => `dir ${d.path} ${d.mode}`),
    ...p.links.map((l) => `link ${l.path} ${l.target}`),
  ];
}

/**
 * The paths in `ldd`'s report of `binary`: each library where the host's loader finds it (the
 * image keeps that path, as the same loader looks in the same places), and the loader itself.
 */
export function lddPaths(binary: string, stdout: string): string[] {
  const paths: string[] = [];
  for (const raw of stdout.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("linux-vdso")) continue;
    if (line.includes("=> not found"))
      throw new Error(`${binary} needs ${line} (install it with apt-get)`);
    const path = /^\S+ => (\/\S+) \(/.exec(line)?.[1] ?? /^(\/\S+) \(/.exec(line)?.[1];
    if (!path) throw new Error(`ldd ${binary}: cannot read "${line}"`);
    paths.push(path);
  }
  return paths;
}

/** The shared libraries `binary` loads, copied from their real files (not the soname links). */
export function sharedLibraries(binary: string): PartFile[] {
  const r = spawnSync("ldd", [binary], { encoding: "utf8" });
  const text = `${r.stdout}${r.stderr}`;
  if (/not a dynamic executable|statically linked/.test(text)) return [];
  if (r.status !== 0) throw new Error(`ldd ${binary}: ${text.trim()}`);
  return lddPaths(binary, r.stdout).map((dest) => ({ src: realpathSync(dest), dest }));
}

/** `files` and every library they load, each destination once, sorted. */
export function withSharedLibraries(files: PartFile[]): PartFile[] {
  const seen = new Map<string, PartFile>();
  for (const f of files.flatMap((file) => [file, ...sharedLibraries(file.src)]))
    seen.set(f.dest, f);
  return [...seen.values()].sort((a, b) => a.dest.localeCompare(b.dest));
}
