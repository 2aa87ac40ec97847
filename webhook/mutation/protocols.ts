/**
 * The protocol each app port speaks, which decides the proxy listener it goes to: HTTP/1.1
 * (`verso-http`, 15006) or h2c/gRPC (`verso-grpc`, 15007). Pure; the rules are the table
 * above portProtocol().
 */
import { err, ok, type Result } from "../../shared/errors.ts";
import type { Container } from "./pod.ts";

export type PortProtocol = "http" | "grpc";

/** Accepted values of verso.dev/protocol (lower-cased) and what each means. */
export const PROTOCOL_VALUES: Readonly<Record<string, PortProtocol>> = Object.freeze({
  grpc: "grpc",
  h2c: "grpc",
  http: "http",
});

export const PROTOCOL_HINT =
  'use comma-separated "<port>=<protocol>" items with protocol grpc, h2c or http, e.g. "9090=grpc,8080=http"';

/**
 * `"9090=grpc, 8080=http"` -> port -> protocol. Empty items are skipped (as in
 * verso.dev/ports); a port listed twice with the same protocol is fine, with two is an error.
 * The error names the offending item; the caller prefixes the annotation.
 */
export function parseProtocolList(text: string): Result<Map<number, PortProtocol>, string> {
  const out = new Map<number, PortProtocol>();
  const items = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  for (const item of items) {
    const m = /^(\d{1,5})\s*=\s*([A-Za-z0-9]+)$/.exec(item);
    const port = m ? Number(m[1]) : 0;
    if (!m || port < 1 || port > 65535)
      return err(`${JSON.stringify(item)} is not <port>=<protocol>`);
    const name = (m[2] ?? "").toLowerCase();
    // Object.hasOwn: "constructor" or "toString" must not pass as a protocol.
    const protocol = Object.hasOwn(PROTOCOL_VALUES, name) ? PROTOCOL_VALUES[name] : undefined;
    if (protocol === undefined) return err(`unknown protocol ${JSON.stringify(m[2])}`);
    const before = out.get(port);
    if (before !== undefined && before !== protocol) {
      return err(`port ${port} is listed with two protocols`);
    }
    out.set(port, protocol);
  }
  return ok(out);
}

/** Annotated ports that are not app ports: the annotation talks about a port nobody routes. */
export function unknownProtocolPorts(
  annotated: ReadonlyMap<number, PortProtocol>,
  ports: readonly number[],
): number[] {
  return [...annotated.keys()].filter((p) => !ports.includes(p));
}

/** Istio's convention: `grpc`, `h2c` or `http2`, alone or followed by `-anything`. */
export const isGrpcPortName = (name: string): boolean => /^(grpc|h2c|http2)(-.*)?$/.test(name);

/** Names the pod's containers give TCP port `port` (usually one; none when undeclared). */
export function portNames(containers: readonly Container[], port: number): string[] {
  const names: string[] = [];
  for (const c of containers) {
    for (const p of c.ports ?? []) {
      if (p.containerPort !== port || (p.protocol ?? "TCP") !== "TCP") continue;
      if (typeof p.name === "string" && p.name !== "") names.push(p.name);
    }
  }
  return names;
}

/**
 * One port's protocol, first matching row wins:
 *
 *   verso.dev/protocol lists the port | container port name                        | protocol
 *   ----------------------------------|--------------------------------------------|---------
 *   `grpc` or `h2c`                   | any                                        | grpc
 *   `http`                            | any                                        | http
 *   not listed                        | grpc, grpc-*, h2c, h2c-*, http2, http2-*   | grpc
 *   not listed                        | any other name, unnamed, or not declared   | http
 *
 * The annotation wins so a user can correct a name they cannot change (a `grpc-web` port
 * served over HTTP/1.1 is `"<port>=http"`). Names follow Istio's convention (protocol, then
 * an optional `-suffix`). Istio also reads a Service port's `appProtocol`
 * (`kubernetes.io/h2c`, `grpc`); the webhook cannot: at admission it sees only the pod, and
 * finding the Services that select it would need an apiserver lookup on every pod creation
 * (and would still miss Services created after the pod). So appProtocol is not a source.
 */
export function portProtocol(
  port: number,
  annotated: ReadonlyMap<number, PortProtocol>,
  names: readonly string[],
): PortProtocol {
  const listed = annotated.get(port);
  if (listed !== undefined) return listed;
  return names.some(isGrpcPortName) ? "grpc" : "http";
}

/** The app ports that speak gRPC/h2c, in app-port order. */
export function grpcAppPorts(
  ports: readonly number[],
  containers: readonly Container[],
  annotated: ReadonlyMap<number, PortProtocol>,
): number[] {
  return ports.filter((p) => portProtocol(p, annotated, portNames(containers, p)) === "grpc");
}
