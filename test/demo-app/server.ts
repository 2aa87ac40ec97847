/**
 * The demo app: answers every request with its version. Tiny on purpose (node:http only).
 *   VERSION (else argv[2], else "dev"), HOST (default 0.0.0.0), PORT (default 8080)
 *   ERROR_RATE: fraction 0..1 of requests answered 500; LATENCY_MS: added delay per request
 *   GET /healthz -> 200 "ok" (never delayed, never failed)
 */
import { createServer } from "node:http";

const version = process.env.VERSION ?? process.argv[2] ?? "dev";
const host = process.env.HOST ?? "0.0.0.0";
const port = Number(process.env.PORT ?? "8080");
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

const shutdown = (): void => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once("SIGTERM", shutdown);
process.once("SIGINT", shutdown);
