import { describe, expect, it } from "vitest";
import { DEFAULT_INJECT } from "./config.ts";
import { decide } from "./decide.ts";
import type { Container, Pod } from "./pod.ts";
import type { ReasonCode } from "./reasons.ts";

function pod(opts: {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  containers?: Container[];
  initContainers?: Container[];
  hostNetwork?: boolean;
}): Pod {
  const p: Pod = {
    metadata: { name: "p" },
    spec: {
      containers: opts.containers ?? [
        { name: "app", image: "shop:v1", ports: [{ containerPort: 8080 }] },
      ],
    },
  };
  if (opts.labels) p.metadata!.labels = opts.labels;
  else p.metadata!.labels = { app: "shop" };
  if (opts.annotations) p.metadata!.annotations = opts.annotations;
  if (opts.initContainers) p.spec.initContainers = opts.initContainers;
  if (opts.hostNetwork !== undefined) p.spec.hostNetwork = opts.hostNetwork;
  return p;
}

// Mirrors the truth table above decide().
const table: { name: string; pod: Pod; ns?: string; reasons: ReasonCode[] | "inject" }[] = [
  { name: "plain pod in an opted-in namespace", pod: pod({}), reasons: "inject" },
  { name: "kube-system", pod: pod({}), ns: "kube-system", reasons: ["protected_namespace"] },
  { name: "own namespace", pod: pod({}), ns: "verso-system", reasons: ["protected_namespace"] },
  {
    name: 'inject: "false"',
    pod: pod({ annotations: { "verso.dev/inject": "false" } }),
    reasons: ["opted_out"],
  },
  {
    name: 'inject: "False " (case and space tolerant)',
    pod: pod({ annotations: { "verso.dev/inject": "False " } }),
    reasons: ["opted_out"],
  },
  {
    name: 'label verso.dev/inject: "false" (the objectSelector form)',
    pod: pod({ labels: { app: "shop", "verso.dev/inject": "false" } }),
    reasons: ["opted_out"],
  },
  {
    name: 'inject: "true" is the default',
    pod: pod({ annotations: { "verso.dev/inject": "true" } }),
    reasons: "inject",
  },
  { name: "hostNetwork", pod: pod({ hostNetwork: true }), reasons: ["host_network"] },
  { name: "hostNetwork false", pod: pod({ hostNetwork: false }), reasons: "inject" },
  {
    name: "istio-proxy container",
    pod: pod({
      containers: [
        { name: "app", ports: [{ containerPort: 8080 }] },
        { name: "istio-proxy", image: "proxyv2" },
      ],
    }),
    reasons: ["other_mesh"],
  },
  {
    name: "linkerd-proxy as a native sidecar",
    pod: pod({ initContainers: [{ name: "linkerd-proxy", restartPolicy: "Always" }] }),
    reasons: ["other_mesh"],
  },
  {
    name: "verso-proxy already present",
    pod: pod({ initContainers: [{ name: "verso-proxy", restartPolicy: "Always" }] }),
    reasons: ["already_injected"],
  },
  {
    name: "every gate at once is reported",
    pod: pod({
      annotations: { "verso.dev/inject": "false" },
      hostNetwork: true,
      initContainers: [{ name: "verso-proxy" }],
    }),
    ns: "kube-system",
    reasons: ["protected_namespace", "opted_out", "host_network", "already_injected"],
  },
  {
    name: "bad capture annotation",
    pod: pod({ annotations: { "verso.dev/capture": "ebpf" } }),
    reasons: ["invalid_annotation"],
  },
  {
    name: "bad ports annotation",
    pod: pod({ annotations: { "verso.dev/ports": "http" } }),
    reasons: ["invalid_annotation"],
  },
  {
    name: "bad protocol annotation",
    pod: pod({ annotations: { "verso.dev/protocol": "8080=websocket" } }),
    reasons: ["invalid_annotation"],
  },
  {
    name: "protocol annotation names a port that is not an app port",
    pod: pod({ annotations: { "verso.dev/protocol": "9090=grpc" } }),
    reasons: ["invalid_annotation"],
  },
  {
    name: "protocol annotation names an excluded port",
    pod: pod({
      containers: [{ name: "a", ports: [{ containerPort: 8080 }, { containerPort: 9090 }] }],
      annotations: { "verso.dev/protocol": "9090=grpc", "verso.dev/exclude-ports": "9090" },
    }),
    reasons: ["invalid_annotation"],
  },
  { name: "no app label", pod: pod({ labels: { tier: "web" } }), reasons: ["no_app_identity"] },
  {
    name: "app label sanitises to empty",
    pod: pod({ labels: { app: "---" } }),
    reasons: ["no_app_identity"],
  },
  {
    name: "no declared port",
    pod: pod({ containers: [{ name: "worker", image: "w:1" }] }),
    reasons: ["no_ports"],
  },
  {
    name: "only UDP ports",
    pod: pod({
      containers: [{ name: "dns", ports: [{ containerPort: 53, protocol: "UDP" }] }],
    }),
    reasons: ["no_ports"],
  },
  {
    name: "no declared port but verso.dev/ports",
    pod: pod({
      containers: [{ name: "worker", image: "w:1" }],
      annotations: { "verso.dev/ports": "8080" },
    }),
    reasons: "inject",
  },
  {
    name: "every port excluded",
    pod: pod({ annotations: { "verso.dev/exclude-ports": "8080" } }),
    reasons: ["no_ports"],
  },
  {
    name: "app declares the proxy's port",
    pod: pod({ containers: [{ name: "app", ports: [{ containerPort: 15006 }] }] }),
    reasons: ["port_conflict"],
  },
  {
    name: "15007 is free for a pod without gRPC",
    pod: pod({ containers: [{ name: "app", ports: [{ containerPort: 15007 }] }] }),
    reasons: "inject",
  },
  {
    name: "15007 is the proxy's when the pod has a gRPC port",
    pod: pod({
      containers: [
        {
          name: "app",
          ports: [{ containerPort: 15007 }, { containerPort: 9090, name: "grpc" }],
        },
      ],
    }),
    reasons: ["port_conflict"],
  },
];

