/**
 * The webhook over real HTTPS on 127.0.0.1: in-process via startServer (so failures can be
 * injected), then the real `node webhook/main.ts` process once.
 */
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Agent } from "node:https";
import { Router, type Response } from "express";
import fjp from "fast-json-patch";
import type { Operation } from "fast-json-patch";
import { Gauge } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../shared/log.ts";
import { startServer, type WebhookServer } from "../../webhook/admission/server.ts";
import { writeSelfSigned } from "../../webhook/admission/tls.ts";
import { parseConfig, type WebhookConfig } from "../../webhook/config.ts";
import { NODE, REPO_ROOT, WEBHOOK_MAIN } from "../harness/paths.ts";
import { waitFor } from "../harness/ports.ts";
import { startProcess, stopAll, waitForLog } from "../harness/processes.ts";
import {
  makeAgent,
  review,
  samplePod,
  send,
  sendHeld,
  servedFingerprint,
  type HttpResult,
} from "./webhookClient.ts";

const quiet = createLogger("webhook-test", "error");

function config(dir: string, extra: string[] = []): WebhookConfig {
  const c = parseConfig(
    [
      "--listen",
      "127.0.0.1:0",
      "--tls-cert",
      join(dir, "tls.crt"),
      "--tls-key",
      join(dir, "tls.key"),
      "--no-controller",
      "--tls-poll-interval",
      "200ms",
      ...extra,
    ],
    {},
  );
  if (!c.ok) throw new Error(c.error);
  return c.value;
}

/** Writes a fresh self-signed pair to dir/tls.{crt,key} the way a Secret update lands: rename. */
async function rotate(dir: string): Promise<string> {
  const staging = mkdtempSync(join(dir, "stage-"));
  const files = await writeSelfSigned(staging, ["127.0.0.1"]);
  renameSync(files.keyFile, join(dir, "tls.key"));
  renameSync(files.certFile, join(dir, "tls.crt"));
  rmSync(staging, { recursive: true, force: true });
  return readFileSync(join(dir, "tls.crt"), "utf8");
}

function decodePatch(json: unknown): Operation[] | undefined {
  const patch = (json as { response?: { patch?: string } }).response?.patch;
  if (patch === undefined) return undefined;
  return JSON.parse(Buffer.from(patch, "base64").toString("utf8")) as Operation[];
}

const responseOf = (json: unknown) =>
  (json as { response: Record<string, unknown> }).response as {
    uid: string;
    allowed: boolean;
    patchType?: string;
    patch?: string;
    warnings?: string[];
  };

/** What the drain assertions look at: the status, how the answer left its connection, the text. */
const ending = (r: HttpResult) => ({
  status: r.status,
  connection: r.headers.connection,
  text: r.body,
});

