/**
 * Proxy benchmark, one run, same machine, same upstream, same load for every path:
 *   direct        client -> app
 *   verso-local   client -> verso proxy (serves locally) -> app
 *   verso-forward client -> verso proxy v1 -> verso proxy v2 (hop token) -> app
 *   http-proxy    client -> minimal http-proxy server -> app (the library the issue named)
 *   node-minimal  client -> 30-line undici proxy -> app (the floor of any Node proxy)
 *   nginx         client -> nginx (worker_processes 1, upstream keepalive) -> app
 * For each: latency at a paced rate (default 1,000 req/s, wrk with a pacing script, see wrk()),
 * then max throughput (wrk, 1 thread, 32 connections), and the proxy's RSS idle and peak under load (total, and the anonymous part:
 * the rest is the node binary's own pages mapped from its file).
 *
 * "On the same core": with 2+ CPUs, during the max-throughput run every proxy (verso,
 * http-proxy, nginx) is pinned to the last CPU and the app, wrk and this script to the others,
 * so each proxy gets exactly one core and none competes with the load it serves. The latency
 * run is unpinned. The proxy's CPU use during the max run is reported too: a proxy under 100%
 * was held back by the app or the load generator, and req/s per proxy CPU-second compares
 * cores fairly in that case.
 *
 *   node bench/proxy.ts [--seconds 8] [--rate 1000] [--warmup 3] [--only verso-local,nginx]
 *                       [--no-pin] [--no-runtime-env] [--proxy-node-flags=...]
 * Needs wrk and taskset (apt-get install -y wrk util-linux); nginx is skipped with a note when
 * it is not installed (apt-get install -y nginx-light).
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PROXY_RUNTIME_ENV } from "../shared/pod-env.ts";
import { compileProduct } from "../test/harness/compiled.ts";
import { NODE, REPO_ROOT, SIDECAR_MAIN } from "../test/harness/paths.ts";
import { freePort, sleep, waitFor } from "../test/harness/ports.ts";
import {
  installExitHandlers,
  startProcess,
  stopAll,
  type ManagedProcess,
} from "../test/harness/processes.ts";
import { makeDir } from "../test/process/sidecar-fixture.ts";

const { values } = parseArgs({
  allowNegative: true,
  options: {
    seconds: { type: "string", default: "8" },
    rate: { type: "string", default: "1000" },
    connections: { type: "string", default: "32" },
    warmup: { type: "string", default: "3" },
    "pace-connections": { type: "string", default: "10" },
    only: { type: "string" },
    // The image runs compiled JS (Dockerfile.sidecar); `--ts` measures `npm run sidecar` instead.
    ts: { type: "boolean", default: false },
    pin: { type: "boolean", default: true },
    // The proxy runs with the env the webhook injects (PROXY_RUNTIME_ENV); --no-runtime-env
    // measures Node's defaults instead.
    "runtime-env": { type: "boolean", default: true },
    // Extra node flags for the verso proxies, e.g. "--max-semi-space-size=1".
    "proxy-node-flags": { type: "string", default: "" },
  },
});
const SECONDS = Number(values.seconds);
const RATE = Number(values.rate);
const CONNECTIONS = Number(values.connections);
const WARMUP_SECONDS = Number(values.warmup);
const PACE_CONNECTIONS = Number(values["pace-connections"]);
const HOST = "127.0.4.1";
const CPUS = availableParallelism();
const PIN = values.pin && CPUS >= 2;
/** taskset CPU lists: proxies on the last CPU, everything else on the rest. */
const PROXY_CPU = String(CPUS - 1);
const LOAD_CPUS = `0-${CPUS - 2}`;
const ALL_CPUS = `0-${CPUS - 1}`;
installExitHandlers({ signals: true });
const dir = makeDir("verso-bench-");
const PACE_SCRIPT = join(dir, "pace.lua");
writeFileSync(
  PACE_SCRIPT,
  `local gap = tonumber(os.getenv("WRK_GAP_MS"))\nfunction delay() return gap end\n`,
);

