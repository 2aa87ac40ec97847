/**
 * One upstream attempt (the local app or a peer). The request body is piped only once the
 * connection is up, so a refused connection has consumed no body bytes and the caller may
 * retry elsewhere; `bodySent` tells it whether that is still true.
 */
import http, {
  type Agent,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from "node:http";
import { VersoError } from "../../shared/errors.ts";
import type { UpstreamErrorKind } from "../metrics/metrics.ts";

export interface Target {
  readonly host: string;
  readonly port: number;
}

/** Write the response head; an event stream's head goes out at once, not with its first event. */
export function writeHead(
  res: ServerResponse,
  status: number,
  message: string | undefined,
  headers: OutgoingHttpHeaders,
): void {
  res.writeHead(status, message, headers);
  const type = headers["content-type"];
  if (typeof type === "string" && type.startsWith("text/event-stream")) res.flushHeaders();
}

export interface AttemptHandlers {
  onResponse(upRes: IncomingMessage): void;
  /** Only before a response arrived; later failures destroy the client response instead. */
  onError(error: Error, bodySent: boolean, reusedSocket: boolean): void;
}

/** A peer that does not accept within this long is treated like one that refused. */
export const CONNECT_TIMEOUT_MS = 2_000;

/** The client request for `req` at `target`: same method, target and headers (Host kept). */
export function upstreamRequest(
  req: IncomingMessage,
  target: Target,
  headers: OutgoingHttpHeaders,
  agent: Agent | false,
  timeoutMs: number,
): http.ClientRequest {
  return http.request({
    host: target.host,
    port: target.port,
    method: req.method,
    path: req.url,
    headers,
    agent,
    setHost: false,
    timeout: timeoutMs,
  });
}

export function attempt(
  req: IncomingMessage,
  res: ServerResponse,
  target: Target,
  headers: OutgoingHttpHeaders,
  agent: Agent,
  idleTimeoutMs: number,
  h: AttemptHandlers,
): void {
  const up = upstreamRequest(req, target, headers, agent, idleTimeoutMs);
  let piped = false;
  let settled = false;
  const pipeBody = (): void => {
    if (piped || settled) return;
    piped = true;
    req.pipe(up);
  };
  up.once("socket", (socket) => {
    if (!socket.connecting) return pipeBody();
    const timer = setTimeout(
      () =>
        up.destroy(
          new VersoError("ECONNECTTIMEOUT", `connect timeout ${target.host}:${target.port}`),
        ),
      CONNECT_TIMEOUT_MS,
    );
    socket.once("connect", () => {
      clearTimeout(timer);
      pipeBody();
    });
    socket.once("close", () => clearTimeout(timer));
  });
  if (req.headers.expect !== undefined) up.on("continue", () => res.writeContinue());
  up.once("response", (upRes) => {
    settled = true;
    h.onResponse(upRes);
  });
  up.on("timeout", () =>
    up.destroy(new VersoError("EIDLETIMEOUT", `upstream idle for ${idleTimeoutMs}ms`)),
  );
  up.on("error", (error) => {
    if (settled) {
      res.destroy();
      return;
    }
    settled = true;
    if (piped) req.unpipe(up);
    h.onError(error, piped, up.reusedSocket);
  });
  // The client went away: stop the upstream work too.
  res.once("close", () => {
    if (!res.writableFinished) up.destroy();
  });
}

export function errorKind(error: Error, side: "app" | "peer"): UpstreamErrorKind {
  const code = (error as { code?: string }).code;
  switch (code) {
    case "ECONNREFUSED":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
    case "ECONNECTTIMEOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
      return side === "app" ? "app-connect" : "peer-connect";
    case "ECONNRESET":
    case "EPIPE":
    case "UND_ERR_SOCKET":
    case "UND_ERR_CLOSED":
      return side === "app" ? "app-reset" : "peer-reset";
    case "EIDLETIMEOUT":
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return side === "app" ? "app-timeout" : "peer-timeout";
    default:
      return "other";
  }
}
