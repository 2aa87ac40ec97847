import { describe, expect, it } from "vitest";
import {
  ENV,
  GRPC_PORT_NAME,
  INIT_CONTAINER,
  PROXY_CONTAINER,
  PROXY_PORT,
} from "../../shared/pod-env.ts";
import { DEFAULT_INJECT } from "./config.ts";
import { mutatePod } from "./mutate.ts";
import type { Container, Pod } from "./pod.ts";
import { applyPlan } from "./render.ts";
import { decide } from "./decide.ts";

const pod = (): Pod => ({
  metadata: { labels: { app: "shop" } },
  spec: { containers: [{ name: "shop", image: "shop:v1", ports: [{ containerPort: 8080 }] }] },
});

function proxyOf(p: Pod): Container {
  const all = [...(p.spec.initContainers ?? []), ...p.spec.containers];
  const c = all.find((x) => x.name === PROXY_CONTAINER);
  if (!c) throw new Error("no proxy");
  return c;
}

const envOf = (c: Container): Record<string, unknown> =>
  Object.fromEntries(
    (c.env as { name: string; value?: string }[]).map((e) => [e.name, e.value ?? "fieldRef"]),
  );

describe("applyPlan", () => {
  it("gives proxies the controller CA inline when configured, and nothing otherwise", () => {
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const withCa = { ...DEFAULT_INJECT, controllerCaPem: pem };
    const d = decide(pod(), "demo", withCa);
    if (!d.inject) throw new Error("expected injection");
    expect(envOf(proxyOf(applyPlan(pod(), d.plan, withCa)))[ENV.controllerCaPem]).toBe(pem);
    const d2 = decide(pod(), "demo", DEFAULT_INJECT);
    if (!d2.inject) throw new Error("expected injection");
    expect(envOf(proxyOf(applyPlan(pod(), d2.plan, DEFAULT_INJECT)))).not.toHaveProperty(
      ENV.controllerCaPem,
    );
  });

  it("uses the flag defaults for image, controller URL and resources", () => {
    const config = {
      ...DEFAULT_INJECT,
      proxyImage: "reg.example/verso/sidecar:9",
      controllerUrl: "https://ctl:8443",
      resources: { requests: { cpu: "1m", memory: "1Mi" }, limits: { cpu: "2m", memory: "2Mi" } },
    };
    const { patch } = mutatePod(pod(), "demo", config);
    expect(patch).toBeDefined();
    const d = decide(pod(), "demo", config);
    if (!d.inject) throw new Error("expected injection");
    const proxy = proxyOf(applyPlan(pod(), d.plan, config));
    expect(proxy.image).toBe("reg.example/verso/sidecar:9");
    expect(envOf(proxy)[ENV.controllerUrl]).toBe("https://ctl:8443");
    expect(proxy.resources).toEqual(config.resources);
  });

  it("gives the proxy the gRPC listener only when the pod has a gRPC port", () => {
    const plain = decide(pod(), "demo", DEFAULT_INJECT);
    if (!plain.inject) throw new Error("expected injection");
    const plainPod = applyPlan(pod(), plain.plan, DEFAULT_INJECT);
    const plainProxy = proxyOf(plainPod);
    expect(envOf(plainProxy)).not.toHaveProperty(ENV.grpcListen);
    expect(plainProxy.ports?.map((p) => p.name)).not.toContain(GRPC_PORT_NAME);
    const plainInit = plainPod.spec.initContainers?.find((c) => c.name === INIT_CONTAINER);
    expect(envOf(plainInit!)).not.toHaveProperty(ENV.captureGrpcPorts);

    const grpcPod = (): Pod => ({
      metadata: { labels: { app: "shop" } },
      spec: {
        containers: [
          {
            name: "shop",
            ports: [
              { containerPort: 8080, name: "http" },
              { containerPort: 9090, name: "grpc" },
            ],
          },
        ],
      },
    });
    const d = decide(grpcPod(), "demo", DEFAULT_INJECT);
    if (!d.inject) throw new Error("expected injection");
    const out = applyPlan(grpcPod(), d.plan, DEFAULT_INJECT);
    const proxy = proxyOf(out);
    expect(envOf(proxy)).toMatchObject({
      [ENV.app]: "127.0.0.1:8080",
      [ENV.grpcListen]: "0.0.0.0:15007",
      [ENV.grpcApp]: "127.0.0.1:9090",
      [ENV.capturePorts]: "8080",
      [ENV.captureGrpcPorts]: "9090",
    });
    expect(proxy.ports).toContainEqual({
      name: GRPC_PORT_NAME,
      containerPort: PROXY_PORT.grpc,
      protocol: "TCP",
    });
    const init = out.spec.initContainers?.find((c) => c.name === INIT_CONTAINER);
    expect(envOf(init!)).toEqual({
      [ENV.capturePorts]: "8080",
      [ENV.listen]: "0.0.0.0:15006",
      [ENV.captureGrpcPorts]: "9090",
      [ENV.grpcListen]: "0.0.0.0:15007",
    });
  });

  it("turns the access log on with verso.dev/access-log, passing the pod's colour along", () => {
    const proxyEnvOf = (p: Pod, config = DEFAULT_INJECT) => {
      const d = decide(p, "demo", config);
      if (!d.inject) throw new Error("expected injection");
      return envOf(proxyOf(applyPlan(p, d.plan, config)));
    };
    const annotated = (annotations: Record<string, string>): Pod => ({
      ...pod(),
      metadata: { labels: { app: "shop" }, annotations },
    });
    const plain = proxyEnvOf(pod());
    expect(plain).not.toHaveProperty(ENV.accessLog);
    expect(plain).not.toHaveProperty(ENV.color);
    // A colour alone changes nothing in the proxy's env: only the access log reads it.
    expect(proxyEnvOf(annotated({ "verso.dev/color": "blue" }))).not.toHaveProperty(ENV.color);
    const on = proxyEnvOf(annotated({ "verso.dev/access-log": "true", "verso.dev/color": "blue" }));
    expect(on).toMatchObject({ [ENV.accessLog]: "true", [ENV.color]: "blue" });
    // Cluster-wide by flag, and a pod's "false" wins over it.
    const everywhere = { ...DEFAULT_INJECT, proxyAccessLog: true };
    expect(proxyEnvOf(pod(), everywhere)[ENV.accessLog]).toBe("true");
    expect(
      proxyEnvOf(annotated({ "verso.dev/access-log": "false" }), everywhere),
    ).not.toHaveProperty(ENV.accessLog);
  });

  it("does not modify its input", () => {
    const p = pod();
    const d = decide(p, "demo", DEFAULT_INJECT);
    if (!d.inject) throw new Error("expected injection");
    applyPlan(p, d.plan, DEFAULT_INJECT);
    expect(p).toEqual(pod());
  });
});
