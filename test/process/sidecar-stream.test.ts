/**
 * The controller stream client against a stand-in controller speaking the documented SSE
 * contract over real TLS: serve locally before the first table, apply tables, reconnect with
 * Last-Event-ID, ignore stale revisions, report 401 and re-read the token file.
 */
import http from "node:http";
import https from "node:https";
import type { ServerResponse } from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../shared/log.ts";
import { TableStore } from "../../sidecar/config/store.ts";
import { subscribeRoutes } from "../../sidecar/config/stream-source.ts";
import { makeCa, makeLeaf, writePem } from "../harness/pki.ts";
import { sample } from "../harness/metrics.ts";
import { freePort, waitFor } from "../harness/ports.ts";
import { get, makeDir, startApp, startProxy, type App, type Proxy } from "./sidecar-fixture.ts";

const H = "127.0.3.5";
const TOKEN = "proxy-sa-token";

interface Seen {
  url: string;
  auth: string | undefined;
  lastEventId: string | undefined;
}

let dir: string;
let app1: App;
let app2: App;
let proxy: Proxy;
let server: https.Server;
let tokenFile: string;
const seen: Seen[] = [];
let stream: ServerResponse | undefined;

const send = (table: object & { revision: number }): void => {
  stream!.write(`event: table\nid: ${table.revision}\ndata: ${JSON.stringify(table)}\n\n`);
};
const revisionOf = async (): Promise<number> =>
  sample(await proxy.metrics(), "verso_routing_table_revision");

beforeAll(async () => {
  dir = makeDir("verso-sidecar-stream-");
  app1 = await startApp(H, "v1");
  app2 = await startApp(H, "v2");
  const ca = await makeCa("verso-test-ca");
  const leaf = writePem(
    dir,
    "controller",
    await makeLeaf(ca, { commonName: "controller", ips: [H], server: true }),
  );
  tokenFile = join(dir, "token");
  writeFileSync(tokenFile, TOKEN + "\n");
  server = https.createServer(
    { cert: readFileSync(leaf.certFile), key: readFileSync(leaf.keyFile) },
    (req, res) => {
      seen.push({
        url: req.url ?? "",
        auth: req.headers.authorization,
        lastEventId: req.headers["last-event-id"] as string | undefined,
      });
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(": hb\n\n");
      stream = res;
    },
  );
  const port = await freePort(H);
  await new Promise<void>((r) => server.listen(port, H, r));
  proxy = await startProxy({
    host: H,
    app: app1,
    version: "v1",
    dir,
    waitReady: false,
    // As the webhook injects it: the CA inline in the env, not a file.
    env: { VERSO_CONTROLLER_CA_PEM: ca.cert },
    extraArgs: [
      "--controller-url",
      `https://${H}:${port}`,
      "--token-file",
      tokenFile,
      "--namespace",
      "shop-ns",
      "--table-wait-seconds",
      "1",
    ],
  });
});

afterAll(async () => {
  await proxy?.proc.stop();
  server?.closeAllConnections();
  server?.close();
  await Promise.all([app1?.close(), app2?.close()]);
});

describe("controller route stream", () => {
  const table = (revision: number, weight: number) => ({
    app: "shop",
    revision,
    release: { version: "v2", strategy: "canary", weight },
    // The "peer" is v2's bare app: enough to see where the request went.
    endpoints: { v1: [], v2: [`${H}:${app2.port}`] },
    hopKey: Buffer.from("stream-test-hop-key-0123456789ab").toString("base64"),
  });

  it("subscribes with the contract's URL and bearer token, serves locally before a table", async () => {
    await waitFor("subscription", async () => (stream ? true : undefined), 10_000, 50);
    expect(seen[0]).toMatchObject({
      url: "/v1/routes?namespace=shop-ns&app=shop",
      auth: `Bearer ${TOKEN}`,
      lastEventId: undefined,
    });
    expect(await revisionOf()).toBe(-1);
    expect((await get(`${proxy.url}/echo`)).version).toBe("v1");
    const admin = `http://${H}:${proxy.adminPort}/ready`;
    const ready = await waitFor(
      "ready with the no-release default",
      async () => {
        const r = await fetch(admin);
        return r.ok ? ((await r.json()) as { routing: string }) : undefined;
      },
      5_000,
      100,
    );
    expect(ready.routing).toBe("no-release-default");
  });

  it("applies a streamed table at once", async () => {
    send(table(5, 100));
    await waitFor(
      "revision 5",
      async () => ((await revisionOf()) === 5 ? true : undefined),
      5_000,
      20,
    );
    expect(JSON.parse((await get(`${proxy.url}/echo`)).body).version).toBe("v2");
  });

  it("reconnects with Last-Event-ID, ignores an older revision, applies a newer one", async () => {
    const before = seen.length;
    const old = stream!;
    stream = undefined;
    old.destroy();
    await waitFor("reconnect", async () => (stream ? true : undefined), 15_000, 50);
    expect(seen[before]?.lastEventId).toBe("5");
    send(table(3, 0));
    send(table(6, 0));
    await waitFor(
      "revision 6",
      async () => ((await revisionOf()) === 6 ? true : undefined),
      5_000,
      20,
    );
    expect(JSON.parse((await get(`${proxy.url}/echo`)).body).version).toBe("v1");
    const log = readFileSync(proxy.proc.logFile, "utf8");
    expect(log).toContain("stale-revision");
  });

  it("a 401 is reported clearly, the last table kept, and the token file re-read on reconnect", async () => {
    writeFileSync(tokenFile, "expired-token\n");
    const before = seen.length;
    const old = stream!;
    stream = undefined;
    old.destroy();
    await waitFor(
      "a refused attempt",
      async () =>
        seen.slice(before).some((s) => s.auth === "Bearer expired-token") ? true : undefined,
      15_000,
      50,
    );
    expect(await revisionOf()).toBe(6);
    expect((await get(`${proxy.url}/echo`)).status).toBe(200);
    writeFileSync(tokenFile, TOKEN);
    await waitFor(
      "reconnect with the new token",
      async () => (stream ? true : undefined),
      20_000,
      50,
    );
    expect(readFileSync(proxy.proc.logFile, "utf8")).toContain("refused the proxy's credentials");
  });
});

describe("route stream client in-process: a silent stream is treated as dead", () => {
  it("reconnects after idleMs without a byte, keeping the table", async () => {
    let connects = 0;
    // Sends one table, then nothing at all: no heartbeat, no close.
    const silent = http.createServer((_req, res) => {
      connects++;
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(
        `event: table\nid: 1\ndata: ${JSON.stringify({ app: "shop", revision: 1, endpoints: {} })}\n\n`,
      );
    });
    const port = await freePort(H);
    await new Promise<void>((r) => silent.listen(port, H, r));
    const log = createLogger("test", "error");
    const store = new TableStore({
      app: "shop",
      version: "v1",
      fileKey: undefined,
      allowDerivedKey: false,
      log,
    });
    const source = subscribeRoutes({
      controllerUrl: `http://${H}:${port}`,
      namespace: "ns",
      app: "shop",
      tokenFile: undefined,
      ca: undefined,
      store,
      log,
      idleMs: 300,
    });
    try {
      await waitFor(
        "two reconnects after silence",
        async () => (connects >= 3 ? true : undefined),
        10_000,
        50,
      );
      expect(store.current?.revision).toBe(1);
    } finally {
      source.close();
      silent.closeAllConnections();
      silent.close();
    }
  });
});
