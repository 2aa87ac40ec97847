/**
 * The demo app as its image runs it (`node test/demo-app/server.ts`), with a real
 * `@grpc/grpc-js` client on its optional gRPC port: unary calls answer the version, ERROR_RATE
 * fails them UNAVAILABLE, LATENCY_MS delays them, the health Check is SERVING regardless.
 */
import { connect } from "node:http2";
import { join } from "node:path";
import grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_APP, NODE } from "../harness/paths.ts";
import { freePort, portAccepts } from "../harness/ports.ts";
import { startProcess, waitForLog, type ManagedProcess } from "../harness/processes.ts";
import { client, unary } from "./grpc-fixture.ts";
import { makeDir } from "./sidecar-fixture.ts";

const H = "127.0.9.2";
const raw = (b: Buffer): Buffer => b;

interface Demo {
  proc: ManagedProcess;
  port: number;
  grpcPort: number;
}

let dir: string;
const started: ManagedProcess[] = [];

async function startDemo(version: string, env: Record<string, string>, grpc = true) {
  const [port, grpcPort] = [await freePort(H), await freePort(H)];
  const proc = startProcess({
    name: `demo-${version}`,
    command: NODE,
    args: ["--disable-warning=ExperimentalWarning", DEMO_APP],
    env: {
      PATH: process.env.PATH,
      VERSION: version,
      HOST: H,
      PORT: String(port),
      ...(grpc && { GRPC_PORT: String(grpcPort) }),
      ...env,
    },
    logFile: join(dir, `demo-${version}.log`),
  });
  started.push(proc);
  await waitForLog(proc, /listening on/, 10_000);
  if (grpc) await waitForLog(proc, /serving gRPC \(h2c\) on/, 10_000);
  return { proc, port, grpcPort } satisfies Demo;
}

function healthCheck(c: grpc.Client): Promise<{ code: number; bytes?: Buffer }> {
  return new Promise((resolve) =>
    c.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      raw,
      raw,
      Buffer.alloc(0),
      new grpc.Metadata(),
      { deadline: Date.now() + 5_000 },
      (error, value) => resolve({ code: error?.code ?? 0, bytes: value }),
    ),
  );
}

let good: Demo;
let bad: Demo;

beforeAll(async () => {
  dir = makeDir("verso-demo-app-");
  good = await startDemo("v1", {});
  bad = await startDemo("v2", { ERROR_RATE: "1", LATENCY_MS: "200" });
});

afterAll(async () => {
  for (const proc of started) await proc.stop(2_000);
});

describe("demo app: gRPC (GRPC_PORT)", () => {
  it("answers a unary call with its version as JSON bytes, OK", async () => {
    const c = client(H, good.grpcPort);
    try {
      const r = await unary(c, "hello");
      expect(r.code).toBe(grpc.status.OK);
      expect(JSON.parse(r.body ?? "")).toEqual({
        version: "v1",
        pod: "",
        method: "/verso.test.Echo/Unary",
      });
      // Many calls on one connection, and a request larger than one HTTP/2 window (drained).
      const many = await Promise.all(Array.from({ length: 50 }, () => unary(c, "x")));
      expect(many.every((m) => m.code === grpc.status.OK)).toBe(true);
      expect((await unary(c, "y".repeat(200_000))).code).toBe(grpc.status.OK);
    } finally {
      c.close();
    }
  });

  it("ERROR_RATE=1 fails every call UNAVAILABLE (trailers-only), after LATENCY_MS", async () => {
    const c = client(H, bad.grpcPort);
    try {
      const t0 = Date.now();
      const r = await unary(c, "hello");
      expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
      expect(r.code).toBe(grpc.status.UNAVAILABLE);
      expect(r.details).toBe("demo app v2 failed");
      expect(r.body).toBeUndefined();
      const more = await Promise.all(Array.from({ length: 20 }, () => unary(c, "x")));
      expect(more.map((m) => m.code)).toEqual(more.map(() => grpc.status.UNAVAILABLE));
    } finally {
      c.close();
    }
    // On the wire: one HEADERS frame with END_STREAM that carries grpc-status (no DATA).
    const session = connect(`http://${H}:${bad.grpcPort}`);
    try {
      const req = session.request({
        ":method": "POST",
        ":path": "/x.Y/Z",
        "content-type": "application/grpc",
        te: "trailers",
      });
      req.end(Buffer.from([0, 0, 0, 0, 0]));
      const [headers, flags] = await new Promise<[Record<string, unknown>, number]>((resolve) =>
        req.once("response", (h, f) => resolve([h, f])),
      );
      expect(headers).toMatchObject({ ":status": 200, "grpc-status": "14", "x-app-version": "v2" });
      expect(flags & 0x1).toBe(0x1); // END_STREAM
    } finally {
      session.close();
    }
  });

  it("health Check answers SERVING (08 01), never failed nor delayed", async () => {
    for (const demo of [good, bad]) {
      const c = client(H, demo.grpcPort);
      try {
        const t0 = Date.now();
        const r = await healthCheck(c);
        expect(r.code).toBe(grpc.status.OK);
        expect(r.bytes).toEqual(Buffer.from([0x08, 0x01]));
        if (demo === bad) expect(Date.now() - t0).toBeLessThan(190);
      } finally {
        c.close();
      }
    }
  });

  it("HTTP is unchanged beside it (ERROR_RATE answers 500, /healthz 200)", async () => {
    const ok = await fetch(`http://${H}:${good.port}/x`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ version: "v1", path: "/x" });
    expect((await fetch(`http://${H}:${bad.port}/x`)).status).toBe(500);
    expect((await fetch(`http://${H}:${bad.port}/healthz`)).status).toBe(200);
  });

  it("without GRPC_PORT there is no gRPC listener", async () => {
    const plain = await startDemo("v3", {}, false);
    expect(await portAccepts(H, plain.grpcPort)).toBe(false);
    expect((await fetch(`http://${H}:${plain.port}/`)).status).toBe(200);
  });

  it("SIGTERM with a gRPC client still connected exits 0 promptly", async () => {
    const demo = await startDemo("v4", {});
    const c = client(H, demo.grpcPort);
    try {
      expect((await unary(c, "x")).code).toBe(grpc.status.OK);
      const t0 = Date.now();
      const exit = await demo.proc.stop(5_000);
      expect(exit.code).toBe(0);
      expect(Date.now() - t0).toBeLessThan(2_000);
    } finally {
      c.close();
    }
  });
});
