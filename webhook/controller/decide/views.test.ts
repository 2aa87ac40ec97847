import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { DEFAULT_INJECT } from "../../mutation/config.ts";
import { decide } from "../../mutation/decide.ts";
import type { Pod } from "../../mutation/pod.ts";
import { applyPlan } from "../../mutation/render.ts";
import { proxyGrpcPort, toPodView } from "./views.ts";

/** A running, ready, labelled pod with the given proxy container (or none). */
function runningPod(
  proxy: V1Container | undefined,
  opts: { ip?: string; ready?: boolean; native?: boolean } = {},
): V1Pod {
  const app: V1Container = { name: "app", image: "shop:v1" };
  const native = opts.native ?? true;
  return {
    metadata: {
      name: "p1",
      namespace: "shop",
      labels: { "verso.dev/app": "shop", "verso.dev/version": "v1" },
    },
    spec: {
      containers: proxy && !native ? [app, proxy] : [app],
      ...(proxy && native ? { initContainers: [proxy] } : {}),
    },
    status: {
      phase: "Running",
      podIP: opts.ip ?? "10.1.0.7",
      conditions: [{ type: "Ready", status: opts.ready === false ? "False" : "True" }],
    },
  };
}

const proxy = (extra: Partial<V1Container>): V1Container => ({
  name: "verso-proxy",
  ports: [
    { name: "verso-http", containerPort: 15006 },
    { name: "verso-admin", containerPort: 15020 },
  ],
  ...extra,
});

// Mirrors the table above proxyGrpcPort().
describe("proxyGrpcPort (mirrors its truth table)", () => {
  it.each([
    {
      row: "env VERSO_GRPC_LISTEN gives the port",
      pod: runningPod(proxy({ env: [{ name: "VERSO_GRPC_LISTEN", value: "0.0.0.0:15007" }] })),
      expected: 15007,
    },
    {
      row: "env wins over the named port",
      pod: runningPod(
        proxy({
          env: [{ name: "VERSO_GRPC_LISTEN", value: ":16007" }],
          ports: [{ name: "verso-grpc", containerPort: 15007 }],
        }),
      ),
      expected: 16007,
    },
    {
      row: "named port verso-grpc without the env",
      pod: runningPod(proxy({ ports: [{ name: "verso-grpc", containerPort: 15007 }] })),
      expected: 15007,
    },
    {
      row: "an unreadable env falls back to the named port",
      pod: runningPod(
        proxy({
          env: [{ name: "VERSO_GRPC_LISTEN", value: "nonsense" }],
          ports: [{ name: "verso-grpc", containerPort: 15007 }],
        }),
      ),
      expected: 15007,
    },
    {
      row: "proxy as a plain container",
      pod: runningPod(proxy({ ports: [{ name: "verso-grpc", containerPort: 15007 }] }), {
        native: false,
      }),
      expected: 15007,
    },
    { row: "proxy without gRPC", pod: runningPod(proxy({})), expected: undefined },
    { row: "no proxy at all", pod: runningPod(undefined), expected: undefined },
    {
      row: "another container's verso-grpc port does not count",
      pod: ((): V1Pod => {
        const p = runningPod(proxy({}));
        p.spec!.containers[0]!.ports = [{ name: "verso-grpc", containerPort: 15007 }];
        return p;
      })(),
      expected: undefined,
    },
  ])("$row", ({ pod, expected }) => {
    expect(proxyGrpcPort(pod)).toBe(expected);
  });
});

describe("toPodView", () => {
  const grpcProxy = proxy({ env: [{ name: "VERSO_GRPC_LISTEN", value: "0.0.0.0:15007" }] });

  it("a ready pod with a gRPC listener has a gRPC endpoint beside its HTTP one", () => {
    expect(toPodView(runningPod(grpcProxy))).toEqual({
      namespace: "shop",
      name: "p1",
      app: "shop",
      version: "v1",
      endpoint: "10.1.0.7:15006",
      admin: "10.1.0.7:15020",
      grpcEndpoint: "10.1.0.7:15007",
    });
  });

  it("no gRPC endpoint without a gRPC listener, or when not ready", () => {
    expect(toPodView(runningPod(proxy({})))?.grpcEndpoint).toBeUndefined();
    const notReady = toPodView(runningPod(grpcProxy, { ready: false }));
    expect(notReady?.endpoint).toBeUndefined();
    expect(notReady?.grpcEndpoint).toBeUndefined();
  });

  it("IPv6 pod IPs are bracketed", () => {
    expect(toPodView(runningPod(grpcProxy, { ip: "fd00::7" }))?.grpcEndpoint).toBe(
      "[fd00::7]:15007",
    );
  });

  it("reads the pods the webhook writes (the contract end to end)", () => {
    for (const [ports, expected] of [
      [[{ containerPort: 8080 }, { containerPort: 9090, name: "grpc" }], "10.1.0.7:15007"],
      [[{ containerPort: 8080 }], undefined],
    ] as const) {
      const original: Pod = {
        metadata: { name: "p1", namespace: "shop", labels: { app: "shop" } },
        spec: { containers: [{ name: "app", image: "shop:v1", ports: [...ports] }] },
      };
      const d = decide(original, "shop", DEFAULT_INJECT);
      if (!d.inject) throw new Error("expected injection");
      const injected = applyPlan(original, d.plan, DEFAULT_INJECT) as unknown as V1Pod;
      injected.status = {
        phase: "Running",
        podIP: "10.1.0.7",
        conditions: [{ type: "Ready", status: "True" }],
      };
      expect(toPodView(injected)?.grpcEndpoint).toBe(expected);
    }
  });
});
