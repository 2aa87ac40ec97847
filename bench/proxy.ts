/**
 * Proxy benchmark: one run, same machine, same upstream app, same load for every row.
 *
 *   direct         client -> app (the latency baseline; always runs)
 *   verso-local    client -> Verso on Bun (the image's bundle, `bun build` as Dockerfile.sidecar;
 *                  --ts runs sidecar/main.ts instead), serving locally -> app. Routing is on: the table
 *                  has a release whose match rules do not match and whose canary weight is 0,
 *                  so decide() evaluates the rules and the split on every request.
 *   verso-access-log  verso-local with `--access-log true`: one JSON line per request on its
 *                  stdout, a pipe read by this script into a file (as a container runtime reads
 *                  it); printed beside verso-local ("Access log cost")
 *   verso-forward  client -> Verso v1 -> Verso v2 (hop token) -> app, both on Bun (weight 100)
 *   bun-minimal    client -> Bun.serve + fetch pass-through (bench/bun-minimal-server.ts) -> app:
 *                  the floor of any Bun proxy
 *   nginx          client -> nginx (1 worker, upstream keepalive) -> app
 *   node-verso     client -> Verso on Node before the port (`git archive <--before>` of sidecar/
 *                  and shared/, run with the env the webhook injected then) -> app: the "before"
 *   http-proxy     client -> minimal http-proxy server on Node -> app (only when named in --only)
 * The app is bench/upstream-app.ts (Bun: answers "ok"; counts and hashes uploads).
 *
 * Phases, in this order (a saturating run leaves memory behind, so it never precedes a paced
 * one): idle RSS (started, table loaded, one request served); a paced warm-up per row;
 * --rounds latency rounds; --rounds throughput rounds; the uploads. Each round runs every row
 * once, in an order rotated by one per round, so drift on this shared machine spreads evenly.
 * - Latency: ~--rate req/s (wrk, --pace-connections connections each waiting a fixed gap after
 *   each response, see wrk()), unpinned. "Added" is the row's median p50/p99 over rounds minus
 *   direct's; p99 is shown with its min-max over rounds, and verso's p99 minus nginx's is
 *   also taken round by round (both ran within a minute of each other).
 * - Throughput: wrk -t1 -c--connections with each row's proxies pinned to the last CPU and
 *   the app, wrk and this script on the others (verso-forward's two proxies share the core).
 *   CPU µs per request and CPU % of the proxies come from /proc (verso-forward: both hops).
 *   A proxy under 100% was held back by the app or wrk: compare req/s per CPU-second then.
 * - Memory: RSS and its private part (RssAnon; the rest is the runtime's executable mapped from
 *   its file), sampled every 100 ms; per proxy process (nginx: master + worker), the largest
 *   of a row's proxies shown (verso-forward: the larger of v1 and v2).
 * - Uploads: --uploads concurrent uploads of --upload-mb MiB each (half with Content-Length,
 *   half chunked) through verso-forward; the app reports the bytes and SHA-256 it received.
 *
 *   node bench/proxy.ts [--seconds 5] [--rounds 5] [--only verso-local,nginx] [--rate 1000]
 *     [--warmup 3] [--connections 32] [--pace-connections 10] [--uploads 4] [--upload-mb 100]
 *     [--before 33045cc] [--no-pin] [--ts] [--json FILE]
 * Needs wrk and taskset (`make bench-tools`); nginx is skipped with a note when absent.
 * Prints markdown tables and the issue's targets (met or not) to stdout, progress to stderr.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { splitHostPort } from "../shared/net.ts";
import { PROXY_RUNTIME_ENV } from "../shared/pod-env.ts";
import { BUN, NODE, REPO_ROOT } from "../test/harness/paths.ts";
import { installExitHandlers } from "../test/harness/processes.ts";
import { makeDir } from "../test/process/sidecar-fixture.ts";
import {
  addressOn,
  answering,
  cpuOf,
  fixed,
  group,
  has,
  heaviest,
  launcher,
  loadAverage,
  markdown,
  mb,
  median,
  output,
  parseWrk,
  pinning,
  sampled,
  spread,
  versionOf,
  versoMain as versoMainIn,
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

const ROWS = [
  "verso-local",
  "verso-access-log",
  "verso-forward",
  "bun-minimal",
  "nginx",
  "node-verso",
  "http-proxy",
] as const;
type RowName = "direct" | (typeof ROWS)[number];
const DEFAULT_ROWS: readonly RowName[] = ROWS.filter((r) => r !== "http-proxy");

const { values } = parseArgs({
  allowNegative: true,
  options: {
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "5" },
    rate: { type: "string", default: "1000" },
    warmup: { type: "string", default: "3" },
    connections: { type: "string", default: "32" },
    "pace-connections": { type: "string", default: "10" },
    uploads: { type: "string", default: "4" },
    "upload-mb": { type: "string", default: "100" },
    only: { type: "string" },
    // The last commit whose proxy ran on Node.
    before: { type: "string", default: "33045cc" },
    pin: { type: "boolean", default: true },
    json: { type: "string" },
    // The image runs the bundle (Dockerfile.sidecar); --ts measures `npm run sidecar` instead.
    ts: { type: "boolean", default: false },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const RATE = Number(values.rate);
const WARMUP_SECONDS = Number(values.warmup);
const CONNECTIONS = Number(values.connections);
const PACE_CONNECTIONS = Number(values["pace-connections"]);
const UPLOADS = Number(values.uploads);
const UPLOAD_MIB = Number(values["upload-mb"]);
const wanted: (r: RowName) => boolean = selectRows(values.only, ROWS, DEFAULT_ROWS);

/** The env the webhook injected into the Node proxy at --before (shared/pod-env.ts then). */
const NODE_VERSO_ENV = { NODE_OPTIONS: "--max-semi-space-size=2", MALLOC_ARENA_MAX: "2" };
const cpus = pinning(values.pin);
const { cpus: CPUS, pin: PIN, proxyCpu: PROXY_CPU, loadCpus: LOAD_CPUS, allCpus: ALL_CPUS } = cpus;

