import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../shared/log.ts";
import { freePort } from "../../test/harness/ports.ts";
import { TableStore } from "../config/store.ts";
import { createMetrics } from "../metrics/metrics.ts";
import { HOP_HEADER } from "../routing/hop.ts";
import { createProxy } from "./server.ts";

const listen = (server: net.Server): Promise<number> =>
  new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );

describe("proxy", () => {
  const servers: net.Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });

  /** A proxy for app "shop" at v1 in front of the app at `appPort`, with a hop key, no table. */
  async function start(appPort: number): Promise<{ port: number; store: TableStore }> {
    const log = createLogger("test", "error");
    const store = new TableStore({
      app: "shop",
      version: "v1",
      fileKey: Buffer.from("server-test-hop-key-0123456789ab"),
      allowDerivedKey: false,
      log,
    });
    const proxy = createProxy({
      app: { host: "127.0.0.1", port: appPort },
      version: "v1",
      versionHeader: true,
      idleTimeoutMs: 5_000,
      store,
      metrics: createMetrics("shop", "v1"),
      log,
    });
    servers.push(proxy.server);
    return { port: await listen(proxy.server), store };
  }

  it("a fallback after a refused peer serves locally without the hop token it signed for the peer", async () => {
    // The app answers with the headers it received.
    const app = http.createServer((req, res) => res.end(JSON.stringify(req.headers)));
    servers.push(app);
    const appPort = await listen(app);
    const refused = await freePort();
    const { port, store } = await start(appPort);
    store.apply(
      {
        app: "shop",
        revision: 1,
        release: { version: "v2", strategy: "canary", weight: 100 },
        endpoints: { v2: [`127.0.0.1:${refused}`] },
      },
      false,
    );

    for (const method of ["GET", "POST"]) {
      const { version, body } = await new Promise<{ version: unknown; body: string }>(
        (resolve, reject) => {
          const req = http.request({ host: "127.0.0.1", port, method, path: "/", agent: false });
          req.on("response", (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (c: string) => (body += c));
            res.on("end", () => resolve({ version: res.headers["x-verso-version"], body }));
          });
          req.on("error", reject);
          req.end(method === "POST" ? "payload" : undefined);
        },
      );
      expect(version, method).toBe("v1");
      expect(JSON.parse(body)[HOP_HEADER], method).toBeUndefined();
    }
  });

  it("drops the response headers named by every Connection header (undici path)", async () => {
    // A raw app: node:http would merge or rewrite the two Connection headers.
    const app = net.createServer((socket) => {
      socket.once("data", () =>
        socket.end(
          "HTTP/1.1 200 OK\r\nconnection: x-a\r\nconnection: X-B, close\r\n" +
            "x-a: 1\r\nx-b: 2\r\nx-c: 3\r\ncontent-length: 2\r\n\r\nok",
        ),
      );
    });
    servers.push(app);
    const appPort = await listen(app);
    const { port } = await start(appPort);
    const headers = await new Promise<http.IncomingHttpHeaders>((resolve, reject) => {
      http
        .get({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.headers));
        })
        .on("error", reject);
    });
    expect(headers["x-a"]).toBeUndefined();
    expect(headers["x-b"]).toBeUndefined();
    expect(headers["x-c"]).toBe("3");
  });

  it("a bodyless POST the peer received and then reset is not replayed, here or on the app", async () => {
    let appSaw = 0;
    const app = http.createServer((_req, res) => {
      appSaw++;
      res.end("ok");
    });
    servers.push(app);
    const appPort = await listen(app);
    let peerSaw = 0;
    const peer = net.createServer((socket) =>
      socket.once("data", () => {
        peerSaw++;
        socket.destroy();
      }),
    );
    servers.push(peer);
    const peerPort = await listen(peer);
    const { port, store } = await start(appPort);
    store.apply(
      {
        app: "shop",
        revision: 1,
        release: { version: "v2", strategy: "canary", weight: 100 },
        endpoints: { v2: [`127.0.0.1:${peerPort}`] },
      },
      false,
    );
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/",
        agent: false,
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(502);
    expect(peerSaw).toBe(1);
    expect(appSaw).toBe(0);
  });
});
