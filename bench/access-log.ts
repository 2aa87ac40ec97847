/**
 * The access log's own CPU per request, on Bun as the proxy runs it: formatting alone
 * (formatAccessLine), then the whole path (createAccessLog + the stdout sink, 10 ms batches).
 * Numbers go to stderr; stdout is the log itself, so send it somewhere:
 *
 *   bun bench/access-log.ts > /dev/null          (or | cat > /dev/null, a pipe like a pod's)
 *
 * The proxy's whole request costs ~55-65 µs of CPU (docs/routing.md, "Performance").
 */
import { createAccessLog, type RequestFacts } from "../sidecar/access-log/access-log.ts";
import { formatAccessLine } from "../sidecar/access-log/line.ts";
import { stdoutSink } from "../sidecar/access-log/stdout-sink.ts";

const LINES = 300_000;
const ctx = { app: "shop", version: "v2", color: "green", includeQuery: false };
const facts = (i: number): RequestFacts => ({
  startMs: Date.now(),
  durationMs: 1.25,
  route: "random",
  peer: i % 2 === 0 ? { addr: "10.251.1.7:15006", version: "v1" } : undefined,
  fallback: undefined,
  method: "GET",
  target: `/api/items/${i}?token=secret`,
  status: 200,
  bytes: 512,
  traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
});

/** CPU microseconds (user + system) per line spent in `work`. */
async function cpuPerLine(work: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  await work();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / LINES;
}

const inputs = Array.from({ length: LINES }, (_, i) => facts(i));
const formatAll = async (): Promise<void> => {
  let length = 0;
  for (const f of inputs) length += formatAccessLine(ctx, f).length;
  if (length === 0) throw new Error("nothing formatted");
};
await formatAll(); // warm-up: the JIT, not the first calls, is what a busy proxy runs
const format = await cpuPerLine(formatAll);
let dropped = 0;
const log = createAccessLog({
  ...ctx,
  capacity: 1 << 20,
  sink: stdoutSink(),
  onDrop: (n) => void (dropped += n),
});
const whole = await cpuPerLine(async () => {
  // In slices of 100 per millisecond (100,000 requests/s, more than a proxy serves on one
  // core), so the 10 ms flushes run between them as in the proxy.
  for (let i = 0; i < LINES; i += 100) {
    for (let j = i; j < i + 100; j++) log.record(inputs[j]!);
    await new Promise((r) => setTimeout(r, 1));
  }
  await log.drain(5_000);
});
process.stderr.write(
  `access log, ${LINES} lines on Bun ${Bun.version}: formatting ${format.toFixed(2)} µs/line, ` +
    `format + buffer + stdout ${whole.toFixed(2)} µs/line, dropped ${dropped}\n`,
);