installExitHandlers({ signals: true });
const dir = makeDir("verso-bench-");
/** What the Verso rows run: the image's bundle, built once per run (or the .ts with --ts). */
const versoMain = versoMainIn(dir, values.ts);
const launch = launcher(dir);
const PACE_SCRIPT = join(dir, "pace.lua");
writeFileSync(
  PACE_SCRIPT,
  `local gap = tonumber(os.getenv("WRK_GAP_MS"))\nfunction delay() return gap end\n`,
);

if (!has("wrk")) {
  console.error("wrk is required: apt-get install -y wrk (or make bench-tools)");
  process.exit(2);
}

// ---- the rows ----------------------------------------------------------------------------

interface Row {
  name: RowName;
  url: string;
  /** Empty for direct; two for verso-forward (v1, v2). */
  proxies: Proxy[];
}

/** sidecar/ and shared/ at `commit` in `dir`, runnable with node (type stripping). */
function extractBefore(commit: string): string {
  const root = join(dir, `node-verso-${commit}`);
  mkdirSync(root);
  const archive = spawnSync("git", ["-C", REPO_ROOT, "archive", commit, "sidecar", "shared"], {
    maxBuffer: 256 * 1024 * 1024,
  });
  if (archive.status !== 0) throw new Error(`git archive ${commit}: ${String(archive.stderr)}`);
  const tar = spawnSync("tar", ["-x", "-C", root], { input: archive.stdout });
  if (tar.status !== 0) throw new Error(`tar: ${String(tar.stderr)}`);
  symlinkSync(join(REPO_ROOT, "node_modules"), join(root, "node_modules"));
  writeFileSync(join(root, "package.json"), JSON.stringify({ type: "module" }));
  return join(root, "sidecar", "main.ts");
}

