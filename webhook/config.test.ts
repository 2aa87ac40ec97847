import { describe, expect, it } from "vitest";
import { parseConfig } from "./config.ts";

describe("parseConfig", () => {
  it("defaults", () => {
    const c = parseConfig([], {});
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    expect(c.value.listen).toEqual({ host: "127.0.0.1", port: 9443 });
    expect(c.value.tls).toBeUndefined();
    expect(c.value.controller).toBe(true);
    expect(c.value.drainDelayMs).toBe(5_000);
    expect(c.value.inject).toMatchObject({
      proxyImage: "verso/sidecar:0.1.0",
      capture: "iptables",
      nativeSidecar: true,
      controllerUrl: "https://verso-webhook.verso-system.svc:443",
      namespace: "verso-system",
    });
    expect(Object.isFrozen(c.value) && Object.isFrozen(c.value.inject)).toBe(true);
  });

  it("flags win over env, env over defaults", () => {
    const c = parseConfig(["--listen", "0.0.0.0:8443", "--capture", "port", "--no-controller"], {
      VERSO_WEBHOOK_CAPTURE: "iptables",
      VERSO_WEBHOOK_PROXY_IMAGE: "reg/p:2",
      VERSO_WEBHOOK_NATIVE_SIDECAR: "false",
      POD_NAMESPACE: "mesh",
    });
    expect(c.ok && c.value.listen).toEqual({ host: "0.0.0.0", port: 8443 });
    expect(c.ok && c.value.controller).toBe(false);
    expect(c.ok && c.value.inject).toMatchObject({
      capture: "port",
      proxyImage: "reg/p:2",
      nativeSidecar: false,
      namespace: "mesh",
    });
  });

  it.each([
    [["--drain-delay", "1s"], 1_000],
    [["--drain-delay", "250ms"], 250],
    [["--drain-delay", "0"], 0],
  ])("%j sets the drain delay", (argv, ms) => {
    const c = parseConfig(argv, {});
    expect(c.ok && c.value.drainDelayMs).toBe(ms);
  });

  it.each([
    [["--listen", "nope"]],
    [["--tls-cert", "a.pem"]],
    [["--capture", "ebpf"]],
    [["--native-sidecar", "maybe"]],
    [["--log-level", "loud"]],
    [["--proxy-cpu", "lots"]],
    [["--controller-url", "verso:443"]],
    [["--drain-delay", "5"]],
    [["--proxy-access-log", "yes"]],
    [["--unknown-flag"]],
  ])("rejects %j with a message", (argv) => {
    const c = parseConfig(argv, {});
    expect(c.ok).toBe(false);
    expect(!c.ok && c.error.length).toBeGreaterThan(10);
  });

  it("--proxy-access-log: off by default, on by flag or env", () => {
    const off = parseConfig([], {});
    expect(off.ok && off.value.inject.proxyAccessLog).toBe(false);
    const flag = parseConfig(["--proxy-access-log", "true"], {});
    expect(flag.ok && flag.value.inject.proxyAccessLog).toBe(true);
    const env = parseConfig([], { VERSO_WEBHOOK_PROXY_ACCESS_LOG: "true" });
    expect(env.ok && env.value.inject.proxyAccessLog).toBe(true);
  });
});
