/**
 * Hostile input at the admission endpoint of the real process (`node webhook/main.ts
 * --no-controller`, real HTTPS on 127.0.0.1): oversized, slow, deeply nested, mistyped and
 * malformed AdmissionReviews. Each case is sent as raw bytes on its own TLS connection and
 * must get a 4xx with the server's error body `{code, message}` within a bound, leave the
 * process's memory bounded (VmRSS and its peak VmHWM from /proc/<pid>/status), and leave the
 * server answering a valid review. The bounds are the ones docs/security.md states:
 *
 *   body over 3 MiB (by Content-Length or as it streams)   413 body_too_large, closed
 *   head not complete 10 s after its first byte             408 request_timeout, closed
 *   request (head + body) not complete 20 s after it began  408 request_timeout, closed
 *   JSON nested deeper than 64                              400 too_deep (before JSON.parse)
 *   not application/json, or any Content-Encoding           415 unsupported_media_type
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NODE, REPO_ROOT, WEBHOOK_MAIN } from "../harness/paths.ts";
import { sleep } from "../harness/ports.ts";
import { startProcess, waitForLog, type ManagedProcess } from "../harness/processes.ts";
import { makeAgent, review, samplePod, send } from "./webhookClient.ts";

let dir: string;
let proc: ManagedProcess;
let url: string;
let port: number;
let ca: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "verso-webhook-hostile-"));
  proc = startProcess({
    name: "webhook",
    command: NODE,
    args: [
      WEBHOOK_MAIN,
      "--listen",
      "127.0.0.1:0",
      "--no-controller",
      "--self-signed-dir",
      dir,
      "--drain-delay",
      "0",
      "--log-level",
      "info",
    ],
    cwd: REPO_ROOT,
    logFile: join(dir, "webhook.log"),
  });
  const [, served] = await waitForLog(
    proc,
    /"msg":"webhook serving","url":"(https:[^"]+)"/,
    20_000,
  );
  url = served!;
  port = Number(new URL(url).port);
  ca = readFileSync(join(dir, "cert.pem"), "utf8");
});

afterAll(async () => {
  await proc?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** VmRSS and VmHWM (peak) of the webhook process, in MiB. */