async function startRows(): Promise<{ rows: Row[]; appPid: number }> {
  const appHost = "127.0.4.1";
  const app = await addressOn(appHost);
  const appPid = launch("app", BUN, [join(REPO_ROOT, "bench", "upstream-app.ts"), app]);
  await answering(`http://${app}/`);
  const rows: Row[] = [{ name: "direct", url: `http://${app}/`, proxies: [] }];

  const v2Host = "127.0.4.4";
  const v2 = await addressOn(v2Host);
  const verso = async (o: {
    name: string;
    listen: string;
    version: string;
    weight: number;
    runtime?: { command: string; main: string; env: object };
    args?: string[];
  }): Promise<Proxy> => {
    const { host } = splitHostPort(o.listen)!;
    const admin = await addressOn(host);
    const routes = join(dir, `${o.name}.json`);
    writeFileSync(routes, JSON.stringify(routeTable(o.weight, { v2 })));
    const rt = o.runtime ?? { command: BUN, main: versoMain(), env: PROXY_RUNTIME_ENV };
    const pid = launch(
      o.name,
      rt.command,
      [
        ...[rt.main, "--listen", o.listen, "--app", app, "--admin", admin],
        ...["--app-name", "bench", "--version", o.version, "--routes", routes],
        ...["--log-level", "warn"],
        ...(o.args ?? []),
      ],
      rt.env,
    );
    await answering(`http://${admin}/ready`);
    return { label: o.name, pids: [pid] };
  };
  /** A row served by one process listening on `host`, started by `start(listen)`. */
  const single = async (name: RowName, host: string, start: (listen: string) => Proxy) => {
    const listen = await addressOn(host);
    const proxy = start(listen);
    await answering(`http://${listen}/`);
    rows.push({
      name,
      url: `http://${listen}/`,
      proxies: [{ ...proxy, pids: group(proxy.pids[0]!) }],
    });
  };

  if (wanted("verso-local")) {
    const listen = await addressOn("127.0.4.2");
    const proxy = await verso({ name: "verso-local", listen, version: "v1", weight: 0 });
    await answering(`http://${listen}/`);
    rows.push({ name: "verso-local", url: `http://${listen}/`, proxies: [proxy] });
  }
  if (wanted("verso-access-log")) {
    const listen = await addressOn("127.0.4.9");
    const proxy = await verso({
      name: "verso-access-log",
      listen,
      version: "v1",
      weight: 0,
      args: ["--access-log", "true"],
    });
    await answering(`http://${listen}/`);
    rows.push({ name: "verso-access-log", url: `http://${listen}/`, proxies: [proxy] });
  }
  if (wanted("verso-forward")) {
    const b = await verso({ name: "verso-forward-v2", listen: v2, version: "v2", weight: 100 });
    const listen = await addressOn("127.0.4.3");
    const a = await verso({ name: "verso-forward-v1", listen, version: "v1", weight: 100 });
    await answering(`http://${listen}/`);
    rows.push({ name: "verso-forward", url: `http://${listen}/`, proxies: [a, b] });
  }
  if (wanted("bun-minimal")) {
    await single("bun-minimal", "127.0.4.7", (listen) => ({
      label: "bun-minimal",
      pids: [
        launch("bun-minimal", BUN, [
          join(REPO_ROOT, "bench", "bun-minimal-server.ts"),
          listen,
          app,
        ]),
      ],
    }));
  }
  if (wanted("nginx") && has("nginx")) {
    await single("nginx", "127.0.4.6", (listen) => {
      const conf = join(dir, "nginx.conf");
      writeFileSync(conf, nginxHttp(listen, app));
      return {
        label: "nginx",
        pids: [launch("nginx", "nginx", ["-c", conf, "-p", dir, "-g", "daemon off;"])],
      };
    });
  } else if (wanted("nginx")) {
    console.error("nginx not installed (apt-get install -y nginx-light): skipping its row");
  }
  if (wanted("node-verso")) {
    const main = extractBefore(values.before);
    const listen = await addressOn("127.0.4.8");
    const runtime = { command: NODE, main, env: NODE_VERSO_ENV };
    const proxy = await verso({ name: "node-verso", listen, version: "v1", weight: 0, runtime });
    await answering(`http://${listen}/`);
    rows.push({ name: "node-verso", url: `http://${listen}/`, proxies: [proxy] });
  }
  if (wanted("http-proxy")) {
    await single("http-proxy", "127.0.4.5", (listen) => ({
      label: "http-proxy",
      pids: [
        launch("http-proxy", NODE, [join(REPO_ROOT, "bench", "http-proxy-server.ts"), listen, app]),
      ],
    }));
  }
  return { rows, appPid };
}

