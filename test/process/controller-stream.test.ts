/**
 * The route stream edge on a real HTTPS server (127.0.0.1, port 0): SSE framing, heartbeats,
 * Last-Event-ID, the table pushed on change, refusals with reasons, the TokenReview cache, and
 * a stalled client that gets only the newest table once it reads again.
 * The review function is a plain function standing in for the apiserver (the cluster suite
 * checks real tokens); everything from the socket up is the production code.
 * Last, the streams through the webhook server's drain (startServer, as main.ts wires it).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
} from "node:http";
import { request } from "node:https";
import type { TLSSocket } from "node:tls";
import { setImmediate as tick } from "node:timers/promises";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../shared/log.ts";
import type { RoutingTable } from "../../shared/table.ts";
import { startServer } from "../../webhook/admission/server.ts";
import { parseConfig } from "../../webhook/config.ts";
import { createHub, formatEvent, routesRouter } from "../../webhook/controller/io/stream.ts";
import { createAuthenticator, type ReviewAnswer } from "../../webhook/controller/io/tokenReview.ts";
import { openStream, type TableStream } from "../cluster/controllerFixtures.ts";
import { makeCa, makeLeaf } from "../harness/pki.ts";
import { portAccepts, waitFor } from "../harness/ports.ts";

const table = (revision: number, weight?: number): RoutingTable => ({
  app: "shop",
  revision,
  endpoints: { v1: ["127.0.0.2:15006"] },
  ...(weight !== undefined ? { release: { version: "v2", strategy: "canary", weight } } : {}),
});

let reviews = 0;
const review = async (token: string): Promise<ReviewAnswer> => {
  reviews++;
  if (token === "shop-token")
    return {
      authenticated: true,
      username: "system:serviceaccount:shop:default",
      audiences: ["verso"],
    };
  if (token === "user-token")
    return { authenticated: true, username: "alice", audiences: ["verso"] };
  if (token === "down") throw new Error("apiserver unreachable");
  return { authenticated: false, error: "invalid bearer token" };
};

describe("route stream over HTTPS", () => {
  let server: Server;
  let base: string;
  let ca: string;
  const hub = createHub();
  const serverSockets = new Set<TLSSocket>();

  beforeAll(async () => {
    const caPem = await makeCa("test-ca");
    const leaf = await makeLeaf(caPem, {
      commonName: "localhost",
      ips: ["127.0.0.1"],
      server: true,
    });
    ca = caPem.cert;
    const app = express();
    app.use(
      routesRouter({
        hub,
        auth: createAuthenticator(review),
        log: createLogger("test", "error"),
        heartbeatMs: 200,
      }),
    );
    server = createServer({ cert: leaf.cert, key: leaf.key }, app);
    server.on("secureConnection", (s: TLSSocket) => {
      serverSockets.add(s);
      s.once("close", () => serverSockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    base = `https://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
    hub.set("shop", table(100, 5));
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  /** Reads the raw stream for `ms`, optionally running `during` after connecting. */
  function read(
    path: string,
    headers: Record<string, string>,
    ms: number,
    during?: () => void,
  ): Promise<{ status: number; type?: string; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(`${base}${path}`, { ca, headers });
      req.once("error", reject);
      req.once("response", (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"], body }),
        );
        if (res.statusCode === 200) {
          during?.();
          setTimeout(() => {
            req.destroy();
            resolve({ status: 200, type: res.headers["content-type"], body });
          }, ms);
        }
      });
      req.end();
    });
  }
  const auth = { authorization: "Bearer shop-token" };
  const q = "/v1/routes?namespace=shop&app=shop";

  it("sends the table on connect, then every change, with heartbeats", async () => {
    const r = await read(q, auth, 700, () =>
      setTimeout(() => hub.set("shop", table(101, 20)), 100),
    );
    expect(r.type).toMatch(/^text\/event-stream/);
    const events = r.body.split("\n\n").filter((b) => b.startsWith("event: table"));
    expect(events).toHaveLength(2);
    expect(events[0]).toBe(`event: table\nid: 100\ndata: ${JSON.stringify(table(100, 5))}`);
    expect(events[1]).toContain("id: 101");
    expect(r.body).toContain(": hb\n\n");
  });

  it("an app with no table yet: the stream stays open with heartbeats and sends it when it appears", async () => {
    const cart = { ...table(300), app: "cart" };
    const r = await read("/v1/routes?namespace=shop&app=cart", auth, 900, () =>
      setTimeout(() => hub.set("shop", cart), 500),
    );
    expect(r.status).toBe(200);
    const firstTable = r.body.indexOf("event: table");
    expect(r.body.indexOf(": hb\n\n")).toBeGreaterThanOrEqual(0);
    expect(r.body.indexOf(": hb\n\n")).toBeLessThan(firstTable); // waited, heartbeating
    expect(r.body.slice(firstTable)).toContain(`data: ${JSON.stringify(cart)}`);
  });

  it("a replica that is shutting down refuses new streams with 503 ShuttingDown", async () => {
    const app = express();
    app.use(
      routesRouter({
        hub,
        auth: createAuthenticator(review),
        log: createLogger("test", "error"),
        closing: AbortSignal.abort(),
      }),
    );
    const plain = await new Promise<HttpServer>((resolve) => {
      const srv = createHttpServer(app).listen(0, "127.0.0.1", () => resolve(srv));
    });
    try {
      const { port } = plain.address() as { port: number };
      const res = await fetch(`http://127.0.0.1:${port}${q}`, { headers: auth });
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({
        code: "shutting_down",
        message: "this replica is shutting down: connect to another",
        reason: "ShuttingDown",
      });
    } finally {
      await new Promise((r) => plain.close(r));
    }
  });

  it("does not resend the table a reconnecting client already has (Last-Event-ID)", async () => {
    const same = await read(q, { ...auth, "last-event-id": "101" }, 300);
    expect(same.body).not.toContain("event: table");
    const older = await read(q, { ...auth, "last-event-id": "99" }, 300);
    expect(older.body).toContain("id: 101");
  });

  it("refuses with a status and {code, message} (and the deprecated reason)", async () => {
    const cases: [Record<string, string>, string, number, string, string][] = [
      [{}, q, 401, "no_token", "NoToken"],
      [{ authorization: "Basic abc" }, q, 401, "no_token", "NoToken"],
      [{ authorization: "Bearer garbage" }, q, 401, "token_invalid", "TokenInvalid"],
      [{ authorization: "Bearer user-token" }, q, 403, "not_service_account", "NotServiceAccount"],
      [auth, "/v1/routes?namespace=other&app=shop", 403, "wrong_namespace", "WrongNamespace"],
      [{ authorization: "Bearer down" }, q, 503, "review_unavailable", "ReviewUnavailable"],
      [auth, "/v1/routes?namespace=shop", 400, "bad_query", "BadQuery"],
    ];
    for (const [headers, path, status, code, reason] of cases) {
      const r = await read(path, headers, 0);
      const body = JSON.parse(r.body) as Record<string, unknown>;
      expect({ status: r.status, code: body.code, reason: body.reason }).toEqual({
        status,
        code,
        reason,
      });
      expect(typeof body.message).toBe("string");
    }
  });

  it("reviews a token once per cache period, and never caches an unavailable apiserver", async () => {
    const before = reviews;
    for (let i = 0; i < 3; i++) await read(q, auth, 50);
    expect(reviews - before).toBe(0); // cached from the earlier tests
    const d = reviews;
    await read(q, { authorization: "Bearer down" }, 0);
    await read(q, { authorization: "Bearer down" }, 0);
    expect(reviews - d).toBe(2);
  });

  it("never queues tables for a slow client: it gets the newest once its socket drains", async () => {
    // ~95 KB per event, 300 of them: 28 MB, several times what loopback's socket buffers
    // (a few MB) can hold, so the server must meet backpressure while the client is stalled.
    const endpoints = {
      v1: Array.from({ length: 5000 }, (_, i) => `10.1.${i >> 8}.${i & 255}:15006`),
    };
    const big = (revision: number): RoutingTable => ({ app: "big", revision, endpoints });
    const eventBytes = Buffer.byteLength(formatEvent(big(1)));
    const published = 300;
    hub.set("shop", big(1));

    let body = "";
    const req = request(`${base}/v1/routes?namespace=shop&app=big`, {
      ca,
      headers: auth,
      agent: false,
    });
    req.end();
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      req.once("response", resolve);
      req.once("error", reject);
    });
    expect(res.statusCode).toBe(200);
    res.setEncoding("utf8");
    res.on("data", (c: string) => (body += c));
    /** Events received whole so far: [id, table] (the last piece may still be arriving). */
    const events = (): [number, RoutingTable][] =>
      body
        .split("\n\n")
        .slice(0, -1)
        .filter((e) => e.startsWith("event: table\n"))
        .map((e) => {
          const [, id, data] = /^event: table\nid: (\d+)\ndata: (.*)$/s.exec(e) ?? [];
          return [Number(id), JSON.parse(data ?? "null") as RoutingTable];
        });
    const has = (revision: number): true | undefined => {
      const at = body.indexOf(`\nid: ${revision}\n`);
      return at >= 0 && body.indexOf("\n\n", at) >= 0 ? true : undefined;
    };
    try {
      await waitFor("the table on connect", async () => has(1), 5_000, 10);
      // Stalled: the client stops reading, its kernel buffers fill, then the server's.
      res.pause();
      const mine = [...serverSockets].find((s) => s.remotePort === req.socket?.localPort);
      if (!mine) throw new Error("no server-side socket for the slow client");
      let maxHeld = 0;
      for (let rev = 2; rev <= published; rev++) {
        hub.set("shop", big(rev));
        await tick();
        maxHeld = Math.max(maxHeld, mine.writableLength);
      }
      expect(mine.writableNeedDrain).toBe(true); // the stalled client did hold the server up
      // What the server holds for this client is at most a socket buffer plus one event,
      // whatever the number of publishes (queueing them would hold most of the 28 MB).
      expect(maxHeld).toBeLessThanOrEqual(mine.writableHighWaterMark + eventBytes + 1024);

      res.resume();
      await waitFor("the newest table after draining", async () => has(published), 10_000, 10);
      const got = events();
      for (const [id, t] of got) expect(t).toEqual(big(id));
      const revisions = got.map(([id]) => id);
      expect(revisions[0]).toBe(1);
      expect(revisions.at(-1)).toBe(published);
      expect(revisions).toEqual([...new Set(revisions)].sort((a, b) => a - b));
      // Tables were skipped, not queued; how many depends on the kernel's socket buffers.
      expect(revisions.length).toBeLessThan(published);
    } finally {
      req.destroy();
      hub.delete("shop", "big");
    }
  });

  it("forgets subscribers that went away", async () => {
    await read(q, auth, 100);
    await new Promise((r) => setTimeout(r, 100));
    expect(hub.subscribers()).toBe(0);
  });
});

