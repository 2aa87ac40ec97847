/**
 * Locates the control plane's and the node's binaries, building them with
 * scripts/build-kube.sh (cached by version under $VERSO_CACHE) when they are not at hand.
 */
import { join } from "node:path";
import { executable, runBuildScript } from "./buildScript.ts";
import { BUILD_SCRIPT, cacheRoot } from "./paths.ts";

export const KUBE_VERSION = process.env.VERSO_KUBE_VERSION ?? "v1.36.3";

export interface KubeBinaries {
  dir: string;
  etcd: string;
  apiserver: string;
  controllerManager: string;
  kubectl: string;
  scheduler: string;
  kubelet: string;
  kubeProxy: string;
  coredns: string;
}

const NAMES = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kubectl",
  "kube-scheduler",
  "kubelet",
  "kube-proxy",
  "coredns",
] as const;

function complete(dir: string | undefined): dir is string {
  return dir !== undefined && dir !== "" && NAMES.every((n) => executable(join(dir, n)));
}

function inDir(dir: string): KubeBinaries {
  return {
    dir,
    etcd: join(dir, "etcd"),
    apiserver: join(dir, "kube-apiserver"),
    controllerManager: join(dir, "kube-controller-manager"),
    kubectl: join(dir, "kubectl"),
    scheduler: join(dir, "kube-scheduler"),
    kubelet: join(dir, "kubelet"),
    kubeProxy: join(dir, "kube-proxy"),
    coredns: join(dir, "coredns"),
  };
}

export function cachedBinDir(): string {
  return join(cacheRoot(), "kube", KUBE_VERSION, "bin");
}

/**
 * Resolves the binaries without building: $VERSO_KUBE_BIN, then the cache.
 * Undefined when a build is needed.
 */
export function findBinaries(): KubeBinaries | undefined {
  const explicit = process.env.VERSO_KUBE_BIN;
  if (complete(explicit)) return inDir(explicit);
  const cached = cachedBinDir();
  if (complete(cached)) return inDir(cached);
  return undefined;
}

/**
 * Finds or builds the binaries. The build prints progress on stderr (forwarded to ours);
 * the first build takes tens of minutes on 2 cores, later calls are instant.
 */
export async function ensureBinaries(
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<KubeBinaries> {
  const found = findBinaries();
  if (found) return found;
  log(`[harness] kube binaries not cached; running ${BUILD_SCRIPT} (first build is slow)`);
  const started = Date.now();
  const dir = await runBuildScript(
    BUILD_SCRIPT,
    { VERSO_KUBE_VERSION: KUBE_VERSION },
    log,
    (last) => complete(last),
  );
  log(`[harness] kube binaries ready in ${((Date.now() - started) / 1000).toFixed(0)}s: ${dir}`);
  return inDir(dir);
}