function nginxHttp(listen: string, app: string): string {
  return nginxConf(
    dir,
    `  upstream app { server ${app}; keepalive 64; }
  server {
    listen ${listen};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
    }
  }`,
  );
}

// ---- load ------------------------------------------------------------------------------

interface Run extends WrkResult {
  /** CPU seconds the row's proxies used during the run. */
  cpu: number;
}

/**
 * One wrk run (asynchronous, so the memory sampler keeps running). `paced`: each connection
 * waits `gap` ms after each response, so PACE_CONNECTIONS connections make about RATE req/s.
 * wrk is C and measures each request from its own send: a Node generator's event loop put
 * 1-5 ms of its own into the direct baseline's p99 here, more than the effect being measured.
 * Closed loop: a stall longer than the gap would be under-counted (max runs' p99 shows none).
 */
async function wrk(row: Row, seconds: number, paced: boolean): Promise<Run> {
  const load = paced ? [`-c${PACE_CONNECTIONS}`, "-s", PACE_SCRIPT] : [`-c${CONNECTIONS}`];
  const args = ["-t1", ...load, `-d${seconds}s`, "--latency", row.url];
  const gapMs = (PACE_CONNECTIONS * 1000) / RATE;
  const cpu0 = cpuOf(pidsOf(row));
  const out = await output(...cpus.onLoadCpus("wrk", args), { WRK_GAP_MS: String(gapMs) });
  return { ...parseWrk(out), cpu: cpuOf(pidsOf(row)) - cpu0 };
}

interface UploadResult {
  framing: "content-length" | "chunked";
  status: number;
  bytes: number;
  intact: boolean;
  seconds: number;
}

/** One upload of `count` copies of `chunk` through `url`; the app answers what it received. */
async function upload(url: string, chunk: Buffer, count: number, chunked: boolean) {
  const t0 = performance.now();
  const length = chunk.length * count;
  const req = http.request(url, {
    method: "POST",
    agent: false,
    headers: chunked ? {} : { "content-length": String(length) },
  });
  const response = once(req, "response") as Promise<[http.IncomingMessage]>;
  await pipeline(
    Readable.from(
      (function* () {
        for (let i = 0; i < count; i++) yield chunk;
      })(),
    ),
    req,
  );
  const [res] = await response;
  let text = "";
  for await (const part of res.setEncoding("utf8")) text += part as string;
  const seconds = (performance.now() - t0) / 1000;
  return { status: res.statusCode ?? 0, body: text, seconds };
}

async function uploads(row: Row): Promise<{ results: UploadResult[]; peaks: Mem[] }> {
  const chunk = randomBytes(1024 * 1024);
  const expected = createHash("sha256");
  for (let i = 0; i < UPLOAD_MIB; i++) expected.update(chunk);
  const sha256 = expected.digest("hex");
  const [results, peaks] = await sampled(row.proxies, () =>
    Promise.all(
      Array.from({ length: UPLOADS }, async (_, i): Promise<UploadResult> => {
        const framing = i % 2 === 0 ? "content-length" : "chunked";
        const r = await upload(row.url, chunk, UPLOAD_MIB, framing === "chunked");
        const got = JSON.parse(r.body || "{}") as { bytes?: number; sha256?: string };
        return {
          framing,
          status: r.status,
          bytes: got.bytes ?? 0,
          intact:
            r.status === 200 && got.bytes === chunk.length * UPLOAD_MIB && got.sha256 === sha256,
          seconds: r.seconds,
        };
      }),
    ),
  );
  return { results, peaks };
}

// ---- the run -----------------------------------------------------------------------------

