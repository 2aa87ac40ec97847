/**
 * gRPC benchmark: one run, same machine, same upstream, same load for every row; unary calls of
 * /verso.bench.Echo/Unary (bench/echo.proto, an 18-byte Msg each way).
 *
 *   direct              client -> app (the latency baseline; always runs)
 *   verso-grpc-local    client -> Verso's gRPC listener (--grpc-listen) -> app. Routing is on:
 *                       a release whose match rules do not match and whose weight is 0, so
 *                       decide() evaluates the rules and the split on every call.
 *   verso-grpc-forward  client -> Verso v1 -> Verso v2 (hop token, the table's grpcEndpoints)
 *                       -> app, release weight 100
 *   nginx-grpc          client -> nginx `grpc_pass` (1 worker, upstream keepalive) -> app
 * Verso runs as the image runs it: the bundle (`bun build`, as Dockerfile.sidecar; --ts runs
 * sidecar/main.ts) on Bun with PROXY_RUNTIME_ENV, both listeners (HTTP in front of
 * bench/upstream-app.ts, gRPC in front of the gRPC app).
 * The app is bench/grpc-app (grpc-go, GOMAXPROCS=1, echoes each request message): ~18 µs of CPU
 * a call here, where node:http2 (the demo app) and Go's net/http h2c cost 70-80 µs; it shares
 * a core with the load generator and must not be what saturates.
 *
 * Load generators, both C or Go, never Node:
 * - ghz (a real gRPC client: protobuf from bench/echo.proto, every grpc-status checked) for
 *   the paced latency runs, ~--rate calls/s (--pace-concurrency workers, one connection).
 *   Built once from the Go module proxy into $VERSO_CACHE/tools/ghz/<--ghz-version>/bin.
 * - h2load (nghttp2, apt-get install nghttp2-client) for max throughput: ghz costs ~150 µs of
 *   CPU a call and would saturate before the proxy; h2load ~5 µs. It POSTs the gRPC-framed
 *   request with content-type application/grpc and te: trailers; it checks only :status, so a
 *   call counts as an error unless its response message arrived (DATA bytes per call).
 *
 * Phases, in this order (a saturating run leaves memory behind, so it never precedes a paced
 * one): idle RSS (started, table loaded, one call served); a paced warm-up per row; --rounds
 * latency rounds (ghz, unpinned); --rounds throughput rounds (h2load -t1 -c--connections
 * -m--streams, each row's proxies pinned to the last CPU, app and h2load on the others;
 * verso-grpc-forward's two proxies share the core); then the mixed memory check: the
 * verso-grpc-local proxy (pinned) under wrk -c--http-connections on its HTTP listener and
 * h2load on its gRPC listener at once for --mixed-seconds, peak RSS against the issue's 64 MB.
 * Each round runs every row once, in an order rotated by one per round; medians over rounds.
 * "Added" latency is the row's median p50/p99 minus direct's. RSS and its private part
 * (RssAnon) are sampled every 100 ms per proxy process (nginx: master + worker); a forward
 * row shows the larger of its two proxies, and the CPU of both.
 *
 *   node bench/grpc.ts [--seconds 4] [--rounds 5] [--only verso-grpc-local,nginx-grpc]
 *     [--rate 1000] [--warmup 3] [--pace-concurrency 10] [--connections 4] [--streams 8]
 *     [--http-connections 32] [--mixed-seconds 10] [--ghz-version v0.121.0] [--no-pin] [--ts]
 *     [--json FILE]
 * Needs go (builds ghz and the app), h2load, wrk and taskset; nginx is skipped with a note
 * when absent. Default run: ~3.5 minutes (plus ~3 the first time, building ghz).
 * Prints markdown tables and the issue's target (met or not) to stdout, progress to stderr.
 */
import { spawnSync } from "node:child_process";
import { existsSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PROXY_RUNTIME_ENV } from "../shared/pod-env.ts";
import { BUN, cacheRoot, REPO_ROOT } from "../test/harness/paths.ts";
import { sleep, waitFor } from "../test/harness/ports.ts";
import { installExitHandlers } from "../test/harness/processes.ts";
import { makeDir } from "../test/process/sidecar-fixture.ts";
import {
  addressOn,
  answering,
  cpuOf,
  fixed,
  group,
  has,
  launcher,
  loadAverage,
  markdown,
  mb,
  output,
  parseWrk,
  pinning,
  sampled,
  versionOf,
  versoMain,
  type Mem,
  type Proxy,
  type WrkResult,
} from "./lib.ts";
import {
  measure,
  nginxConf,
  pidsOf,
  printRowTables,
  routeTable,
  rowsJson,
  run,
  selectRows,
  summary,
  type RowResult,
} from "./rows.ts";

