/**
 * iptables capture mode, proven in network namespaces this test creates: a "pod" namespace
 * (app on 0.0.0.0:8080, proxy on 0.0.0.0:15006 reaching the app at 127.0.0.1:8080) and a
 * "client" namespace joined by a veth pair. deploy/images/verso-init.sh (the init container's
 * script) installs the nat PREROUTING redirect; a client calling the pod's app port then goes
 * through the proxy, and the proxy's own call to the app is not looped (OUTPUT, not PREROUTING).
 * The same for gRPC: an h2c app on 9090, the proxy's gRPC listener on 15007, and the script's
 * VERSO_CAPTURE_GRPC_PORTS redirect between them, as the webhook injects for a gRPC port.
 * Skipped, with the reason printed, unless root with `ip` and `iptables` that can make netns.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sample } from "../harness/metrics.ts";
import { BUN, NODE, REPO_ROOT, SIDECAR_MAIN } from "../harness/paths.ts";
import { waitFor } from "../harness/ports.ts";
import { startProcess, type ManagedProcess } from "../harness/processes.ts";
import { makeDir } from "./sidecar-fixture.ts";

const INIT_SCRIPT = join(REPO_ROOT, "deploy", "images", "verso-init.sh");
const tag = `${process.pid % 10_000}`;
const POD_NS = `verso-pod-${tag}`;
const CLIENT_NS = `verso-cli-${tag}`;
// Link-local-ish private range unlikely to clash with the host's own routes.
const POD_IP = "10.213.77.2";
const CLIENT_IP = "10.213.77.1";

function whyNot(): string | undefined {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "not root (network namespaces and iptables need root)";
  for (const bin of ["ip", "iptables", "curl"]) {
    if (spawnSync("sh", ["-c", `command -v ${bin}`]).status !== 0) {
      return `${bin} is missing (apt-get install -y iproute2 iptables curl)`;
    }
  }
  const probe = `verso-probe-${tag}`;
  const add = spawnSync("ip", ["netns", "add", probe]);
  if (add.status !== 0) return `cannot create a network namespace: ${String(add.stderr).trim()}`;
  spawnSync("ip", ["netns", "del", probe]);
  return undefined;
}

const reason = whyNot();
if (reason) console.warn(`[iptables-capture] SKIPPED: ${reason}`);

const sh = (...args: string[]): string =>
  execFileSync(args[0]!, args.slice(1), { encoding: "utf8" });
const inPod = (...args: string[]): string => sh("ip", "netns", "exec", POD_NS, ...args);
const inClient = (...args: string[]): string => sh("ip", "netns", "exec", CLIENT_NS, ...args);

describe.skipIf(reason !== undefined)("iptables capture in a network namespace", () => {
  const procs: ManagedProcess[] = [];
  let dir: string;

  beforeAll(async () => {
    dir = makeDir("verso-iptables-");
    for (const ns of [POD_NS, CLIENT_NS]) spawnSync("ip", ["netns", "del", ns]);
    sh("ip", "netns", "add", POD_NS);
    sh("ip", "netns", "add", CLIENT_NS);
    sh("ip", "link", "add", `vp${tag}`, "type", "veth", "peer", "name", `vc${tag}`);
    sh("ip", "link", "set", `vp${tag}`, "netns", POD_NS);
    sh("ip", "link", "set", `vc${tag}`, "netns", CLIENT_NS);
    inPod("ip", "addr", "add", `${POD_IP}/24`, "dev", `vp${tag}`);
    inClient("ip", "addr", "add", `${CLIENT_IP}/24`, "dev", `vc${tag}`);
    for (const [run, dev] of [
      [inPod, `vp${tag}`],
      [inClient, `vc${tag}`],
    ] as const) {
      run("ip", "link", "set", "lo", "up");
      run("ip", "link", "set", dev, "up");
    }
    const appScript = join(dir, "app.mjs");
    writeFileSync(
      appScript,
      `import http from "node:http";
let hits = 0;
http.createServer((req, res) => {
  hits++;
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ hits, remote: req.socket.remoteAddress, xff: req.headers["x-forwarded-for"] ?? null }));
}).listen(8080, "0.0.0.0");\n`,
    );
    // A minimal h2c gRPC server: any method answers one empty message and status OK, and tells
    // who called it (the proxy, from loopback) in a response header.
    const grpcAppScript = join(dir, "grpc-app.mjs");
    writeFileSync(
      grpcAppScript,
      `import http2 from "node:http2";
http2.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/grpc", "x-remote": req.socket.remoteAddress });
    res.addTrailers({ "grpc-status": "0" });
    res.end(Buffer.alloc(5));
  });
}).listen(9090, "0.0.0.0");\n`,
    );
    const routes = join(dir, "routes.json");
    writeFileSync(routes, JSON.stringify({ app: "shop", revision: 1, endpoints: {} }));
    const spawnIn = (name: string, args: string[]) =>
      startProcess({
        name,
        command: "ip",
        args: ["netns", "exec", POD_NS, ...args],
        logFile: join(dir, `${name}.log`),
      });
    procs.push(spawnIn("app", [NODE, appScript]));
    procs.push(spawnIn("grpc-app", [NODE, grpcAppScript]));
    procs.push(
      spawnIn("proxy", [
        BUN,
        SIDECAR_MAIN,
        "--listen",
        "0.0.0.0:15006",
        "--app",
        "127.0.0.1:8080",
        "--admin",
        "0.0.0.0:15020",
        "--app-name",
        "shop",
        "--version",
        "v1",
        "--routes",
        routes,
        "--grpc-listen",
        "0.0.0.0:15007",
        "--grpc-app",
        "127.0.0.1:9090",
      ]),
    );
    await waitFor(
      "proxy ready in the pod namespace",
      async () =>
        inPod(
          "curl",
          "-s",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "http://127.0.0.1:15020/ready",
        ) === "200"
          ? true
          : undefined,
      15_000,
      200,
    );
  });

  afterAll(async () => {
    for (const p of procs.reverse()) await p.stop();
    for (const ns of [POD_NS, CLIENT_NS]) spawnSync("ip", ["netns", "del", ns]);
  });

  it("before capture the client reaches the app directly", () => {
    const out = inClient("curl", "-s", "-D", "-", `http://${POD_IP}:8080/`);
    expect(out.toLowerCase()).not.toContain("x-verso-version");
  });

  it("verso-init redirects the app port to the proxy, idempotently", () => {
    const env = { ...process.env, VERSO_CAPTURE_PORTS: "8080", VERSO_LISTEN: "0.0.0.0:15006" };
    for (let i = 0; i < 2; i++) {
      execFileSync("ip", ["netns", "exec", POD_NS, "sh", INIT_SCRIPT], { env, encoding: "utf8" });
    }
    const rules = inPod("iptables", "-t", "nat", "-S");
    expect(rules.match(/-A PREROUTING -p tcp -j VERSO_INBOUND/g)).toHaveLength(1);
    expect(rules.match(/--dport 8080 -j REDIRECT --to-ports 15006/g)).toHaveLength(1);
  });

  it("a client in another namespace goes through the proxy, which reaches the app without a loop", async () => {
    const before = inPod("curl", "-s", "http://127.0.0.1:15020/metrics");
    const served = (text: string): number => sample(text, "verso_requests_total");
    for (let i = 0; i < 5; i++) {
      const out = inClient("curl", "-s", "-D", "-", `http://${POD_IP}:8080/`);
      const [head, body] = out.split("\r\n\r\n");
      expect(head!.toLowerCase()).toContain("x-verso-version: v1");
      const seen = JSON.parse(body!);
      // The app saw the proxy (loopback) and the real client in X-Forwarded-For.
      expect(seen.remote).toBe("127.0.0.1");
      expect(seen.xff).toBe(CLIENT_IP);
    }
    const after = inPod("curl", "-s", "http://127.0.0.1:15020/metrics");
    expect(served(after) - served(before)).toBe(5);
    // Inside the pod, the proxy's own path (127.0.0.1:8080) is not redirected.
    const local = inPod("curl", "-s", "-D", "-", "http://127.0.0.1:8080/");
    expect(local.toLowerCase()).not.toContain("x-verso-version");
  });

  it("verso-init redirects the gRPC port to the proxy's gRPC listener; a gRPC call goes through it", async () => {
    const env = {
      ...process.env,
      VERSO_CAPTURE_PORTS: "8080",
      VERSO_LISTEN: "0.0.0.0:15006",
      VERSO_CAPTURE_GRPC_PORTS: "9090",
      VERSO_GRPC_LISTEN: "0.0.0.0:15007",
    };
    for (let i = 0; i < 2; i++) {
      execFileSync("ip", ["netns", "exec", POD_NS, "sh", INIT_SCRIPT], { env, encoding: "utf8" });
    }
    const rules = inPod("iptables", "-t", "nat", "-S");
    expect(rules.match(/-A PREROUTING -p tcp -j VERSO_INBOUND/g)).toHaveLength(1);
    expect(rules.match(/--dport 8080 -j REDIRECT --to-ports 15006/g)).toHaveLength(1);
    expect(rules.match(/--dport 9090 -j REDIRECT --to-ports 15007/g)).toHaveLength(1);

    const clientScript = join(dir, "grpc-client.mjs");
    writeFileSync(
      clientScript,
      `import http2 from "node:http2";
const session = http2.connect(process.argv[2]);
const req = session.request({
  ":method": "POST",
  ":path": "/test.Echo/Say",
  "content-type": "application/grpc",
  te: "trailers",
});
const out = {};
req.on("response", (h) => { out.headers = h; });
req.on("trailers", (t) => { out.trailers = t; });
req.resume();
req.on("end", () => { console.log(JSON.stringify(out)); session.close(); });
req.on("error", (e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
req.end(Buffer.alloc(5));\n`,
    );
    await waitFor(
      "proxy's gRPC listener",
      async () =>
        inPod("sh", "-c", "ss -ltn | grep -c ':15007 ' || true").trim() !== "0" ? true : undefined,
      15_000,
      200,
    );
    const call = JSON.parse(inClient(NODE, clientScript, `http://${POD_IP}:9090`)) as {
      headers?: Record<string, string>;
      trailers?: Record<string, string>;
    };
    // Served through the proxy (its version header), by the app, from loopback: captured.
    expect(call.headers?.["x-verso-version"]).toBe("v1");
    expect(call.headers?.["x-remote"]).toBe("127.0.0.1");
    expect(call.trailers?.["grpc-status"]).toBe("0");
    // The HTTP port is still captured to the HTTP listener.
    const http = inClient("curl", "-s", "-D", "-", `http://${POD_IP}:8080/`);
    expect(http.toLowerCase()).toContain("x-verso-version: v1");
  });
});