async function main(): Promise<void> {
  const loadBefore = loadAverage();
  const started = new Date();
  const { rows, appPid } = await startRows();
  const { results, everyone } = await measure({
    rows,
    others: [appPid],
    cpus,
    rounds: ROUNDS,
    seconds: SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    paced: (row, seconds) => wrk(row, seconds, true),
    max: (row, seconds) => wrk(row, seconds, false),
    progress: (phase) =>
      console.error(
        phase === "latency"
          ? `latency: warm-up ${WARMUP_SECONDS}s per row, then ${ROUNDS} rounds`
          : `throughput: ${ROUNDS} rounds, proxies pinned to CPU ${PROXY_CPU}`,
      ),
  });
  cpus.setAffinity(everyone, ALL_CPUS);

  const forward = rows.find((r) => r.name === "verso-forward");
  let up: Awaited<ReturnType<typeof uploads>> | undefined;
  if (forward && UPLOADS > 0 && UPLOAD_MIB > 0) {
    console.error(`uploads: ${UPLOADS} x ${UPLOAD_MIB} MiB through verso-forward`);
    up = await uploads(forward);
  }
  const loadAfter = loadAverage();
  report(rows, results, up, { started, loadBefore, loadAfter });
}

// ---- the report --------------------------------------------------------------------------