describe("route streams through the webhook server's drain", () => {
  it("are served and kept current during the drain delay, then end cleanly when the listener closes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "verso-stream-drain-"));
    const config = parseConfig(
      ["--listen", "127.0.0.1:0", "--self-signed-dir", dir, "--no-controller"],
      {},
    );
    if (!config.ok) throw new Error(config.error);
    const log = createLogger("test", "error");
    const server = await startServer(config.value, { logger: log });
    const hub = createHub();
    hub.set("shop", table(200));
    // As webhook/controller/index.ts wires it.
    const closing = new AbortController();
    server.onListenerClose(() => closing.abort());
    server.mount(
      "/",
      routesRouter({ hub, auth: createAuthenticator(review), log, closing: closing.signal }),
    );
    const ca = readFileSync(server.tls.certFile, "utf8");
    const open = () => openStream(server.url, ca, "shop", "shop", "shop-token");
    const streams: TableStream[] = [];
    try {
      // Connected before the drain, on a keep-alive connection (Node's default agent).
      const before = await open();
      streams.push(before);
      await before.until("the table on connect", (t) => t.revision === 200, 5_000);

      const delayMs = 1_500;
      const started = Date.now();
      const closed = server.close(delayMs);
      // Connected during the delay: still served, and told its connection ends with the stream.
      const during = await open();
      streams.push(during);
      expect(during.headers.connection).toBe("close");
      hub.set("shop", table(201, 50));
      for (const s of [before, during])
        await s.until("the table published during the delay", (t) => t.revision === 201, 5_000);
      const still = await Promise.race([before.ended, during.ended, Promise.resolve("open")]);
      expect(still).toBe("open");

      // At the end of the delay: both responses are finished, not cut.
      expect(await before.ended).toBe("end");
      expect(await during.ended).toBe("end");
      expect(Date.now() - started).toBeGreaterThanOrEqual(delayMs - 50);
      await closed;
      // Nothing waited for the 5 s grace after the listener closed.
      expect(Date.now() - started).toBeLessThan(delayMs + 2_500);
      expect(hub.subscribers()).toBe(0);
      expect(await portAccepts("127.0.0.1", server.address.port)).toBe(false);
    } finally {
      for (const s of streams) s.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
