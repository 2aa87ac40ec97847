import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../shared/log.ts";
import { freePort } from "../../test/harness/ports.ts";
import { TableStore } from "../config/store.ts";
import { createMetrics } from "../metrics/metrics.ts";
import { HOP_HEADER } from "../routing/hop.ts";
import { createProxy } from "./server.ts";

const listen = (server: http.Server): Promise<number> =>
  new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );

describe("proxy fallback after a refused peer", () => {
  const servers: http.Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });

  it("serves locally without the hop token it signed for the peer", async () => {
    // The app answers with the headers it received.
    const app = http.createServer((req, res) => res.end(JSON.stringify(req.headers)));
    servers.push(app);
    const appPort = await listen(app);
    const refused = await freePort();
    const log = createLogger("test", "error");
    const store = new TableStore({
      app: "shop",
      version: "v1",
      fileKey: Buffer.from("server-test-hop-key-0123456789ab"),
      allowDerivedKey: false,
      log,
    });
    store.apply(
      {
        app: "shop",
        revision: 1,
        release: { version: "v2", strategy: "canary", weight: 100 },
        endpoints: { v2: [`127.0.0.1:${refused}`] },
      },
      false,
    );
    const proxy = createProxy({
      app: { host: "127.0.0.1", port: appPort },
      appName: "shop",
      version: "v1",
      versionHeader: true,
      idleTimeoutMs: 5_000,
      store,
      metrics: createMetrics("shop", "v1"),
      log,
    });
    servers.push(proxy.server);
    const port = await listen(proxy.server);

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
});
