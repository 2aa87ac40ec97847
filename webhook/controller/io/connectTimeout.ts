/**
 * A deadline for opening a connection to the apiserver (TCP connect plus TLS handshake).
 * Neither @kubernetes/client-node nor its node-fetch has one, so a connection attempt whose
 * SYN is dropped waits for the kernel's SYN retransmissions (1, 3, 7, 15, 31 s...). The
 * real-node drill (test/cluster/node-faults-control.test.ts) restarted kube-apiserver: watch
 * attempts made while the `kubernetes` Service had no working endpoint sat in SYN-SENT, and
 * one replica's Deployments stayed 24-28 s stale after the API answered again, its tables
 * with them. With the deadline an attempt fails and the watch retries at once.
 *
 * Only the opening is bounded: once the handshake is done the socket has no timeout, so a
 * quiet watch lives as long as the apiserver keeps it.
 */
import type { Agent as HttpAgent } from "node:http";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import type { KubeConfig } from "@kubernetes/client-node";
import { VersoError, type VersoErrorCode } from "../../../shared/errors.ts";

// A socket error's `.code` is what Node and client-node log and compare: a VersoError has one.
export const CONNECT_TIMEOUT_CODE = "VERSO_CONNECT_TIMEOUT" satisfies VersoErrorCode;

/** Destroys `socket` unless it connects (and, for TLS, completes its handshake) within `ms`. */
export function guardConnect(socket: Duplex, ms: number, where: string): void {
  const timer = setTimeout(() => {
    socket.destroy(
      new VersoError(CONNECT_TIMEOUT_CODE, `no connection to ${where} within ${ms} ms`),
    );
  }, ms);
  const done = (): void => clearTimeout(timer);
  // `secureConnect` for TLS (the handshake is part of opening), `connect` for plain TCP.
  socket.once(socket instanceof TLSSocket ? "secureConnect" : "connect", done);
  socket.once("close", done);
}

/** Wraps the agent's createConnection so each socket it opens is guarded. */
export function withConnectDeadline<A extends HttpAgent>(agent: A, ms: number): A {
  const create = agent.createConnection.bind(agent);
  agent.createConnection = (options, callback) => {
    const socket = create(options, callback);
    if (socket) guardConnect(socket, ms, `${options.host ?? "?"}:${options.port ?? "?"}`);
    return socket;
  };
  return agent;
}

type AgentFactory = (cluster: unknown, options: object) => HttpAgent;

/**
 * Every connection `kc` opens (API calls, lists, watches) gets the deadline. client-node
 * makes one agent per request in its `createAgent` (private in its types, a method at run
 * time; the package is pinned, and connectTimeout.test.ts fails if that ever changes).
 */
export function applyConnectTimeout(kc: KubeConfig, ms: number): void {
  const target = kc as unknown as { createAgent?: AgentFactory };
  const original = target.createAgent;
  if (typeof original !== "function") {
    throw new VersoError(
      "CONTROLLER_CLIENT_UNSUPPORTED",
      "@kubernetes/client-node has no KubeConfig.createAgent: update applyConnectTimeout",
    );
  }
  target.createAgent = (cluster, options) =>
    withConnectDeadline(original.call(kc, cluster, options), ms);
}
