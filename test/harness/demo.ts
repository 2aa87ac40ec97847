/**
 * `make demo`: a real control plane on this machine, Verso's webhook (with its controller),
 * the stand-in kubelet, and the demo app from deploy/examples/. Prints
 * `export KUBECONFIG=<path>` once everything is ready, then the pods to curl; Ctrl-C tears
 * everything down.
 *
 *   node test/harness/demo.ts [--no-controller] [--no-examples] [--keep]
 */
import { parseArgs } from "node:util";
import { startCluster, type Cluster } from "./cluster.ts";
import type { List, Pod } from "./podTypes.ts";
import { EXAMPLES_DIR } from "./paths.ts";
import { isReady } from "./podStatus.ts";
import { waitFor } from "./ports.ts";
import { stopAll } from "./processes.ts";

const { values } = parseArgs({
  options: {
    "no-controller": { type: "boolean", default: false },
    "no-examples": { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
  },
});

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function main(): Promise<void> {
  const started = Date.now();
  const state: { cluster?: Cluster; stopping: boolean } = { stopping: false };
  const shutdown = (code: number): void => {
    if (state.stopping) return;
    state.stopping = true;
    log("[demo] stopping...");
    const done = state.cluster ? state.cluster.stop() : stopAll(2_000);
    void done.finally(() => process.exit(code));
  };
  process.on("SIGINT", () => shutdown(0));
  process.on("SIGTERM", () => shutdown(0));

  const cluster = await startCluster({
    controller: !values["no-controller"],
    signalHandlers: false,
    keepDir: values.keep,
    log,
  });
  state.cluster = cluster;
  if (!values["no-examples"]) {
    const res = await cluster.kubectl(["apply", "-k", EXAMPLES_DIR]);
    if (res.code !== 0) throw new Error(`kubectl apply -k ${EXAMPLES_DIR} failed: ${res.stderr}`);
    log(res.stdout.trim());
    const client = cluster.cp.client;
    const pods = await waitFor(
      "demo pods Ready",
      async () => {
        const list = await client.get<List<Pod>>("/api/v1/namespaces/demo/pods");
        const live = list.items.filter((p) => !p.metadata.deletionTimestamp);
        return live.length >= 2 && live.every(isReady) ? live : undefined;
      },
      180_000,
      500,
    );
    log(`[demo] ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    process.stdout.write(`export KUBECONFIG=${cluster.cp.kubeconfig}\n`);
    for (const pod of pods) {
      const ip = pod.status?.podIP ?? "?";
      const version = pod.metadata.labels?.["verso.dev/version"] ?? "";
      process.stdout.write(
        `# ${pod.metadata.name} (${version}): curl http://${ip}:8080/   ` +
          `proxy: curl http://${ip}:15006/   admin: curl http://${ip}:15020/metrics\n`,
      );
    }
  } else {
    process.stdout.write(`export KUBECONFIG=${cluster.cp.kubeconfig}\n`);
  }
  process.stdout.write(`# kubectl: ${cluster.cp.binaries.kubectl}\n# Ctrl-C to stop\n`);
}

main().catch((error: unknown) => {
  log(`[demo] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  void stopAll(2_000).finally(() => process.exit(1));
});