describe("decide", () => {
  it.each(table)("$name", ({ pod: p, ns, reasons }) => {
    const d = decide(p, ns ?? "demo", DEFAULT_INJECT);
    if (reasons === "inject") expect(d.inject).toBe(true);
    else expect(d).toMatchObject({ inject: false, reasons });
  });

  it("routes and captures only the first app port", () => {
    const d = decide(
      pod({
        containers: [
          { name: "a", ports: [{ containerPort: 9090 }, { containerPort: 8080 }] },
          { name: "b", ports: [{ containerPort: 7070 }] },
        ],
        annotations: { "verso.dev/exclude-ports": "9090" },
      }),
      "demo",
      DEFAULT_INJECT,
    );
    expect(d.inject && d.plan.ports).toEqual([8080, 7070]);
    expect(d.inject && d.plan.capturePorts).toEqual([8080]);
  });

  it("the routed HTTP port is the first HTTP port; the first gRPC port is captured to gRPC", () => {
    const d = decide(
      pod({
        containers: [
          {
            name: "a",
            ports: [
              { containerPort: 9090, name: "grpc" },
              { containerPort: 8080, name: "http" },
              { containerPort: 9091, name: "grpc-admin" },
              { containerPort: 8081 },
            ],
          },
        ],
      }),
      "demo",
      DEFAULT_INJECT,
    );
    if (!d.inject) throw new Error("expected injection");
    expect(d.plan).toMatchObject({
      ports: [9090, 8080, 9091, 8081],
      routedPort: 8080,
      grpcPorts: [9090, 9091],
      capturePorts: [8080],
      // One port per listener: the proxy cannot tell which port a redirected call was for.
      captureGrpcPorts: [9090],
    });
  });

  it("a pod with only gRPC ports captures nothing to the HTTP listener", () => {
    const d = decide(
      pod({ containers: [{ name: "a", ports: [{ containerPort: 9090, name: "grpc" }] }] }),
      "demo",
      DEFAULT_INJECT,
    );
    if (!d.inject) throw new Error("expected injection");
    expect(d.plan).toMatchObject({
      routedPort: 9090,
      grpcPorts: [9090],
      capturePorts: [],
      captureGrpcPorts: [9090],
    });
  });

  it("the protocol annotation overrides port names and covers undeclared verso.dev/ports", () => {
    const d = decide(
      pod({
        containers: [{ name: "a", ports: [{ containerPort: 9090, name: "grpc" }] }],
        annotations: {
          "verso.dev/ports": "9090,8080,7070",
          "verso.dev/protocol": "9090=http, 7070=h2c",
        },
      }),
      "demo",
      DEFAULT_INJECT,
    );
    if (!d.inject) throw new Error("expected injection");
    expect(d.plan).toMatchObject({ routedPort: 9090, grpcPorts: [7070] });
  });

  it("rewrites tcp/http probes on the captured gRPC port, never grpc probes", () => {
    const grpcProbe = { grpc: { port: 9090 }, periodSeconds: 5 };
    const d = decide(
      pod({
        containers: [
          {
            name: "a",
            ports: [{ containerPort: 9090, name: "grpc" }],
            readinessProbe: grpcProbe,
            livenessProbe: { tcpSocket: { port: "grpc" }, periodSeconds: 7 },
          },
        ],
      }),
      "demo",
      DEFAULT_INJECT,
    );
    if (!d.inject) throw new Error("expected injection");
    expect(d.plan.probeRewrites.map((r) => r.field)).toEqual(["livenessProbe"]);
    expect(d.plan.probes).toEqual({ "/app-health/a/livez": { kind: "tcp", port: 9090 } });
  });

  it("names the unknown protocol port in the warning detail", () => {
    const d = decide(
      pod({ annotations: { "verso.dev/protocol": "8080=http,7777=grpc" } }),
      "demo",
      DEFAULT_INJECT,
    );
    expect(d.inject === false && d.details).toEqual([
      'verso.dev/protocol="8080=http,7777=grpc": port 7777 is not an app port ' +
        "(declared TCP containerPorts or verso.dev/ports, minus verso.dev/exclude-ports)",
    ]);
  });

  it("port capture captures nothing and rewrites no probe", () => {
    const d = decide(
      pod({
        annotations: { "verso.dev/capture": "port" },
        containers: [
          {
            name: "a",
            ports: [{ containerPort: 8080 }],
            readinessProbe: { httpGet: { port: 8080, path: "/r" } },
          },
        ],
      }),
      "demo",
      DEFAULT_INJECT,
    );
    expect(d.inject && d.plan.capturePorts).toEqual([]);
    expect(d.inject && d.plan.probeRewrites).toEqual([]);
  });

  it("flags set the defaults, annotations override them", () => {
    const config = { ...DEFAULT_INJECT, capture: "port" as const, nativeSidecar: false };
    const d1 = decide(pod({}), "demo", config);
    expect(d1.inject && [d1.plan.capture, d1.plan.nativeSidecar]).toEqual(["port", false]);
    const d2 = decide(
      pod({ annotations: { "verso.dev/capture": "iptables", "verso.dev/native-sidecar": "true" } }),
      "demo",
      config,
    );
    expect(d2.inject && [d2.plan.capture, d2.plan.nativeSidecar]).toEqual(["iptables", true]);
  });
});