describe("webhook server (in-process, real HTTPS)", () => {
  let dir: string;
  let server: WebhookServer;
  let agent: Agent;
  let caPem: string;
  let throwOnUid: string | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "verso-webhook-"));
    caPem = await rotate(dir);
    const { admit } = await import("../../webhook/admission/admit.ts");
    server = await startServer(config(dir), {
      logger: quiet,
      // The real admit(), made to throw for one uid: the edge must still answer.
      admit: (req, cfg) => {
        if (req.uid === throwOnUid) throw new Error("boom");
        return admit(req, cfg);
      },
    });
    agent = makeAgent(caPem);
  });

  afterAll(async () => {
    agent?.destroy();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const mutate = (body: unknown) =>
    send(agent, `${server.url}/mutate`, "POST", JSON.stringify(body));

  it("injects: uid echoed, JSONPatch that applies to the pod", async () => {
    const pod = samplePod();
    const r = await mutate(review(pod, { uid: "uid-inject" }));
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" });
    const res = responseOf(r.json);
    expect(res.uid).toBe("uid-inject");
    expect(res.allowed).toBe(true);
    expect(res.patchType).toBe("JSONPatch");
    const ops = decodePatch(r.json)!;
    const out = fjp.applyPatch(structuredClone(pod), ops, true, false).newDocument as {
      metadata: { labels: Record<string, string> };
      spec: { initContainers: { name: string }[] };
    };
    expect(out.metadata.labels["verso.dev/app"]).toBe("shop");
    expect(out.metadata.labels["verso.dev/version"]).toBe("v1");
    expect(out.spec.initContainers.map((c) => c.name)).toEqual(["verso-init", "verso-proxy"]);
  });

  it("dryRun answers exactly like a real request", async () => {
    const a = await mutate(review(samplePod(), { uid: "same", dryRun: false }));
    const b = await mutate(review(samplePod(), { uid: "same", dryRun: true }));
    expect(b.json).toEqual(a.json);
  });

  it("allows non-pods, non-CREATE and opted-out pods without a patch", async () => {
    const cases = [
      review({ kind: "Service" }, { kind: { group: "", version: "v1", kind: "Service" } }),
      review(samplePod(), { operation: "UPDATE" }),
      review({
        ...samplePod(),
        metadata: { name: "x", labels: { app: "a" }, annotations: { "verso.dev/inject": "false" } },
      }),
    ];
    for (const body of cases) {
      const r = await mutate(body);
      expect(r.status).toBe(200);
      expect(responseOf(r.json)).toEqual({
        uid: "00000000-0000-0000-0000-000000000001",
        allowed: true,
      });
    }
  });

  it("answers bad input with 4xx and a reason code, and keeps serving", async () => {
    const url = `${server.url}/mutate`;
    const cases: [string, Promise<{ status: number; json: unknown }>, number, string][] = [
      ["malformed JSON", send(agent, url, "POST", "{not json"), 400, "malformed_json"],
      [
        "text/plain",
        send(agent, url, "POST", "{}", { "content-type": "text/plain" }),
        415,
        "unsupported_media_type",
      ],
      [
        "4 MiB body",
        send(agent, url, "POST", Buffer.alloc(4 * 1024 * 1024, 0x20)),
        413,
        "body_too_large",
      ],
      [
        "v1beta1",
        mutate({ ...review(samplePod()), apiVersion: "admission.k8s.io/v1beta1" }),
        400,
        "bad_api_version",
      ],
      ["wrong kind", mutate({ ...review(samplePod()), kind: "Pod" }), 400, "bad_kind"],
      [
        "no request",
        mutate({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }),
        400,
        "missing_request",
      ],
      ["no uid", mutate(review(samplePod(), { uid: undefined })), 400, "missing_uid"],
      ["a JSON array", send(agent, url, "POST", "[]"), 400, "bad_request"],
    ];
    for (const [name, pending, status, code] of cases) {
      const r = await pending;
      expect({ name, status: r.status }).toEqual({ name, status });
      expect(r.json).toMatchObject({ code });
      expect(typeof (r.json as { message?: unknown }).message).toBe("string");
    }
    const ok = await mutate(review(samplePod(), { uid: "after-bad-input" }));
    expect(ok.status).toBe(200);
    expect(responseOf(ok.json).uid).toBe("after-bad-input");
    const metrics = (await send(agent, `${server.url}/metrics`, "GET")).body;
    expect(metrics).toMatch(
      /verso_webhook_admission_requests_total\{outcome="rejected",reason="body_too_large"\} 1/,
    );
  });

  it("admits the pod with a warning when the mutation throws, and counts it", async () => {
    throwOnUid = "uid-throws";
    try {
      const r = await mutate(review(samplePod(), { uid: "uid-throws" }));
      expect(r.status).toBe(200);
      const res = responseOf(r.json);
      expect(res).toMatchObject({ uid: "uid-throws", allowed: true });
      expect(res.patch).toBeUndefined();
      expect(res.warnings?.[0]).toMatch(/internal_error/);
    } finally {
      throwOnUid = undefined;
    }
    const metrics = (await send(agent, `${server.url}/metrics`, "GET")).body;
    expect(metrics).toMatch(/verso_webhook_admission_errors_total\{code="internal_error"\} 1/);
  });

  it("answers 64 concurrent requests, each with its own uid", async () => {
    const uids = Array.from({ length: 64 }, (_, i) => `concurrent-${i}`);
    const results = await Promise.all(
      uids.map((uid, i) => mutate(review(samplePod(`app${i}`), { uid }))),
    );
    expect(results.map((r) => r.status)).toEqual(uids.map(() => 200));
    expect(results.map((r) => responseOf(r.json).uid)).toEqual(uids);
    results.forEach((r, i) => {
      const labels = decodePatch(r.json)?.find((o) => o.path === "/metadata/labels/verso.dev~1app");
      expect(labels).toMatchObject({ op: "add", value: `app${i}` });
    });
  });

  it("serves health, readiness (with extra checks) and Prometheus metrics", async () => {
    expect((await send(agent, `${server.url}/healthz`, "GET")).status).toBe(200);
    expect((await send(agent, `${server.url}/readyz`, "GET")).status).toBe(200);
    let synced = false;
    server.addReadinessCheck("informers", () => synced);
    const notReady = await send(agent, `${server.url}/readyz`, "GET");
    expect([notReady.status, notReady.json]).toEqual([
      503,
      { code: "not_ready", message: "not ready: informers" },
    ]);
    synced = true;
    expect((await send(agent, `${server.url}/readyz`, "GET")).status).toBe(200);
    const m = await send(agent, `${server.url}/metrics`, "GET");
    expect(m.body).toMatch(
      /verso_webhook_admission_requests_total\{outcome="injected",reason="none"\}/,
    );
    expect(m.body).toMatch(/verso_webhook_injection_skips_total\{reason="opted_out"\} 1/);
    expect(m.body).toMatch(/verso_webhook_admission_duration_seconds_bucket/);
  });

  it("answers an error on every route in one shape, {code, message}", async () => {
    // The /v1/routes stream's refusals: test/process/controller-stream.test.ts.
    const shape = (r: HttpResult) => [r.status, Object.keys(r.json as object).sort(), r.json];
    const admission = await send(agent, `${server.url}/mutate`, "POST", "{", {
      "content-type": "text/plain",
    });
    expect(shape(admission)).toEqual([
      415,
      ["code", "message"],
      expect.objectContaining({ code: "unsupported_media_type" }),
    ]);
    const missing = await send(agent, `${server.url}/nope`, "GET");
    expect(shape(missing)).toEqual([
      404,
      ["code", "message"],
      { code: "not_found", message: "GET /nope: no such endpoint" },
    ]);
    let ready = false;
    server.addReadinessCheck("shape-test", () => ready);
    const notReady = await send(agent, `${server.url}/readyz`, "GET");
    ready = true;
    expect(shape(notReady)).toEqual([
      503,
      ["code", "message"],
      { code: "not_ready", message: "not ready: shape-test" },
    ]);
    // A collector that fails makes the registry reject: the edge answers 500 internal_error.
    new Gauge({
      name: "verso_test_broken",
      help: "fails to collect",
      registers: [server.registry],
      collect() {
        throw new Error("collector failed");
      },
    });
    try {
      const metrics = await send(agent, `${server.url}/metrics`, "GET");
      expect(shape(metrics)).toEqual([
        500,
        ["code", "message"],
        { code: "internal_error", message: "internal error" },
      ]);
    } finally {
      server.registry.removeSingleMetric("verso_test_broken");
    }
  });

  it("mounts extra routers (the controller's seam) ahead of the 404", async () => {
    expect((await send(agent, `${server.url}/v1/routes`, "GET")).status).toBe(404);
    const r = Router();
    r.get("/routes", (_req, res) => {
      res.json({ ok: true });
    });
    server.mount("/v1", r);
    const got = await send(agent, `${server.url}/v1/routes`, "GET");
    expect([got.status, got.json]).toEqual([200, { ok: true }]);
  });

  it("picks up a rotated certificate on disk without a restart", async () => {
    const before = await servedFingerprint("127.0.0.1", server.address.port);
    const newCa = await rotate(dir);
    const after = await waitFor(
      "the rotated certificate served",
      async () => {
        const fp = await servedFingerprint("127.0.0.1", server.address.port);
        return fp === before ? undefined : fp;
      },
      5_000,
      50,
    );
    expect(after).not.toBe(before);
    // New connections verify against the new certificate and admission still works.
    const fresh = makeAgent(newCa);
    try {
      const r = await send(
        fresh,
        `${server.url}/mutate`,
        "POST",
        JSON.stringify(review(samplePod())),
      );
      expect(r.status).toBe(200);
    } finally {
      fresh.destroy();
    }
  });

  it("keeps the old certificate when the new files are not a valid pair", async () => {
    const before = await servedFingerprint("127.0.0.1", server.address.port);
    writeFileSync(join(dir, "tls.crt"), "-----BEGIN CERTIFICATE-----\ngarbage\n");
    expect(await server.reloadTls()).toBe(false);
    expect(await servedFingerprint("127.0.0.1", server.address.port)).toBe(before);
    await rotate(dir);
    expect(await server.reloadTls()).toBe(true);
  });
});