function report(
  rows: Row[],
  results: Map<RowName, RowResult<Run>>,
  up: Awaited<ReturnType<typeof uploads>> | undefined,
  when: { started: Date; loadBefore: string; loadAfter: string },
): void {
  const fwd = rows.find((row) => row.name === "verso-forward");
  const { r, added, rps, perCpu } = summary(results, (run) => run.requests);

  console.log(
    `\n## Proxy benchmark, ${when.started.toISOString()}\n\n` +
      `${CPUS} CPUs, load average before ${when.loadBefore}, after ${when.loadAfter}. ` +
      `Bun ${versionOf(BUN, ["--version"])}, Node ${process.version.slice(1)} (node-verso = ${values.before}), ` +
      `nginx ${versionOf("nginx", ["-v"], /nginx\/([\d.]+)/)}; app: bench/upstream-app.ts on Bun. ` +
      `${ROUNDS} rounds of ${SECONDS}s per row and phase; medians (min–max over rounds). ` +
      `Latency: ~${RATE} req/s paced (wrk -c${PACE_CONNECTIONS}, ${WARMUP_SECONDS}s warm-up), unpinned. ` +
      `Max: wrk -t1 -c${CONNECTIONS}, ${PIN ? `proxies pinned to CPU ${PROXY_CPU}, app and wrk on CPU ${LOAD_CPUS}` : "not pinned"}. ` +
      `Verso on Bun from ${values.ts ? "sidecar/main.ts" : "the image's bundle (bun build)"}, env ${JSON.stringify(PROXY_RUNTIME_ENV)}; node-verso env ${JSON.stringify(NODE_VERSO_ENV)}.\n`,
  );
  const proxied = rows.filter((row) => row.proxies.length > 0);
  printRowTables(rows, results, {
    unit: "req",
    served: (run) => run.requests,
    seconds: SECONDS,
    nginx: "nginx",
    forward: "verso-forward",
    loadGenerator: "wrk",
  });

  if (r("verso-local") && r("verso-access-log")) printAccessLogCost(results);

  if (up && fwd) {
    console.log(
      `\nUploads: ${UPLOADS} concurrent x ${UPLOAD_MIB} MiB, client -> verso v1 -> verso v2 -> app\n`,
    );
    console.log(
      markdown(
        ["proxy", "peak RSS MB", "peak private MB"],
        fwd.proxies.map((p, i) => [p.label, mb(up.peaks[i]!.rss), mb(up.peaks[i]!.anon)]),
      ),
    );
    console.log("");
    console.log(
      markdown(
        [
          "upload",
          "framing",
          "status",
          "bytes at the app",
          "intact (bytes + SHA-256)",
          "seconds",
          "MiB/s",
        ],
        up.results.map((u, i) => [
          String(i + 1),
          u.framing,
          String(u.status),
          String(u.bytes),
          u.intact ? "yes" : "NO",
          u.seconds.toFixed(1),
          (UPLOAD_MIB / u.seconds).toFixed(0),
        ]),
      ),
    );
  }

  // The issue's targets.
  const lines: string[] = [];
  const check = (ok: boolean, text: string) => lines.push(`- ${ok ? "met" : "NOT met"}: ${text}`);
  const bunVerso = proxied.filter(
    (row) => row.name === "verso-local" || row.name === "verso-forward",
  );
  for (const row of bunVerso) {
    const res = r(row.name)!;
    const idle = heaviest(res.idle).rss / 2 ** 20;
    const sat = heaviest(res.max).rss / 2 ** 20;
    check(idle <= 32, `${row.name} RSS idle ${idle.toFixed(1)} MB ≤ 32`);
    check(sat <= 48, `${row.name} RSS saturated peak ${sat.toFixed(1)} MB ≤ 48`);
  }
  if (r("verso-local") && r("nginx")) {
    const ratio = rps("verso-local") / rps("nginx");
    check(
      ratio >= 0.6,
      `verso-local max req/s ${rps("verso-local").toFixed(0)} = ${ratio.toFixed(2)}× nginx's ${rps("nginx").toFixed(0)} (≥ 0.6×); per proxy CPU-second ${(perCpu("verso-local") / perCpu("nginx")).toFixed(2)}×`,
    );
    const verso = r("verso-local")!.pacedRuns;
    const diffs = r("nginx")!.pacedRuns.map((n, i) => verso[i]!.p99 - n.p99);
    check(
      median(diffs) <= 0.3,
      `verso-local added p99 ${fixed(3)(added(r("verso-local")!, "p99"))} ms vs nginx's ${fixed(3)(added(r("nginx")!, "p99"))} ms: ` +
        `difference per round ${spread(diffs, fixed(3))} ms (≤ 0.3)`,
    );
  }
  if (up) {
    const worst = Math.max(...up.peaks.map((m) => m.rss)) / 2 ** 20;
    check(
      worst <= 96,
      `uploads: peak RSS of each forward proxy ≤ 96 MB (largest ${worst.toFixed(1)})`,
    );
    const intact = up.results.filter((u) => u.intact).length;
    check(
      intact === up.results.length,
      `uploads intact at the app: ${intact}/${up.results.length}`,
    );
  }
  console.log(`\nTargets (verso on Bun):\n${lines.join("\n")}`);

  if (values.json) {
    const json = {
      started: when.started.toISOString(),
      load: { before: when.loadBefore, after: when.loadAfter },
      settings: {
        SECONDS,
        ROUNDS,
        RATE,
        CONNECTIONS,
        PACE_CONNECTIONS,
        PIN,
        before: values.before,
      },
      rows: rowsJson(rows, results),
      uploads: up && {
        results: up.results,
        peaks: up.peaks.map((m, i) => ({ proxy: fwd?.proxies[i]?.label, ...m })),
      },
      targets: lines,
    };
    writeFileSync(values.json, `${JSON.stringify(json, null, 2)}\n`);
  }
}
/** verso-local and verso-access-log side by side: the same proxy, access log off and on. */
function printAccessLogCost(results: Map<RowName, RowResult<Run>>): void {
  const { r, cpuUs } = summary(results, (run) => run.requests);
  const rows = ["verso-local", "verso-access-log"] as const;
  const med = (name: RowName, pick: (res: RowResult<Run>) => number[]) => median(pick(r(name)!));
  const maxRps = (name: RowName) => med(name, (res) => res.maxRuns.map((x) => x.rps));
  const p = (name: RowName, key: "p50" | "p99") =>
    med(name, (res) => res.pacedRuns.map((x) => x[key]));
  const us = (name: RowName) => median(cpuUs(r(name)!.maxRuns));
  const change = (off: number, on: number) =>
    `${on >= off ? "+" : ""}${(((on - off) / off) * 100).toFixed(1)} %`;
  console.log("\nAccess log cost (same proxy and load; access log off vs on):\n");
  console.log(
    markdown(
      ["access log", "max req/s", "CPU µs/req max", "paced p50 ms", "paced p99 ms"],
      [
        ...rows.map((name) => [
          name === "verso-local" ? "off (verso-local)" : "on (verso-access-log)",
          fixed(0)(maxRps(name)),
          fixed(0)(us(name)),
          fixed(3)(p(name, "p50")),
          fixed(3)(p(name, "p99")),
        ]),
        [
          "change",
          change(maxRps(rows[0]), maxRps(rows[1])),
          change(us(rows[0]), us(rows[1])),
          change(p(rows[0], "p50"), p(rows[1], "p50")),
          change(p(rows[0], "p99"), p(rows[1], "p99")),
        ],
      ],
    ),
  );
}

run(main);
