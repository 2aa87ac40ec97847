/**
 * The demo app: answers every request with its version. Tiny on purpose (node:http and
 * node:http2 only, no dependencies: the image copies this one file).
 *   VERSION (else argv[2], else "dev"), HOST (default 0.0.0.0), PORT (default 8080)
 *   ERROR_RATE: fraction 0..1 of requests answered 500; LATENCY_MS: added delay per request
 *   GET /healthz -> 200 "ok" (never delayed, never failed)
 * gRPC, only when GRPC_PORT is set: h2c (prior knowledge) on HOST:GRPC_PORT. Every unary call,
 * whatever its method and request message, answers one message whose bytes are the UTF-8 JSON
 * `{"version":...,"pod":...,"method":...}` (no protobuf: a client reads raw bytes), then
 * `grpc-status: 0`. ERROR_RATE fails that fraction of calls trailers-only with
 * `grpc-status: 14` (UNAVAILABLE); LATENCY_MS delays them. Response headers carry
 * `x-app-version`. `/grpc.health.v1.Health/Check` -> SERVING (protobuf 08 01), never delayed
 * or failed; other Health methods -> UNIMPLEMENTED.
 */
import { createServer } from "node:http";
import { createServer as createH2cServer, type Http2Session } from "node:http2";

const version = process.env.VERSION ?? process.argv[2] ?? "dev";
const host = process.env.HOST ?? "0.0.0.0";
const port = Number(process.env.PORT ?? "8080");
const grpcPort = process.env.GRPC_PORT ? Number(process.env.GRPC_PORT) : undefined;
const errorRate = Math.min(1, Math.max(0, Number(process.env.ERROR_RATE ?? "0") || 0));
const latencyMs = Math.max(0, Number(process.env.LATENCY_MS ?? "0") || 0);
const podName = process.env.POD_NAME ?? process.env.HOSTNAME ?? "";

const server = createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    return;
  }
  const reply = (): void => {
    const failed = Math.random() < errorRate;
    const body = JSON.stringify({ version, pod: podName, path: req.url, error: failed });
    res
      .writeHead(failed ? 500 : 200, {
        "content-type": "application/json",
        "x-app-version": version,
      })
      .end(`${body}\n`);
  };
  if (latencyMs > 0) setTimeout(reply, latencyMs);
  else reply();
});

server.listen(port, host, () => {
  console.log(`demo app ${version} listening on ${host}:${port}`);
});

/** One gRPC message: compressed flag 0, 4-byte big-endian length, the bytes. */
const grpcMessage = (bytes: Buffer): Buffer => {
  const frame = Buffer.alloc(5 + bytes.length);
  frame.writeUInt32BE(bytes.length, 1);
  bytes.copy(frame, 5);
  return frame;
};

const grpc = grpcPort === undefined ? undefined : createH2cServer();
const sessions = new Set<Http2Session>();
grpc?.on("session", (session) => {
  sessions.add(session);
  session.on("error", () => undefined);
  session.once("close", () => sessions.delete(session));
});
grpc?.on("stream", (stream, headers) => {
  stream.on("error", () => undefined); // a client reset is not the app's problem
  const method = String(headers[":path"]);
  const head = { ":status": 200, "content-type": "application/grpc", "x-app-version": version };
  const trailersOnly = (code: number, message: string): void => {
    if (!stream.closed) {
      stream.respond(
        { ...head, "grpc-status": String(code), "grpc-message": message },
        { endStream: true },
      );
    }
  };
  const answer = (bytes: Buffer): void => {
    if (stream.closed) return; // cancelled while delayed
    stream.respond(head, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(grpcMessage(bytes));
  };
  stream.resume(); // the request message is not read: every call gets the same answer
  stream.once("end", () => {
    if (method === "/grpc.health.v1.Health/Check") return answer(Buffer.from([0x08, 0x01]));
    if (method.startsWith("/grpc.health.v1.Health/")) return trailersOnly(12, "not implemented");
    const reply = (): void => {
      if (Math.random() < errorRate) return trailersOnly(14, `demo app ${version} failed`);
      answer(Buffer.from(JSON.stringify({ version, pod: podName, method })));
    };
    if (latencyMs > 0) setTimeout(reply, latencyMs);
    else reply();
  });
});
grpc?.listen(grpcPort, host, () => {
  console.log(`demo app ${version} serving gRPC (h2c) on ${host}:${grpcPort}`);
});

const shutdown = (): void => {
  let open = grpc ? 2 : 1;
  const closed = (): void => {
    if (--open === 0) process.exit(0);
  };
  server.close(closed);
  server.closeAllConnections();
  grpc?.close(closed);
  for (const session of sessions) session.close(); // GOAWAY; calls in flight finish
};
process.once("SIGTERM", shutdown);
process.once("SIGINT", shutdown);
