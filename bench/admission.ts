/**
 * Admission benchmark (not a test): the real HTTPS server in this process, a keep-alive
 * client at a fixed concurrency, a realistic ReplicaSet pod that gets injected.
 *
 *   node bench/admission.ts [--concurrency 32] [--requests 5000] [--seconds 15] [--in-process]
 *
 * By default the server is the real `node webhook/main.ts` process (its own event loop, as in
 * a cluster); --in-process runs startServer() in the client's process instead.
 * --server-log-level info adds the one log line per admission that production writes.
 *
 * Prints latency p50/p99 (client-side, per request) and requests/s. Bounded by both count
 * and time; the machine is shared, so keep runs short.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { createLogger } from "../shared/log.ts";
import { startServer } from "../webhook/admission/server.ts";
import { parseConfig } from "../webhook/config.ts";
import { freePort, waitFor } from "../test/harness/ports.ts";
import { installExitHandlers, startProcess } from "../test/harness/processes.ts";
import { makeAgent, review, samplePod, send } from "../test/process/webhookClient.ts";

const { values } = parseArgs({
  options: {
    concurrency: { type: "string", default: "32" },
    requests: { type: "string", default: "5000" },
    seconds: { type: "string", default: "15" },
    "in-process": { type: "boolean", default: false },
    "server-log-level": { type: "string", default: "warn" },
  },
});
const concurrency = Number(values.concurrency);
const total = Number(values.requests);
const deadline = performance.now() + Number(values.seconds) * 1000;

const dir = mkdtempSync(join(tmpdir(), "verso-bench-"));
const flags = (listen: string): string[] => [
  "--listen",
  listen,
  "--no-controller",
  "--self-signed-dir",
  dir,
  "--log-level",
  values["server-log-level"],
];

async function startChild(): Promise<{ url: string; close: () => Promise<void> }> {
  // Same flags, own process: what a cluster replica does. Its log (one line per admission at
  // info) goes to a file, so the run pays for writing it without it reaching the terminal.
  installExitHandlers({ signals: true });
  const port = await freePort();
  const proc = startProcess({
    name: "webhook",
    command: process.execPath,
    args: ["webhook/main.ts", ...flags(`127.0.0.1:${port}`)],
    cwd: join(import.meta.dirname, ".."),
    logFile: join(dir, "webhook.log"),
  });
  const url = `https://127.0.0.1:${port}`;
  // At the default log level "webhook serving" is not logged, so readiness is /healthz.
  await waitFor(
    `webhook /healthz (log ${proc.logFile})`,
    async () => {
      if (!proc.running())
        throw new Error(`webhook exited:\n${readFileSync(proc.logFile, "utf8")}`);
      const probe = makeAgent(readFileSync(join(dir, "cert.pem"), "utf8"), 1);
      const r = await send(probe, `${url}/healthz`, "GET").finally(() => probe.destroy());
      return r.status === 200 ? true : undefined;
    },
    20_000,
    100,
  );
  return { url, close: async () => void (await proc.stop()) };
}

async function startInProcess(): Promise<{ url: string; close: () => Promise<void> }> {
  const parsed = parseConfig(flags("127.0.0.1:0"), {});
  if (!parsed.ok) throw new Error(parsed.error);
  const s = await startServer(parsed.value, { logger: createLogger("bench", "warn") });
  return { url: s.url, close: () => s.close() };
}

const server = values["in-process"] ? await startInProcess() : await startChild();
const agent = makeAgent(readFileSync(join(dir, "cert.pem"), "utf8"), concurrency);
const url = `${server.url}/mutate`;
const body = JSON.stringify(review(samplePod()));

async function run(count: number, record: number[] | undefined): Promise<number> {
  let issued = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (issued < count && performance.now() < deadline) {
      issued++;
      const t0 = performance.now();
      const r = await send(agent, url, "POST", body);
      const ms = performance.now() - t0;
      if (r.status !== 200 || !r.body.includes('"patchType":"JSONPatch"')) failed++;
      record?.push(ms);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return failed;
}

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

await run(Math.min(500, total), undefined); // warm-up: TLS sessions, JIT
const latencies: number[] = [];
const started = performance.now();
const failed = await run(total, latencies);
const elapsed = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);

console.log(
  JSON.stringify({
    bench: "admission",
    server: values["in-process"] ? "in-process" : "process",
    concurrency,
    requests: latencies.length,
    failed,
    seconds: Number(elapsed.toFixed(2)),
    rps: Math.round(latencies.length / elapsed),
    p50_ms: Number(pct(latencies, 50).toFixed(2)),
    p90_ms: Number(pct(latencies, 90).toFixed(2)),
    p99_ms: Number(pct(latencies, 99).toFixed(2)),
    max_ms: Number((latencies.at(-1) ?? NaN).toFixed(2)),
    request_bytes: Buffer.byteLength(body),
  }),
);
agent.destroy();
await server.close();
rmSync(dir, { recursive: true, force: true });