const has = (bin: string) => spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0;
if (!has("wrk")) {
  console.error("wrk is required: apt-get install -y wrk");
  process.exit(2);
}
if (PIN && !has("taskset")) {
  console.error("taskset is required to pin (apt-get install -y util-linux), or pass --no-pin");
  process.exit(2);
}
/** Move running processes (all their threads) to `cpus`. */
function setAffinity(pids: number[], cpus: string): void {
  if (!PIN) return;
  for (const pid of pids) spawnSync("taskset", ["-a", "-p", "-c", cpus, String(pid)]);
}
// This script samples memory and CPU during the max runs: off the proxies' core.
setAffinity([process.pid], LOAD_CPUS);
/** `command args` on `cpus` when pinning (taskset execs, so the pid stays the program's). */
const pinned = (cpus: string, command: string, args: string[]): [string, string[]] =>
  PIN ? ["taskset", ["-c", cpus, command, ...args]] : [command, args];

/** Compiled as the image is, so the numbers are those of what ships. */
function proxyMain(): string {
  return values.ts ? SIDECAR_MAIN : compileProduct(join(dir, "dist")).sidecarMain;
}

interface Mem {
  rss: number;
  /** Private memory; rss minus this is file-backed (the executable's pages). */
  anon: number;
}

function memOf(pids: number[]): Mem {
  const total = { rss: 0, anon: 0 };
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const kb = (field: string) =>
        Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
      total.rss += kb("VmRSS") * 1024;
      total.anon += kb("RssAnon") * 1024;
    } catch {
      // gone
    }
  }
  return total;
}

const maxMem = (a: Mem, b: Mem): Mem => (b.rss > a.rss ? b : a);

/** Process ids of `pid` and its descendants (nginx workers, node under `ip netns exec`). */
function tree(pid: number): number[] {
  const out = spawnSync("sh", ["-c", `pgrep -g ${pid} || true`], { encoding: "utf8" }).stdout;
  const pids = out.split(/\s+/).filter(Boolean).map(Number);
  return pids.length > 0 ? pids : [pid];
}

function spawnNode(
  name: string,
  args: string[],
  cpus = LOAD_CPUS,
  env: Record<string, string> = {},
): ManagedProcess {
  const [command, argv] = pinned(cpus, NODE, args);
  return startProcess({
    name,
    command,
    args: argv,
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    logFile: join(dir, `${name}.log`),
  });
}

async function listening(url: string): Promise<void> {
  await waitFor(
    url,
    async () => ((await fetch(url).catch(() => undefined))?.ok ? true : undefined),
    15_000,
    100,
  );
}

interface Target {
  name: string;
  url: string;
  /** Processes whose RSS counts as "the proxy" (empty for direct). */
  pids: number[];
}

let appPid = 0;

async function startAll(): Promise<Target[]> {
  const appPort = await freePort(HOST);
  const appScript = join(dir, "app.mjs");
  // The upstream: a fixed 2-byte body, the cheapest honest app, so the proxy dominates.
  writeFileSync(
    appScript,
    `import http from "node:http";
http.createServer((req, res) => { req.resume(); res.setHeader("content-type", "text/plain"); res.end("ok"); })
  .listen(${appPort}, "${HOST}");\n`,
  );
  appPid = spawnNode("app", [appScript]).pid;
  const app = `${HOST}:${appPort}`;
  await listening(`http://${app}/`);
  const main = proxyMain();
  const targets: Target[] = [{ name: "direct", url: `http://${app}/`, pids: [] }];
  const hopKey = Buffer.from("bench-hop-key-0123456789abcdefgh").toString("base64");

  const verso = async (
    name: string,
    host: string,
    version: string,
    routes: object,
    port?: number,
  ) => {
    const p = port ?? (await freePort(host));
    const admin = await freePort(host);
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify({ ...routes, hopKey }));
    const proc = spawnNode(
      name,
      [
        ...(values["proxy-node-flags"] ?? "").split(" ").filter(Boolean),
        main,
        "--listen",
        `${host}:${p}`,
        "--app",
        app,
        "--admin",
        `${host}:${admin}`,
        "--app-name",
        "bench",
        "--version",
        version,
        "--routes",
        file,
        "--log-level",
        "warn",
      ],
      PROXY_CPU,
      values["runtime-env"] ? PROXY_RUNTIME_ENV : {},
    );
    await listening(`http://${host}:${admin}/ready`);
    return { url: `http://${host}:${p}/`, pid: proc.pid, port: p };
  };
  const local = await verso("verso-local", "127.0.4.2", "v1", {
    app: "bench",
    revision: 1,
    endpoints: {},
  });
  targets.push({ name: "verso-local", url: local.url, pids: [local.pid] });

  const v2Port = await freePort("127.0.4.4");
  const fwdTable = {
    app: "bench",
    revision: 1,
    release: { version: "v2", strategy: "canary", weight: 100 },
    endpoints: { v1: [], v2: [`127.0.4.4:${v2Port}`] },
  };
  const b = await verso("verso-forward-v2", "127.0.4.4", "v2", fwdTable, v2Port);
  const a = await verso("verso-forward-v1", "127.0.4.3", "v1", fwdTable);
  targets.push({ name: "verso-forward", url: a.url, pids: [a.pid, b.pid] });

  // The two Node references: the library the issue named, and the runtime's floor.
  const reference = async (name: string, script: string, host: string): Promise<void> => {
    const port = await freePort(host);
    const proc = spawnNode(
      name,
      [join(REPO_ROOT, "bench", script), `${host}:${port}`, app],
      PROXY_CPU,
    );
    await listening(`http://${host}:${port}/`);
    targets.push({ name, url: `http://${host}:${port}/`, pids: [proc.pid] });
  };
  await reference("http-proxy", "http-proxy-server.ts", "127.0.4.5");
  await reference("node-minimal", "undici-minimal-server.ts", "127.0.4.7");

  if (has("nginx")) {
    const port = await freePort("127.0.4.6");
    const conf = join(dir, "nginx.conf");
    writeFileSync(
      conf,
      `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  upstream app { server ${app}; keepalive 64; }
  server {
    listen 127.0.4.6:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
    }
  }
}\n`,
    );
    const [command, args] = pinned(PROXY_CPU, "nginx", [
      "-c",
      conf,
      "-p",
      dir,
      "-g",
      "daemon off;",
    ]);
    const nginx = startProcess({ name: "nginx", command, args, logFile: join(dir, "nginx.log") });
    await listening(`http://127.0.4.6:${port}/`);
    targets.push({ name: "nginx", url: `http://127.0.4.6:${port}/`, pids: tree(nginx.pid) });
  } else {
    console.warn("nginx not installed (apt-get install -y nginx-light): skipping the reference");
  }
  return targets;
}

