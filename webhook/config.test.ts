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
    [["--drain-delay", "-5"]],
    [["--tls-poll-interval", "50ms"]],
    [["--tls-poll-interval-ms", "10s"]],
    [["--tls-poll-interval", "1s", "--tls-poll-interval-ms", "1000"]],
    [["--scale-down-delay", "1d"]],
    [["--proxy-access-log", "yes"]],
    [["--unknown-flag"]],
  ])("rejects %j with a message", (argv) => {
    const c = parseConfig(argv, {});
    expect(c.ok).toBe(false);
    expect(!c.ok && c.error.length).toBeGreaterThan(10);
  });

  it("every duration flag takes DUR; no deprecations with the current spellings", () => {
    const c = parseConfig(
      ["--drain-delay", "2s", "--tls-poll-interval", "500ms", "--scale-down-delay", "10m"],
      {},
    );
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    expect(c.value.drainDelayMs).toBe(2_000);
    expect(c.value.tlsPollMs).toBe(500);
    expect(c.value.controllerOptions.scaleDownDelayMs).toBe(600_000);
    expect(c.value.deprecations).toEqual([]);
  });

  it("old spellings still work, each with one deprecation naming the new spelling", () => {
    const c = parseConfig(
      ["--drain-delay", "5", "--tls-poll-interval-ms", "200", "--scale-down-delay", "60"],
      {},
    );
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    expect(c.value.drainDelayMs).toBe(5_000);
    expect(c.value.tlsPollMs).toBe(200);
    expect(c.value.controllerOptions.scaleDownDelayMs).toBe(60_000);
    expect(c.value.deprecations).toEqual([
      "--tls-poll-interval-ms is deprecated, write --tls-poll-interval 200ms",
      "--drain-delay 5: a bare number of seconds is deprecated, write --drain-delay 5s",
      "--scale-down-delay 60: a bare number of seconds is deprecated, write --scale-down-delay 1m",
    ]);
  });

  it("the old env name of a renamed flag works too", () => {
    const c = parseConfig([], { VERSO_WEBHOOK_TLS_POLL_INTERVAL_MS: "1000" });
    expect(c.ok && c.value.tlsPollMs).toBe(1_000);
    expect(c.ok && c.value.deprecations).toHaveLength(1);
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