const ROWS = ["verso-grpc-local", "verso-grpc-forward", "nginx-grpc"] as const;
type RowName = "direct" | (typeof ROWS)[number];

const { values } = parseArgs({
  allowNegative: true,
  options: {
    seconds: { type: "string", default: "4" },
    rounds: { type: "string", default: "5" },
    rate: { type: "string", default: "1000" },
    warmup: { type: "string", default: "3" },
    "pace-concurrency": { type: "string", default: "10" },
    connections: { type: "string", default: "4" },
    streams: { type: "string", default: "8" },
    "http-connections": { type: "string", default: "32" },
    "mixed-seconds": { type: "string", default: "10" },
    "ghz-version": { type: "string", default: "v0.121.0" },
    only: { type: "string" },
    pin: { type: "boolean", default: true },
    json: { type: "string" },
    ts: { type: "boolean", default: false },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const RATE = Number(values.rate);
const WARMUP_SECONDS = Number(values.warmup);
const PACE_CONCURRENCY = Number(values["pace-concurrency"]);
const CONNECTIONS = Number(values.connections);
const STREAMS = Number(values.streams);
const HTTP_CONNECTIONS = Number(values["http-connections"]);
const MIXED_SECONDS = Number(values["mixed-seconds"]);
const GHZ_VERSION = values["ghz-version"];
const wanted: (r: RowName) => boolean = selectRows(values.only, ROWS);
/** The issue's bound for one proxy with both listeners under max load at once. */
const MIXED_RSS_MB = 64;

for (const [bin, install] of [
  ["go", "Go 1.24 or later"],
  ["h2load", "apt-get install -y nghttp2-client"],
  ["wrk", "apt-get install -y wrk (or make bench-tools)"],
]) {
  if (!has(bin!)) {
    console.error(`${bin} is required: ${install}`);
    process.exit(2);
  }
}
const cpus = pinning(values.pin);

installExitHandlers({ signals: true });
const dir = makeDir("verso-bench-grpc-");
const verso = versoMain(dir, values.ts);
const launch = launcher(dir);
const progress = (text: string) => console.error(`[bench/grpc] ${text}`);

// ---- tools and the app -------------------------------------------------------------------

const GO_ENV = { GOTOOLCHAIN: "local", CGO_ENABLED: "0", GOFLAGS: "-buildvcs=false" };

/** ghz at --ghz-version, built once from the Go module proxy into the cache (as build-kube.sh). */
function ghz(): string {
  const root = join(cacheRoot(), "tools", "ghz", GHZ_VERSION);
  const bin = join(root, "bin", "ghz");
  if (existsSync(bin)) return bin;
  const staging = join(root, `bin.${process.pid}`);
  progress(`building ghz ${GHZ_VERSION} from the Go module proxy into ${root} (once, ~3 min)`);
  const t0 = Date.now();
  const build = spawnSync("go", ["install", `github.com/bojand/ghz/cmd/ghz@${GHZ_VERSION}`], {
    env: { ...process.env, ...GO_ENV, GOBIN: staging },
    stdio: ["ignore", 2, 2],
  });
  if (build.status !== 0) throw new Error(`go install ghz@${GHZ_VERSION} failed`);
  rmSync(join(root, "bin"), { recursive: true, force: true });
  renameSync(staging, join(root, "bin"));
  progress(`ghz built in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
  return bin;
}

/** bench/grpc-app built into the run's directory (Go's build cache makes it quick after once). */
function buildGrpcApp(): string {
  const bin = join(dir, "grpc-app");
  progress("building bench/grpc-app (grpc-go)");
  const build = spawnSync("go", ["build", "-o", bin, "."], {
    cwd: join(REPO_ROOT, "bench", "grpc-app"),
    env: { ...process.env, ...GO_ENV },
    stdio: ["ignore", 2, 2],
  });
  if (build.status !== 0) throw new Error("go build bench/grpc-app failed");
  return bin;
}

/** The call every row serves: Msg{data: "verso-bench-call"} as JSON (ghz) and framed (h2load). */
const DATA = Buffer.from("verso-bench-call");
const MESSAGE = Buffer.concat([Buffer.from([0x0a, DATA.length]), DATA]);
const FRAME = Buffer.concat([Buffer.from([0, 0, 0, 0, MESSAGE.length]), MESSAGE]);
const CALL_FILE = join(dir, "call.bin");
writeFileSync(CALL_FILE, FRAME);
const METHOD = "/verso.bench.Echo/Unary";

// ---- the rows ----------------------------------------------------------------------------

interface Row {
  name: RowName;
  /** host:port the client calls. */
  target: string;
  /** Empty for direct; two for verso-grpc-forward (v1, v2). */
  proxies: Proxy[];
}

interface Rows {
  rows: Row[];
  appPids: number[];
  /** The verso-grpc-local proxy's HTTP listener, for the mixed check. */
  localHttp?: string;
}

async function startRows(): Promise<Rows> {
  const appHost = "127.0.5.1";
  const app = await addressOn(appHost);
  const grpcPid = launch("grpc-app", buildGrpcApp(), [app], { GOMAXPROCS: "1" });
  await serving(app);
  const httpApp = await addressOn(appHost);
  const httpPid = launch("app", BUN, [join(REPO_ROOT, "bench", "upstream-app.ts"), httpApp]);
  await answering(`http://${httpApp}/`);
  const rows: Row[] = [{ name: "direct", target: app, proxies: [] }];
  const out: Rows = { rows, appPids: [grpcPid, httpPid] };

  const v2Host = "127.0.5.4";
  const v2 = { http: await addressOn(v2Host), grpc: await addressOn(v2Host) };
  /** One Verso with both listeners; its HTTP and gRPC addresses. */
  const startVerso = async (o: {
    name: string;
    host: string;
    version: string;
    weight: number;
    listen?: { http: string; grpc: string };
  }) => {
    const listen = o.listen ?? { http: await addressOn(o.host), grpc: await addressOn(o.host) };
    const admin = await addressOn(o.host);
    const routes = join(dir, `${o.name}.json`);
    writeFileSync(routes, JSON.stringify(routeTable(o.weight, { v2: v2.http, grpcV2: v2.grpc })));
    const pid = launch(
      o.name,
      BUN,
      [
        ...[verso(), "--listen", listen.http, "--app", httpApp, "--admin", admin],
        ...["--grpc-listen", listen.grpc, "--grpc-app", app],
        ...["--app-name", "bench", "--version", o.version, "--routes", routes],
        ...["--log-level", "warn"],
      ],
      PROXY_RUNTIME_ENV,
    );
    await answering(`http://${admin}/ready`);
    return { proxy: { label: o.name, pids: [pid] }, ...listen };
  };

  if (wanted("verso-grpc-local")) {
    const v = await startVerso({
      name: "verso-grpc-local",
      host: "127.0.5.2",
      version: "v1",
      weight: 0,
    });
    await serving(v.grpc);
    rows.push({ name: "verso-grpc-local", target: v.grpc, proxies: [v.proxy] });
    out.localHttp = v.http;
  }
  if (wanted("verso-grpc-forward")) {
    const b = await startVerso({
      name: "verso-grpc-forward-v2",
      host: v2Host,
      version: "v2",
      weight: 100,
      listen: v2,
    });
    const a = await startVerso({
      name: "verso-grpc-forward-v1",
      host: "127.0.5.3",
      version: "v1",
      weight: 100,
    });
    await serving(a.grpc);
    rows.push({ name: "verso-grpc-forward", target: a.grpc, proxies: [a.proxy, b.proxy] });
  }
  if (wanted("nginx-grpc") && has("nginx")) {
    const host = "127.0.5.6";
    const listen = await addressOn(host);
    const conf = join(dir, "nginx.conf");
    writeFileSync(conf, nginxHttp(listen, app));
    const pid = launch("nginx", "nginx", ["-c", conf, "-p", dir, "-g", "daemon off;"]);
    await serving(listen);
    rows.push({
      name: "nginx-grpc",
      target: listen,
      proxies: [{ label: "nginx", pids: group(pid) }],
    });
  } else if (wanted("nginx-grpc")) {
    progress("nginx not installed (apt-get install -y nginx-light): skipping its row");
  }
  return out;
}

/**
 * nginx's gRPC proxy (ngx_http_grpc_module, built into Debian's nginx-light): h2c in, one
 * worker, upstream keepalive. keepalive_requests lifted on both sides: nginx's default 1,000
 * calls per connection ends the client's connection with GOAWAY (h2load does not reconnect).
 */
function nginxHttp(listen: string, app: string): string {
  return nginxConf(
    dir,
    `  keepalive_requests 1000000;
  upstream app { server ${app}; keepalive 64; keepalive_requests 1000000; }
  server {
    listen ${listen} http2;
    location / { grpc_pass grpc://app; }
  }`,
  );
}

// ---- load ------------------------------------------------------------------------------

interface Run {
  rps: number;
  /** ms; NaN for h2load runs (throughput only). */
  p50: number;
  p99: number;
  /** Calls answered OK. */
  calls: number;
  errors: number;
  /** CPU seconds the row's proxies used during the run. */
  cpu: number;
  /** ghz: calls by grpc-status name. */
  statuses?: Record<string, number>;
}

interface H2loadResult {
  rps: number;
  calls: number;
  errors: number;
}

/**
 * h2load on `target`: -t1 -c`connections` -m`streams`, for `seconds` or `count` calls. A call
 * is OK when h2load saw it succeed and its response message arrived: a proxy's error is a
 * trailers-only answer with :status 200, which h2load alone would count as a success.
 */
async function h2load(
  target: string,
  load: { connections: number; streams: number; seconds?: number; count?: number },
): Promise<H2loadResult> {
  const args = [
    ...["-t1", `-c${load.connections}`, `-m${load.streams}`],
    ...(load.count ? ["-n", String(load.count)] : ["-D", String(load.seconds)]),
    ...["-d", CALL_FILE, "-H", "content-type: application/grpc", "-H", "te: trailers"],
    `http://${target}${METHOD}`,
  ];
  const out = await output(...cpus.onLoadCpus("h2load", args));
  const n = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const succeeded = n(/(\d+) succeeded/);
  const failed = n(/(\d+) failed/) + n(/(\d+) errored/) + n(/(\d+) timeout/);
  const withMessage = Math.floor(n(/\((\d+)\) data/) / FRAME.length);
  const calls = Math.min(succeeded, withMessage);
  return {
    rps: n(/finished in [\d.]+s, ([\d.]+) req\/s/) * (succeeded > 0 ? calls / succeeded : 0),
    calls,
    errors: failed + succeeded - calls,
  };
}

/** Until one call to `target` has been answered with its message. */
async function serving(target: string): Promise<void> {
  await waitFor(
    `a gRPC call to ${target}`,
    async () => {
      const r = await h2load(target, { connections: 1, streams: 1, count: 1 });
      return r.calls === 1 ? true : undefined;
    },
    15_000,
    200,
  );
}

interface GhzReport {
  count: number;
  rps: number;
  latencyDistribution: { percentage: number; latency: number }[] | null;
  statusCodeDistribution: Record<string, number> | null;
}

/** ghz: RATE × `seconds` calls at ~RATE calls/s (PACE_CONCURRENCY workers, one connection). */
async function paced(row: Row, seconds: number, ghzBin: string): Promise<Run> {
  const args = [
    ...["--insecure", "--proto", join(REPO_ROOT, "bench", "echo.proto")],
    ...[
      "--call",
      "verso.bench.Echo.Unary",
      "-d",
      JSON.stringify({ data: DATA.toString("base64") }),
    ],
    ...["--rps", String(RATE), "-c", String(PACE_CONCURRENCY), "--connections", "1"],
    // A count, not a duration: at the end of -z ghz closes its connection under the calls in
    // flight and counts them UNAVAILABLE; with -n every call is answered.
    ...["-n", String(Math.round(RATE * seconds)), "--format", "json", row.target],
  ];
  const cpu0 = cpuOf(pidsOf(row));
  const out = await output(ghzBin, args);
  const cpu = cpuOf(pidsOf(row)) - cpu0;
  const report = JSON.parse(out || "{}") as Partial<GhzReport>;
  const ms = (p: number) =>
    (report.latencyDistribution?.find((l) => l.percentage === p)?.latency ?? NaN) / 1e6;
  const ok = report.statusCodeDistribution?.OK ?? 0;
  return {
    rps: report.rps ?? NaN,
    p50: ms(50),
    p99: ms(99),
    calls: ok,
    errors: (report.count ?? 0) - ok,
    cpu,
    statuses: report.statusCodeDistribution ?? {},
  };
}

/** h2load at max for `seconds` (the caller pins). */
async function max(row: Row, seconds: number): Promise<Run> {
  const cpu0 = cpuOf(pidsOf(row));
  const r = await h2load(row.target, { connections: CONNECTIONS, streams: STREAMS, seconds });
  return { ...r, p50: NaN, p99: NaN, cpu: cpuOf(pidsOf(row)) - cpu0 };
}

interface Mixed {
  http: WrkResult;
  grpc: H2loadResult;
  peak: Mem;
  /** CPU seconds of the proxy. */
  cpu: number;
}

/** The local proxy pinned, wrk on its HTTP listener and h2load on its gRPC listener at once. */
async function mixed(proxy: Proxy, http: string, grpc: string): Promise<Mixed> {
  const wrkArgs = ["-t1", `-c${HTTP_CONNECTIONS}`, `-d${MIXED_SECONDS}s`, "--latency"];
  const cpu0 = cpuOf(proxy.pids);
  const [[w, g], peaks] = await sampled([proxy], () =>
    Promise.all([
      output(...cpus.onLoadCpus("wrk", [...wrkArgs, `http://${http}/`])).then(parseWrk),
      h2load(grpc, { connections: CONNECTIONS, streams: STREAMS, seconds: MIXED_SECONDS }),
    ]),
  );
  return { http: w, grpc: g, peak: peaks[0]!, cpu: cpuOf(proxy.pids) - cpu0 };
}

// ---- the run -----------------------------------------------------------------------------

async function main(): Promise<void> {
  const loadBefore = loadAverage();
  const started = new Date();
  const ghzBin = ghz();
  const { rows, appPids, localHttp } = await startRows();
  const { results, everyone } = await measure({
    rows,
    others: appPids,
    cpus,
    rounds: ROUNDS,
    seconds: SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    paced: (row, seconds) => paced(row, seconds, ghzBin),
    max,
    progress: (phase) =>
      progress(
        phase === "latency"
          ? `latency: ghz ~${RATE} calls/s, warm-up ${WARMUP_SECONDS}s per row, ${ROUNDS} rounds`
          : `throughput: h2load, ${ROUNDS} rounds, proxies pinned to CPU ${cpus.proxyCpu}`,
      ),
  });

  const local = rows.find((r) => r.name === "verso-grpc-local");
  let mix: Mixed | undefined;
  if (local && localHttp && MIXED_SECONDS > 0) {
    progress(`mixed: HTTP (wrk) and gRPC (h2load) at once on verso-grpc-local, ${MIXED_SECONDS}s`);
    cpus.setAffinity(local.proxies[0]!.pids, cpus.proxyCpu);
    await sleep(300);
    mix = await mixed(local.proxies[0]!, localHttp, local.target);
  }
  cpus.setAffinity(everyone, cpus.allCpus);
  report(rows, results, mix, { started, loadBefore, loadAfter: loadAverage() });
}

// ---- the report --------------------------------------------------------------------------

function report(
  rows: Row[],
  results: Map<RowName, RowResult<Run>>,
  mix: Mixed | undefined,
  when: { started: Date; loadBefore: string; loadAfter: string },
): void {
  const { r, added, rps, perCpu } = summary(results, (run) => run.calls);
  const goVersion = versionOf("go", ["version"], /go([\d.]+)/);

  console.log(
    `\n## gRPC benchmark, ${when.started.toISOString()}\n\n` +
      `${cpus.cpus} CPUs, load average before ${when.loadBefore}, after ${when.loadAfter}. ` +
      `Bun ${versionOf(BUN, ["--version"])}, nginx ${versionOf("nginx", ["-v"], /nginx\/([\d.]+)/)} (grpc_pass), ` +
      `ghz ${GHZ_VERSION}, h2load ${versionOf("h2load", ["--version"], /nghttp2\/([\d.]+)/)}, Go ${goVersion}; ` +
      `app: bench/grpc-app (grpc-go, GOMAXPROCS=1, echoes an 18-byte Msg). ` +
      `${ROUNDS} rounds of ${SECONDS}s per row and phase; medians (min–max over rounds). ` +
      `Latency: ghz ~${RATE} calls/s (-c${PACE_CONCURRENCY}, 1 connection, ${WARMUP_SECONDS}s warm-up), unpinned. ` +
      `Max: h2load -t1 -c${CONNECTIONS} -m${STREAMS}, ${cpus.pin ? `proxies pinned to CPU ${cpus.proxyCpu}, app and h2load on CPU ${cpus.loadCpus}` : "not pinned"}. ` +
      `Verso on Bun from ${values.ts ? "sidecar/main.ts" : "the image's bundle (bun build)"}, env ${JSON.stringify(PROXY_RUNTIME_ENV)}, both listeners.\n`,
  );
  printRowTables(rows, results, {
    unit: "call",
    served: (run) => run.calls,
    seconds: SECONDS,
    nginx: "nginx-grpc",
    forward: "verso-grpc-forward",
    loadGenerator: "h2load",
  });

  const lines: string[] = [];
  const check = (ok: boolean, text: string) => lines.push(`- ${ok ? "met" : "NOT met"}: ${text}`);
  if (mix) {
    console.log(
      `\nMixed: one proxy (verso-grpc-local, pinned to CPU ${cpus.pin ? cpus.proxyCpu : "-"}), ` +
        `wrk -t1 -c${HTTP_CONNECTIONS} on its HTTP listener and h2load -t1 -c${CONNECTIONS} -m${STREAMS} ` +
        `on its gRPC listener at once, ${MIXED_SECONDS}s, after the rounds above\n`,
    );
    console.log(
      markdown(
        [
          "HTTP req/s",
          "gRPC calls/s",
          "proxy CPU %",
          "peak RSS MB",
          "peak private MB",
          "errors (HTTP / gRPC)",
        ],
        [
          [
            fixed(0)(mix.http.rps),
            fixed(0)(mix.grpc.rps),
            fixed(0)((mix.cpu / MIXED_SECONDS) * 100),
            mb(mix.peak.rss),
            mb(mix.peak.anon),
            `${mix.http.errors} / ${mix.grpc.errors}`,
          ],
        ],
      ),
    );
    const rss = mix.peak.rss / 2 ** 20;
    check(
      rss <= MIXED_RSS_MB,
      `one proxy, HTTP and gRPC listeners both at max load: peak RSS ${rss.toFixed(1)} MB ≤ ${MIXED_RSS_MB}`,
    );
  }
  const notes: string[] = [];
  for (const name of ["verso-grpc-local", "verso-grpc-forward"] as const) {
    if (!r(name) || !r("nginx-grpc")) continue;
    notes.push(
      `- ${name}: max calls/s ${rps(name).toFixed(0)} = ${(rps(name) / rps("nginx-grpc")).toFixed(2)}× nginx grpc_pass's ${rps("nginx-grpc").toFixed(0)}, ` +
        `per proxy CPU-second ${(perCpu(name) / perCpu("nginx-grpc")).toFixed(2)}×; ` +
        `added p50/p99 ${fixed(3)(added(r(name)!, "p50"))}/${fixed(3)(added(r(name)!, "p99"))} ms ` +
        `vs nginx's ${fixed(3)(added(r("nginx-grpc")!, "p50"))}/${fixed(3)(added(r("nginx-grpc")!, "p99"))} ms`,
    );
  }
  if (lines.length > 0) console.log(`\nTargets (verso on Bun):\n${lines.join("\n")}`);
  if (notes.length > 0) console.log(`\nCompared with nginx (no target):\n${notes.join("\n")}`);

  if (values.json) {
    const json = {
      started: when.started.toISOString(),
      load: { before: when.loadBefore, after: when.loadAfter },
      settings: {
        SECONDS,
        ROUNDS,
        RATE,
        WARMUP_SECONDS,
        PACE_CONCURRENCY,
        CONNECTIONS,
        STREAMS,
        HTTP_CONNECTIONS,
        MIXED_SECONDS,
        GHZ_VERSION,
        PIN: cpus.pin,
      },
      rows: rowsJson(rows, results),
      mixed: mix,
      targets: lines,
      notes,
    };
    writeFileSync(values.json, `${JSON.stringify(json, null, 2)}\n`);
  }
}

run(main);
