import { describe, expect, it } from "vitest";
import { ENV, PROXY_CONTAINER } from "../../shared/pod-env.ts";
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

  it("does not modify its input", () => {
    const p = pod();
    const d = decide(p, "demo", DEFAULT_INJECT);
    if (!d.inject) throw new Error("expected injection");
    applyPlan(p, d.plan, DEFAULT_INJECT);
    expect(p).toEqual(pod());
  });
});
