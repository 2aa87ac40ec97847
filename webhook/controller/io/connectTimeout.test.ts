/**
 * The connection deadline with real sockets on 127.0.0.1 and the real client-node: a server
 * that accepts TCP but never completes TLS (as a connection whose handshake never comes back)
 * fails a call and a watch within the deadline instead of hanging; a server that answers
 * slowly after a quick handshake is still waited for (only the opening is bounded).
 */
import { createServer as createTlsServer } from "node:https";
import { createServer, type Server, type Socket } from "node:net";
import { KubeConfig, VersionApi, Watch } from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import { makeCa, makeLeaf } from "../../../test/harness/pki.ts";
import { applyConnectTimeout, CONNECT_TIMEOUT_CODE } from "./connectTimeout.ts";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : 0);
    }),
  );
}

/** Accepts connections and never says a word: the TLS handshake never completes. */
async function silentServer(): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => sockets.add(s));
  const port = await listen(server);
  closers.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return port;
}

function kubeConfig(port: number, caPem?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: "c",
        server: `https://127.0.0.1:${port}`,
        ...(caPem ? { caData: Buffer.from(caPem).toString("base64") } : { skipTLSVerify: true }),
      },
    ],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

const PENDING = Symbol("pending");
const within = <T>(p: Promise<T>, ms: number): Promise<T | typeof PENDING> =>
  Promise.race([p, new Promise<typeof PENDING>((r) => setTimeout(() => r(PENDING), ms))]);

describe("applyConnectTimeout", () => {
  it("without it, a call to a server that never completes the handshake just waits", async () => {
    const kc = kubeConfig(await silentServer());
    const call = kc.makeApiClient(VersionApi).getCode();
    call.catch(() => undefined);
    expect(await within(call, 1_000)).toBe(PENDING);
  });

  it("fails an API call within the deadline", async () => {
    const kc = kubeConfig(await silentServer());
    applyConnectTimeout(kc, 300);
    const started = Date.now();
    const outcome = await within(
      kc
        .makeApiClient(VersionApi)
        .getCode()
        .then(
          () => "answered",
          (error: unknown) => error,
        ),
      3_000,
    );
    expect(outcome).not.toBe(PENDING);
    expect(outcome).not.toBe("answered");
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("fails a watch within the deadline, with its code", async () => {
    const kc = kubeConfig(await silentServer());
    applyConnectTimeout(kc, 300);
    const started = Date.now();
    const ended = new Promise<unknown>((resolve) => {
      void new Watch(kc).watch("/api/v1/pods", {}, () => undefined, resolve);
    });
    const error = await within(ended, 3_000);
    expect(error).not.toBe(PENDING);
    expect((error as { code?: string }).code).toBe(CONNECT_TIMEOUT_CODE);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("waits for a slow answer once the connection is open", async () => {
    const ca = await makeCa("connect-timeout-test");
    const leaf = await makeLeaf(ca, { commonName: "127.0.0.1", ips: ["127.0.0.1"], server: true });
    const server = createTlsServer({ cert: leaf.cert, key: leaf.key }, (_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ major: "1", minor: "36", gitVersion: "v1.36.3" }));
      }, 800);
    });
    const port = await listen(server);
    closers.push(() => server.close());
    const kc = kubeConfig(port, ca.cert);
    applyConnectTimeout(kc, 300);
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe("v1.36.3");
  });
});

describe("applyConnectTimeout on a client-node without createAgent", () => {
  it("refuses with CONTROLLER_CLIENT_UNSUPPORTED instead of running unguarded", () => {
    const kc = Object.create(null) as KubeConfig;
    expect(() => applyConnectTimeout(kc, 1_000)).toThrow(
      expect.objectContaining({ code: "CONTROLLER_CLIENT_UNSUPPORTED" }),
    );
  });
});
