/**
 * A root filesystem being assembled in a directory: paths are the image's (`/usr/local/bin`),
 * modes are explicit (the layer must not depend on the caller's umask), and nothing is ever
 * written through a link already there. Plus Docker's COPY semantics for a host path.
 */
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, posix } from "node:path";
import type { Part } from "./parts.ts";

export class Rootfs {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
  }

  /** The host path of the image's `path`. */
  at(path: string): string {
    return join(this.dir, posix.resolve("/", path));
  }

  /** mkdir -p with explicit modes, so the layer does not depend on the caller's umask. */
  mkdir(path: string, mode = 0o755): string {
    let current = this.dir;
    for (const name of posix.resolve("/", path).split("/").filter(Boolean)) {
      current = join(current, name);
      if (!existsSync(current)) {
        mkdirSync(current);
        chmodSync(current, 0o755);
      }
    }
    chmodSync(current, mode);
    return current;
  }

  private fresh(dest: string): string {
    this.mkdir(posix.dirname(posix.resolve("/", dest)));
    const at = this.at(dest);
    // Never write through an existing symlink (a busybox applet link, say).
    rmSync(at, { force: true, recursive: true });
    return at;
  }

  put(dest: string, src: string, mode?: number): void {
    const at = this.fresh(dest);
    copyFileSync(src, at);
    chmodSync(at, mode ?? statSync(src).mode & 0o7777);
  }

  write(dest: string, content: string, mode: number): void {
    const at = this.fresh(dest);
    writeFileSync(at, content);
    chmodSync(at, mode);
  }

  link(path: string, target: string): void {
    symlinkSync(target, this.fresh(path));
  }

  add(p: Part): void {
    for (const d of p.dirs) this.mkdir(d.path, d.mode);
    for (const l of p.links) this.link(l.path, l.target);
    for (const f of p.files) this.put(f.dest, f.src, f.mode);
    for (const w of p.writes) this.write(w.dest, w.content, w.mode);
  }
}

/** Docker's COPY: a directory's contents into dest; a file to dest (or into it). */
export function copyInto(
  src: string,
  dest: string,
  destIsDir: boolean,
  filter?: (src: string) => boolean,
): string {
  const isDir = lstatSync(src).isDirectory();
  const target = isDir || !destIsDir ? dest : join(dest, basename(src));
  mkdirSync(dirname(target), { recursive: true });
  cpSync(src, target, {
    recursive: true,
    verbatimSymlinks: true,
    force: true,
    ...(filter ? { filter } : {}),
  });
  return target;
}

/** COPY --chmod: the mode on everything the COPY wrote, directories included. */
export function chmodTree(path: string, mode: number): void {
  chmodSync(path, mode);
  if (lstatSync(path).isDirectory())
    for (const name of readdirSync(path)) chmodTree(join(path, name), mode);
}
