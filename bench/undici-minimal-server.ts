/**
 * The runtime floor for bench/proxy.ts: the least a Node reverse proxy can do on the same core
 * as Verso's (undici's Agent, no routing, no header rewriting, no metrics). What Verso costs
 * above this row is Verso; what this row costs above nginx is Node.
 * Usage: node bench/undici-minimal-server.ts LISTEN UPSTREAM
 */
import http from "node:http";
import UndiciAgent from "undici/lib/dispatcher/agent.js";
import { splitHostPort } from "../shared/net.ts";

const listen = splitHostPort(process.argv[2] ?? "");
const upstream = process.argv[3];
if (!listen || !upstream) {
  process.stderr.write("usage: node bench/undici-minimal-server.ts HOST:PORT HOST:PORT\n");
  process.exit(2);
}
const origin = `http://${upstream}`;
const agent = new UndiciAgent({ pipelining: 1 });
http
  .createServer((req, res) => {
    agent.dispatch(
      { origin, path: req.url ?? "/", method: req.method ?? "GET", headers: req.headers },
      {
        onConnect() {},
        onHeaders(status) {
          res.writeHead(status);
          return true;
        },
        onData: (chunk: Buffer) => res.write(chunk),
        onComplete: () => res.end(),
        onError: () => (res.headersSent ? res.destroy() : res.writeHead(502).end()),
      },
    );
  })
  .listen(listen.port, listen.host);
