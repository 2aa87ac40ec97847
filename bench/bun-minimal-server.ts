/**
 * The floor for bench/proxy.ts on Bun: the least a Bun reverse proxy can do (`Bun.serve` + a
 * pass-through `fetch`, no routing, no header rewriting, no metrics), with only the settings
 * without which it would not be a correct proxy (no redirect following, no decompression, no
 * body size limit). What Verso costs above this row is Verso; what this row costs above nginx
 * is Bun. Usage: bun bench/bun-minimal-server.ts LISTEN UPSTREAM
 */
import { splitHostPort } from "../shared/net.ts";

const listen = splitHostPort(process.argv[2] ?? "");
const upstream = process.argv[3];
if (!listen || !upstream) {
  process.stderr.write("usage: bun bench/bun-minimal-server.ts HOST:PORT HOST:PORT\n");
  process.exit(2);
}
const origin = `http://${upstream}`;

Bun.serve({
  hostname: listen.host,
  port: listen.port,
  maxRequestBodySize: Number.MAX_SAFE_INTEGER,
  fetch(req) {
    const url = req.url;
    const path = url.slice(url.indexOf("/", url.indexOf("//") + 2));
    return fetch(origin + path, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: "manual",
      decompress: false,
    } as RequestInit);
  },
});