/** CPU seconds (user + system) used so far by `pids` (clock ticks of 10 ms). */
function cpuOf(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks / 100;
}

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** Socket errors plus non-2xx/3xx answers. */
  errors: number;
}

/**
 * One wrk run (asynchronous, so the memory sampler keeps running). `paced`: each connection
 * waits `gap` ms after each response, so PACE_CONNECTIONS connections make about RATE req/s.
 * wrk is C and measures each request from its own send: a Node generator's event loop put
 * 1-5 ms of its own into the direct baseline's p99 here, more than the effect being measured.
 * Closed loop: a stall longer than the gap would be under-counted (none was seen: see max p99).
 */
async function wrk(url: string, seconds: number, paced: boolean): Promise<WrkResult> {
  const load = paced ? [`-c${PACE_CONNECTIONS}`, "-s", PACE_SCRIPT] : [`-c${CONNECTIONS}`];
  const [command, args] = pinned(LOAD_CPUS, "wrk", [
    "-t1",
    ...load,
    `-d${seconds}s`,
    "--latency",
    url,
  ]);
  const gapMs = (PACE_CONNECTIONS * 1000) / RATE;
  const child = spawn(command, args, {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, WRK_GAP_MS: String(gapMs) },
  });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  await once(child, "close");
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const ms = (label: string) => {
    const m = new RegExp(`${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
  };
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
    .exec(out)
    ?.slice(1)
    .reduce((a, b) => a + Number(b), 0);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50: ms("50"),
    p99: ms("99"),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN),
    errors: (socketErrors ?? 0) + num(/Non-2xx or 3xx responses: (\d+)/),
  };
}

const mb = (b: number) => (b / 1024 / 1024).toFixed(1);

async function main(): Promise<void> {
  const only = values.only?.split(",");
  const targets = (await startAll()).filter(
    (t) => !only || t.name === "direct" || only.includes(t.name),
  );
  const rows: string[] = [];
  let direct = { p50: 0, p99: 0 };
  let directMax = { p50: 0, p99: 0 };
  const results: Record<string, { rps: number; cpuShare: number }> = {};
  // Idle: started, table loaded, one request served (no load yet).
  await sleep(500);
  const idleOf = new Map(targets.map((t) => [t.name, memOf(t.pids)]));
  for (const t of targets) {
    const idle = idleOf.get(t.name) ?? { rss: 0, anon: 0 };
    // Memory is sampled through each phase; the fixed rate goes first, since V8 keeps what the
    // saturating run grew to.
    const during = async <T>(phase: () => Promise<T>): Promise<[T, Mem]> => {
      let peak = memOf(t.pids);
      const sampler = setInterval(() => (peak = maxMem(peak, memOf(t.pids))), 100);
      try {
        return [await phase(), maxMem(peak, memOf(t.pids))];
      } finally {
        clearInterval(sampler);
      }
    };
    // Latency at the fixed rate runs unpinned, placed by the scheduler as in a pod; max
    // throughput pinned, the proxy alone on its core.
    setAffinity([...t.pids, appPid, process.pid], ALL_CPUS);
    // Warm up at the measured rate (JIT tiers, pools, V8 heap sized to it): a saturating
    // warm-up would leave its memory behind in the @rate column.
    await wrk(t.url, WARMUP_SECONDS, true);
    const [fixed, atRate] = await during(() => wrk(t.url, SECONDS, true));
    setAffinity(t.pids, PROXY_CPU);
    setAffinity([appPid, process.pid], LOAD_CPUS);
    await sleep(500);
    const cpu0 = cpuOf(t.pids);
    const [max, atMax] = await during(() => wrk(t.url, SECONDS, false));
    const cpuUsed = cpuOf(t.pids) - cpu0;
    if (t.name === "direct") {
      direct = fixed;
      directMax = max;
    }
    const proxied = t.pids.length > 0;
    const cpuShare = proxied ? cpuUsed / SECONDS : NaN;
    results[t.name] = { rps: max.rps, cpuShare };
    const added = (a: number, b: number) => (proxied ? (a - b).toFixed(3) : "-");
    const or = (ok: boolean, text: () => string) => (ok ? text() : "-");
    rows.push(
      [
        t.name,
        max.rps.toFixed(0),
        or(proxied, () => (cpuShare * 100).toFixed(0)),
        or(proxied, () => ((cpuUsed / max.requests) * 1e6).toFixed(0)),
        `${max.p50.toFixed(2)} / ${max.p99.toFixed(2)}`,
        `${fixed.rps.toFixed(0)}: ${fixed.p50.toFixed(3)} / ${fixed.p99.toFixed(3)}`,
        `${added(fixed.p50, direct.p50)} / ${added(fixed.p99, direct.p99)}`,
        added(max.p99, directMax.p99),
        or(proxied, () => `${mb(idle.rss)} / ${mb(atRate.rss)} / ${mb(atMax.rss)}`),
        or(proxied, () => `${mb(idle.anon)} / ${mb(atRate.anon)} / ${mb(atMax.anon)}`),
        String(fixed.errors + max.errors),
      ].join(" | "),
    );
    console.error(`done: ${t.name}`);
  }
  console.log(
    `\nproxy benchmark: ${SECONDS}s per run, wrk -t1 -c${CONNECTIONS} for max, ~${RATE} req/s paced (wrk -c${PACE_CONNECTIONS}, ${WARMUP_SECONDS}s warm-up) for latency, ` +
      `node ${process.version}, proxy from ${values.ts ? "TypeScript (type stripping)" : "compiled JS"}, ` +
      `proxy env ${values["runtime-env"] ? JSON.stringify(PROXY_RUNTIME_ENV) : "Node defaults"}, ${PIN ? `max runs with proxies pinned to CPU ${PROXY_CPU}, load and app on CPU ${LOAD_CPUS}; latency runs unpinned` : "not pinned"}, ${new Date().toISOString()}\n`,
  );
  console.log(
    "| path | max req/s | proxy CPU % | proxy CPU µs/req | max p50 / p99 ms | @rate req/s: p50 / p99 ms | added @rate p50 / p99 ms | added max p99 ms | RSS idle / @rate / max MB | private idle / @rate / max MB | errors |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r} |`);
  const ratio = (a: string, b: string) => {
    const x = results[a];
    const y = results[b];
    if (!x || !y) return;
    console.log(
      `${a} / ${b}: throughput ${(x.rps / y.rps).toFixed(2)}, ` +
        `per proxy CPU-second ${(x.rps / x.cpuShare / (y.rps / y.cpuShare)).toFixed(2)}`,
    );
  };
  console.log("");
  ratio("verso-local", "nginx");
  ratio("verso-local", "http-proxy");
  ratio("verso-local", "node-minimal");
  ratio("node-minimal", "nginx");
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