function memory(): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${proc.pid}/status`, "utf8");
  const kib = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { rss: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
}

interface Answer {
  status: number;
  /** The parsed body (`{code, message}` for a refusal). */
  json: { code?: string; message?: string } | undefined;
  /** From the request's first byte to this answer's last (ms). */
  ms: number;
}

interface Exchange {
  /** Every complete answer on the connection, in order. */
  answers: Answer[];
  /** From the first byte sent to the server closing the connection (Infinity: it did not). */
  closedMs: number;
  /** Bytes of the request written before the first answer or the close. */
  sent: number;
}

interface Plan {
  head: string;
  body?: Buffer;
  /**
   * Send this many bytes every `everyMs` instead of all at once: the head and body
   * (`from: "head"`, a slowloris client) or the body after a whole head (`from: "body"`).
   * `endless`: after the body, send these bytes each tick for ever.
   */
  pace?: { bytes: number; everyMs: number; from: "head" | "body"; endless?: Buffer };
  /** After the first answer, send this on the same connection (is it still usable?). */
  then?: string;
  /** Give up (no answer, no close) after this long. */
  waitMs: number;
}

/** Complete HTTP/1.1 answers (Content-Length framed) at the front of `buf`. */
function answersIn(buf: Buffer, at: number, into: Answer[]): number {
  let offset = 0;
  for (;;) {
    const headEnd = buf.indexOf("\r\n\r\n", offset);
    if (headEnd < 0) return offset;
    const head = buf.subarray(offset, headEnd).toString("latin1");
    const length = Number(/^content-length: *(\d+)$/im.exec(head)?.[1] ?? 0);
    if (buf.length < headEnd + 4 + length) return offset;
    const text = buf.subarray(headEnd + 4, headEnd + 4 + length).toString("utf8");
    let json: Answer["json"];
    try {
      json = JSON.parse(text) as Answer["json"];
    } catch {
      json = undefined;
    }
    into.push({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), json, ms: at });
    offset = headEnd + 4 + length;
  }
}

/** One request as raw bytes on a new TLS connection; what came back, and when. */
function exchange(plan: Plan): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({ host: "127.0.0.1", port, ca });
    let pending = Buffer.alloc(0);
    const answers: Answer[] = [];
    let start = 0;
    let sent = 0;
    let ticker: NodeJS.Timeout | undefined;
    const expected = plan.then === undefined ? 1 : 2;
    const finish = (closedMs: number): void => {
      clearTimeout(timer);
      clearInterval(ticker);
      socket.destroy();
      resolve({ answers, closedMs, sent });
    };
    const timer = setTimeout(() => finish(Infinity), plan.waitMs);
    socket.on("data", (c: Buffer) => {
      const before = answers.length;
      pending = Buffer.concat([pending, c]);
      pending = pending.subarray(answersIn(pending, Date.now() - start, answers));
      if (before === 0 && answers.length > 0) clearInterval(ticker);
      if (before === 0 && answers.length > 0 && plan.then !== undefined) socket.write(plan.then);
      // The follow-up answered: the connection was kept. Otherwise a connection the server
      // closes goes on to "close" by itself: wait for that briefly.
      if (answers.length >= expected) {
        if (plan.then !== undefined) finish(Infinity);
        else setTimeout(() => finish(Infinity), 2_000);
      }
    });
    socket.once("close", () => finish(Date.now() - start));
    socket.on("error", (error: NodeJS.ErrnoException) => {
      // Writing into a connection the server has closed: the answer (if any) is already read.
      if (["EPIPE", "ECONNRESET"].includes(error.code ?? "")) return;
      if (start === 0) reject(error);
    });
    socket.once("secureConnect", () => {
      start = Date.now();
      const head = Buffer.from(plan.head, "latin1");
      const all = Buffer.concat([head, plan.body ?? Buffer.alloc(0)]);
      const pace = plan.pace;
      if (pace === undefined) {
        socket.write(all, () => (sent = all.length));
        return;
      }
      if (pace.from === "body") {
        socket.write(head);
        sent = head.length;
      }
      ticker = setInterval(() => {
        if (socket.destroyed) return;
        if (sent < all.length) {
          socket.write(all.subarray(sent, sent + pace.bytes));
          sent = Math.min(all.length, sent + pace.bytes);
        } else if (pace.endless && socket.writableLength < 1024 * 1024) {
          socket.write(pace.endless);
          sent += pace.endless.length;
        }
      }, pace.everyMs);
    });
  });
}

const MiB = 1024 * 1024;
const headFor = (headers: Record<string, string | number>): string =>
  `POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}\r\n`;
const json = (body: Buffer | string, extra: Record<string, string | number> = {}) => ({
  head: headFor({
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...extra,
  }),
  body: Buffer.isBuffer(body) ? body : Buffer.from(body),
});

/**
 * A review of a pod that would be injected, carrying `nested` (raw JSON text) as a field of
 * its container, 7 levels down (review, request, object, spec, containers, container, field).
 */
const reviewWith = (nested: string): string => {
  const marker = "__NESTED__";
  const pod = samplePod() as { spec: { containers: Record<string, unknown>[] } };
  pod.spec.containers[0]!.extra = marker;
  return JSON.stringify(review(pod)).replace(`"${marker}"`, nested);
};
/** `[` nested so that the whole review is `depth` deep (see reviewWith). */
const reviewNested = (depth: number): string =>
  reviewWith("[".repeat(depth - 6) + "]".repeat(depth - 6));

/** After each hostile case: a valid review is still answered, and with the right uid. */
async function stillServes(uid: string): Promise<void> {
  const agent = makeAgent(ca);
  try {
    const r = await send(
      agent,
      `${url}/mutate`,
      "POST",
      JSON.stringify(review(samplePod(), { uid })),
    );
    expect(r.status).toBe(200);
    expect((r.json as { response: { uid: string; allowed: boolean } }).response).toMatchObject({
      uid,
      allowed: true,
    });
  } finally {
    agent.destroy();
  }
  expect(proc.running()).toBe(true);
}

const report: string[] = [];
afterAll(() => {
  if (report.length > 0) console.info(`webhook hostile input:\n  ${report.join("\n  ")}`);
});

interface Case {
  name: string;
  plan: () => Plan;
  status: number;
  code: string;
  /** The answer comes within this (ms from the first byte sent). */
  answerWithinMs: number;
  /** Not before this: a timeout must not fire early either. */
  notBeforeMs?: number;
  /**
   * true: the server closes the connection after its answer (a timeout: the client is slow).
   * false: the connection stays usable, shown by a valid review answered on it next.
   */
  closes: boolean;
}

const HUGE = 10 * MiB;
const DEPTH = 100_000;
const validReview = (uid: string): string => {
  const body = JSON.stringify(review(samplePod(), { uid }));
  return headFor({ "content-type": "application/json", "content-length": body.length }) + body;
};
const chunked = (chunk: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]);
const chunkedHead = headFor({ "content-type": "application/json", "transfer-encoding": "chunked" });
const contentType = (headers: Record<string, string>): Plan => {
  const body = Buffer.from(JSON.stringify(review(samplePod())));
  return { head: headFor({ ...headers, "content-length": body.length }), body, waitMs: 10_000 };
};

const cases: Case[] = [
  {
    name: "10 MiB body, announced by Content-Length",
    plan: () => ({ ...json(Buffer.alloc(HUGE, 0x20)), waitMs: 10_000 }),
    status: 413,
    code: "body_too_large",
    answerWithinMs: 2_000,
    closes: false,
  },
  {
    name: "10 MiB body, chunked (no length to refuse it by)",
    plan: () => ({
      head: chunkedHead,
      body: Buffer.concat([
        ...Array.from({ length: 10 }, () => chunked(Buffer.alloc(MiB, 0x20))),
        Buffer.from("0\r\n\r\n"),
      ]),
      waitMs: 10_000,
    }),
    status: 413,
    code: "body_too_large",
    answerWithinMs: 3_000,
    closes: false,
  },
  {
    name: "an endless chunked body at 6 MiB/s",
    plan: () => ({
      head: chunkedHead,
      pace: {
        bytes: 1,
        everyMs: 10,
        from: "body",
        endless: chunked(Buffer.alloc(64 * 1024, 0x20)),
      },
      waitMs: 40_000,
    }),
    // Past 3 MiB it is refused, but read off and dropped until it ends; it never does, so
    // the request's 20 s cut it.
    status: 408,
    code: "request_timeout",
    notBeforeMs: 19_500,
    answerWithinMs: 22_000,
    closes: true,
  },
  {
    name: "gzip bomb (10 MiB of spaces in 10 KiB, Content-Encoding: gzip)",
    plan: () => ({
      ...json(gzipSync(Buffer.alloc(HUGE, 0x20)), { "content-encoding": "gzip" }),
      waitMs: 10_000,
    }),
    status: 415,
    code: "unsupported_media_type",
    answerWithinMs: 2_000,
    closes: false,
  },
  {
    name: `[ nested ${DEPTH} deep, never closed`,
    plan: () => ({ ...json("[".repeat(DEPTH)), waitMs: 10_000 }),
    status: 400,
    code: "too_deep",
    answerWithinMs: 1_000,
    closes: false,
  },
  {
    name: `[ nested ${DEPTH} deep, balanced (valid JSON)`,
    plan: () => ({ ...json("[".repeat(DEPTH) + "]".repeat(DEPTH)), waitMs: 10_000 }),
    status: 400,
    code: "too_deep",
    answerWithinMs: 1_000,
    closes: false,
  },
  {
    // Before the depth limit: JSON.parse coped, the mutation's copy overflowed the stack and
    // the pod was admitted uninjected, counted as a Verso bug (internal_error).
    name: `a review of an injectable pod holding {"a": nested ${DEPTH} deep`,
    plan: () => ({
      ...json(reviewWith('{"a":'.repeat(DEPTH) + "1" + "}".repeat(DEPTH))),
      waitMs: 10_000,
    }),
    status: 400,
    code: "too_deep",
    answerWithinMs: 1_000,
    closes: false,
  },
  {
    name: "a review nested 65 deep (one past the limit)",
    plan: () => ({ ...json(reviewNested(65)), waitMs: 10_000 }),
    status: 400,
    code: "too_deep",
    answerWithinMs: 1_000,
    closes: false,
  },
  ...(
    [
      ["text/plain", { "content-type": "text/plain" }],
      ["form-urlencoded", { "content-type": "application/x-www-form-urlencoded" }],
      ["none", {}],
      ["application/json; charset=utf-16", { "content-type": "application/json; charset=utf-16" }],
    ] as const
  ).map(([name, headers]): Case => ({
    name: `Content-Type ${name}`,
    plan: () => contentType(headers),
    status: 415,
    code: "unsupported_media_type",
    answerWithinMs: 1_000,
    closes: false,
  })),
  {
    name: "Content-Type text/plain with a 10 MiB body",
    plan: () => ({
      head: headFor({ "content-type": "text/plain", "content-length": HUGE }),
      body: Buffer.alloc(HUGE, 0x20),
      waitMs: 10_000,
    }),
    status: 415,
    code: "unsupported_media_type",
    answerWithinMs: 2_000,
    closes: false,
  },
  {
    name: "malformed JSON",
    plan: () => ({ ...json('{"apiVersion": "admission.k8s.io/v1", "kind": '), waitMs: 10_000 }),
    status: 400,
    code: "malformed_json",
    answerWithinMs: 1_000,
    closes: false,
  },
  {
    name: "a review with no request",
    plan: () => ({
      ...json(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" })),
      waitMs: 10_000,
    }),
    status: 400,
    code: "missing_request",
    answerWithinMs: 1_000,
    closes: false,
  },
  {
    name: "a review whose request is null",
    plan: () => ({
      ...json('{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": null}'),
      waitMs: 10_000,
    }),
    status: 400,
    code: "missing_request",
    answerWithinMs: 1_000,
    closes: false,
  },
  {
    name: "body dribbled one byte per 200 ms",
    plan: () => ({
      ...json(JSON.stringify(review(samplePod()))),
      pace: { bytes: 1, everyMs: 200, from: "body" },
      waitMs: 40_000,
    }),
    status: 408,
    code: "request_timeout",
    // The request began with its head: 20 s for all of it, checked every second.
    notBeforeMs: 19_500,
    answerWithinMs: 22_000,
    closes: true,
  },
  {
    name: "head dribbled one byte per 200 ms (slowloris)",
    plan: () => ({
      ...json(JSON.stringify(review(samplePod()))),
      pace: { bytes: 1, everyMs: 200, from: "head" },
      waitMs: 40_000,
    }),
    status: 408,
    code: "request_timeout",
    notBeforeMs: 9_500,
    answerWithinMs: 12_000,
    closes: true,
  },
];

describe("the webhook process under hostile input", () => {
  for (const c of cases) {
    it(`${c.name}: ${c.status} ${c.code}, bounded time and memory, still serving`, async () => {
      const before = memory();
      const uid = `same-connection-after-${c.code}`;
      const plan = c.plan();
      const r = await exchange(c.closes ? plan : { ...plan, then: validReview(uid) });
      const after = memory();
      const [first, next] = r.answers;
      report.push(
        `${c.name}: ${first?.status} ${first?.json?.code} in ${first?.ms} ms; ` +
          `${r.closedMs === Infinity ? `connection kept, next review on it: ${next?.status}` : `closed ${r.closedMs - (first?.ms ?? 0)} ms after the answer`}; ` +
          `${(r.sent / MiB).toFixed(1)} MiB sent; RSS ${before.rss.toFixed(0)} -> ${after.rss.toFixed(0)} MiB, ` +
          `peak ${before.peak.toFixed(0)} -> ${after.peak.toFixed(0)} MiB`,
      );
      expect({ status: first?.status, code: first?.json?.code }).toEqual({
        status: c.status,
        code: c.code,
      });
      expect(typeof first?.json?.message).toBe("string");
      expect(first!.ms).toBeLessThanOrEqual(c.answerWithinMs);
      if (c.notBeforeMs !== undefined) expect(first!.ms).toBeGreaterThanOrEqual(c.notBeforeMs);
      if (c.closes) expect(r.closedMs - first!.ms).toBeLessThan(2_000);
      else expect([next?.status, r.closedMs]).toEqual([200, Infinity]);
      // Bounded: what a case adds to the peak does not grow with what is sent (10 MiB bodies
      // add about 10 MiB of garbage not yet collected; an endless one about 50).
      expect(after.peak - before.peak).toBeLessThan(64);
      await stillServes(`after-${c.code}-${c.status}`);
    });
  }

  it("a review nested exactly 64 deep (the limit) is admitted and injected", async () => {
    const agent = makeAgent(ca);
    try {
      const r = await send(agent, `${url}/mutate`, "POST", reviewNested(64));
      expect(r.status).toBe(200);
      expect((r.json as { response: { patchType?: string } }).response.patchType).toBe("JSONPatch");
    } finally {
      agent.destroy();
    }
  });

  it("64 slow clients at once (heads and bodies dribbled) do not delay a valid review", async () => {
    const slow = Array.from({ length: 64 }, (_, i) =>
      exchange({
        ...json(JSON.stringify(review(samplePod()))),
        pace: { bytes: 1, everyMs: 100, from: i % 2 === 0 ? "head" : "body" },
        waitMs: 30_000,
      }),
    );
    await sleep(1_000);
    const started = Date.now();
    await stillServes("while-64-slow-clients");
    const ms = Date.now() - started;
    const during = memory();
    const results = await Promise.all(slow);
    const statuses = [...new Set(results.map((r) => r.answers[0]?.status))];
    report.push(
      `64 slow clients: a valid review answered in ${ms} ms meanwhile; they got ${JSON.stringify(statuses)} ` +
        `within ${Math.max(...results.map((r) => r.answers[0]?.ms ?? Infinity))} ms; RSS ${during.rss.toFixed(0)} MiB`,
    );
    expect(ms).toBeLessThan(1_000);
    expect(statuses).toEqual([408]);
  });

  it("after all of it: peak RSS within the Deployment's 512 MiB limit, no stack overflow", async () => {
    const m = memory();
    report.push(`final: RSS ${m.rss.toFixed(0)} MiB, peak ${m.peak.toFixed(0)} MiB`);
    expect(m.peak).toBeLessThan(512);
    const agent = makeAgent(ca);
    try {
      const metrics = (await send(agent, `${url}/metrics`, "GET")).body;
      // No hostile body reached admit() and made it throw.
      expect(metrics).not.toMatch(/verso_webhook_admission_errors_total\{/);
      expect(metrics).toMatch(
        /verso_webhook_admission_requests_total\{outcome="rejected",reason="too_deep"\} 4/,
      );
    } finally {
      agent.destroy();
    }
    expect(readFileSync(proc.logFile, "utf8")).not.toMatch(/Maximum call stack|unhandled error/);
  });
});
