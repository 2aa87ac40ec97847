/**
 * The upstream app of bench/proxy.ts, on Bun so that it is never what limits a proxy under
 * test (with the load generator on its core it answers ~60k req/s here, node:http ~24k).
 * A request without a body gets a fixed 2-byte "ok" (the cheapest honest answer, so the proxy
 * dominates); an upload is read to its end and answered with what arrived:
 * `{"bytes": N, "sha256": "<hex>"}`. Usage: bun bench/upstream-app.ts HOST:PORT
 */
import { splitHostPort } from "../shared/net.ts";

const listen = splitHostPort(process.argv[2] ?? "");
if (!listen) {
  process.stderr.write("usage: bun bench/upstream-app.ts HOST:PORT\n");
  process.exit(2);
}

async function digest(body: ReadableStream<Uint8Array>): Promise<Response> {
  const hash = new Bun.CryptoHasher("sha256");
  let bytes = 0;
  const reader = body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.length;
    hash.update(value);
  }
  return Response.json({ bytes, sha256: hash.digest("hex") });
}

Bun.serve({
  hostname: listen.host,
  port: listen.port,
  maxRequestBodySize: Number.MAX_SAFE_INTEGER,
  // An upload may pause while a proxy's buffers drain: no idle cut.
  idleTimeout: 0,
  fetch: (req) =>
    req.body === null
      ? new Response("ok", { headers: { "content-type": "text/plain" } })
      : digest(req.body),
});
