/**
 * The comparison point for bench/proxy.ts: the smallest useful reverse proxy on `http-proxy`
 * (keep-alive agent, no routing, no metrics). Usage: node bench/http-proxy-server.ts LISTEN UPSTREAM
 */
import http from "node:http";
import httpProxy from "http-proxy";
import { splitHostPort } from "../shared/net.ts";

const listen = splitHostPort(process.argv[2] ?? "");
const upstream = process.argv[3];
if (!listen || !upstream) {
  process.stderr.write("usage: node bench/http-proxy-server.ts HOST:PORT HOST:PORT\n");
  process.exit(2);
}
const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256 });
const proxy = httpProxy.createProxyServer({ target: `http://${upstream}`, agent, xfwd: true });
proxy.on("error", (_e, _req, res) => {
  if ("writeHead" in res && !res.headersSent) res.writeHead(502);
  res.end();
});
http.createServer((req, res) => proxy.web(req, res)).listen(listen.port, listen.host);