describe("webhook server drain (in-process)", () => {
  it("ends the connection of an answer begun before the drain and finished after the listener closed, without waiting for the grace", async () => {
    const dir = mkdtempSync(join(tmpdir(), "verso-webhook-long-"));
    const caPem = await rotate(dir);
    const server = await startServer(config(dir), { logger: quiet });
    // A long-lived answer (as a route stream is): headers out now, the end only on shutdown,
    // and then a little later, as when the last bytes wait for a slow client.
    let held: Response | undefined;
    const r = Router();
    r.get("/long", (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("started\n");
      held = res;
    });
    server.mount("/", r);
    server.onListenerClose(() => setTimeout(() => held?.end("ended\n"), 200));
    const agent = makeAgent(caPem, 1); // keep-alive: the connection outlives the answer
    try {
      const answer = send(agent, `${server.url}/long`, "GET");
      await waitFor("the answer's headers", async () => held, 5_000, 10);
      const started = Date.now();
      await server.close(0);
      expect(ending(await answer)).toEqual({
        status: 200,
        connection: "keep-alive",
        text: "started\nended\n",
      });
      // The grace is 5 s: closing waited only for the answer.
      expect(Date.now() - started).toBeLessThan(2_500);
    } finally {
      agent.destroy();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("webhook server with --controller-ca", () => {
  it("injects the CA file's PEM into proxies, and refuses a file that is not PEM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "verso-webhook-ca-"));
    try {
      const caPem = await rotate(dir);
      const server = await startServer(config(dir, ["--controller-ca", join(dir, "tls.crt")]), {
        logger: quiet,
      });
      const agent = makeAgent(caPem);
      try {
        const r = await send(
          agent,
          `${server.url}/mutate`,
          "POST",
          JSON.stringify(review(samplePod())),
        );
        const ops = decodePatch(r.json) ?? [];
        const pod = fjp.applyPatch(structuredClone(samplePod()), ops, true, false).newDocument as {
          spec: { initContainers: { name: string; env: { name: string; value?: string }[] }[] };
        };
        const proxy = pod.spec.initContainers.find((c) => c.name === "verso-proxy");
        expect(proxy?.env.find((e) => e.name === "VERSO_CONTROLLER_CA_PEM")?.value).toBe(caPem);
      } finally {
        agent.destroy();
        await server.close();
      }
      writeFileSync(join(dir, "not-a-ca"), "hello");
      await expect(
        startServer(config(dir, ["--controller-ca", join(dir, "not-a-ca")]), { logger: quiet }),
      ).rejects.toMatchObject({ code: "WEBHOOK_CA_INVALID" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

afterAll(() => stopAll());

/** `node webhook/main.ts <args>`, logging to dir/webhook.log. */
const spawnMain = (dir: string, args: string[]) =>
  startProcess({
    name: "webhook",
    command: NODE,
    args: [WEBHOOK_MAIN, ...args],
    cwd: REPO_ROOT,
    logFile: join(dir, "webhook.log"),
  });

/** `node webhook/main.ts` with a self-signed pair in `dir`; resolves once it serves. */
async function startMain(dir: string, extra: string[] = []) {
  const proc = spawnMain(dir, [
    "--listen",
    "127.0.0.1:0",
    "--no-controller",
    "--self-signed-dir",
    dir,
    "--log-level",
    "info",
    ...extra,
  ]);
  const [, url] = await waitForLog(proc, /"msg":"webhook serving","url":"(https:[^"]+)"/, 20_000);
  return { proc, url: url!, log: () => readFileSync(proc.logFile, "utf8") };
}

describe("node webhook/main.ts (the real process)", () => {
  it("starts with a self-signed pair, answers admission, exits 0 on SIGTERM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "verso-webhook-main-"));
    const { proc, url, log } = await startMain(dir, ["--drain-delay", "0"]);
    expect(log()).toContain(join(dir, "cert.pem"));
    const agent = makeAgent(readFileSync(join(dir, "cert.pem"), "utf8"));
    try {
      const r = await send(agent, `${url}/mutate`, "POST", JSON.stringify(review(samplePod())));
      expect(r.status).toBe(200);
      expect(responseOf(r.json).patchType).toBe("JSONPatch");
      const bad = await send(agent, `${url}/mutate`, "POST", "{");
      expect(bad.status).toBe(400);
      expect((await send(agent, `${url}/healthz`, "GET")).status).toBe(200);
    } finally {
      agent.destroy();
    }
    process.kill(proc.pid, "SIGTERM");
    expect((await proc.exited).code).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it("drains on SIGTERM: /readyz 503 while new connections are still served (Connection: close) for --drain-delay, then refused; in-flight work answered; exit 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "verso-webhook-drain-"));
    // Long enough for a few TLS handshakes on a loaded machine; nothing below sleeps it out.
    const { proc, url, log } = await startMain(dir, ["--drain-delay", "2s"]);
    const caPem = readFileSync(join(dir, "cert.pem"), "utf8");
    const held = makeAgent(caPem, 1);
    const fresh = makeAgent(caPem);
    try {
      // In flight from before SIGTERM until after the listener has closed.
      const body = JSON.stringify(review(samplePod(), { uid: "in-flight" }));
      const inflight = sendHeld(held, `${url}/mutate`, "POST", body);
      // Awaited below; if a step before fails, its rejection must not surface as unhandled.
      inflight.result.catch(() => undefined);
      await inflight.continued;

      process.kill(proc.pid, "SIGTERM");
      await waitForLog(proc, /shutting down/, 5_000);

      // New connections during the delay: not ready, yet admission is answered, and every
      // answer ends its connection, so each request here opens a new one.
      const ready = ending(await send(fresh, `${url}/readyz`, "GET"));
      expect(ready).toEqual({
        status: 503,
        connection: "close",
        text: JSON.stringify({ code: "not_ready", message: "not ready: draining" }),
      });
      const admitted = await send(
        fresh,
        `${url}/mutate`,
        "POST",
        JSON.stringify(review(samplePod(), { uid: "during-drain" })),
      );
      expect([admitted.status, admitted.headers.connection]).toEqual([200, "close"]);
      expect(responseOf(admitted.json)).toMatchObject({
        uid: "during-drain",
        allowed: true,
        patchType: "JSONPatch",
      });
      const healthy = ending(await send(fresh, `${url}/healthz`, "GET"));
      expect(healthy).toEqual({ status: 200, connection: "close", text: "ok\n" });
      expect(proc.running()).toBe(true);
      expect(log()).not.toMatch(/no longer accepting/); // all of the above was in the delay

      // After the delay: new connections are refused.
      await waitForLog(proc, /no longer accepting connections/, 10_000);
      await expect(send(fresh, `${url}/readyz`, "GET")).rejects.toMatchObject({
        code: "ECONNREFUSED",
      });

      // The request in flight since before SIGTERM is still answered, and ends its connection.
      inflight.finish();
      const r = await inflight.result;
      expect([r.status, r.headers.connection]).toEqual([200, "close"]);
      expect(responseOf(r.json)).toMatchObject({ uid: "in-flight", allowed: true });

      const code = await Promise.race([
        proc.exited.then((exit) => exit.code),
        new Promise((resolve) => setTimeout(resolve, 15_000, "still running 15 s after SIGTERM")),
      ]);
      expect(code).toBe(0);
    } finally {
      held.destroy();
      fresh.destroy();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("takes an old duration spelling, and says once at start what to write instead", async () => {
    const dir = mkdtempSync(join(tmpdir(), "verso-webhook-main-"));
    const { proc, log } = await startMain(dir, [
      "--drain-delay",
      "0",
      "--tls-poll-interval-ms",
      "500",
    ]);
    const said = log().match(
      /--tls-poll-interval-ms is deprecated, write --tls-poll-interval 500ms/g,
    );
    expect(said).toHaveLength(1);
    process.kill(proc.pid, "SIGTERM");
    expect((await proc.exited).code).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it("skips the drain delay on SIGINT (a person at a terminal): exit 0 long before --drain-delay", async () => {
    const dir = mkdtempSync(join(tmpdir(), "verso-webhook-sigint-"));
    const { proc } = await startMain(dir, ["--drain-delay", "30s"]);
    process.kill(proc.pid, "SIGINT");
    const code = await Promise.race([
      proc.exited.then((exit) => exit.code),
      new Promise((resolve) => setTimeout(resolve, 10_000, "still running 10 s after SIGINT")),
    ]);
    expect(code).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it("fails fast with a message on a bad flag", async () => {
    const dir = mkdtempSync(join(tmpdir(), "verso-webhook-flag-"));
    const proc = spawnMain(dir, ["--capture", "ebpf"]);
    expect((await proc.exited).code).toBe(2);
    await waitForLog(proc, /--capture ebpf: use iptables or port/, 5_000);
    rmSync(dir, { recursive: true, force: true });
  });
});
