import { describe, expect, it } from "vitest";
import { parseConfig } from "./config.ts";

const base = ["--app-name", "shop", "--version", "v1", "--routes", "r.json"];

describe("parseConfig", () => {
  it("reads the contract's flags", () => {
    const r = parseConfig(
      [
        "--listen",
        "127.0.0.2:15006",
        "--app",
        "127.0.0.2:8080",
        "--admin",
        "127.0.0.2:15020",
        ...base,
      ],
      {},
    );
    expect(r.ok && r.value).toMatchObject({
      listen: { host: "127.0.0.2", port: 15006 },
      app: { host: "127.0.0.2", port: 8080 },
      admin: { host: "127.0.0.2", port: 15020 },
      appName: "shop",
      version: "v1",
      routes: "r.json",
      versionHeader: true,
      drainSeconds: 20,
    });
    expect(r.ok && Object.isFrozen(r.value)).toBe(true);
  });

  it("falls back to env, and flags win over env", () => {
    const env = {
      VERSO_APP_NAME: "cart",
      VERSO_VERSION: "v9",
      VERSO_ROUTES: "x.json",
      VERSO_VERSION_HEADER: "false",
      VERSO_DRAIN_SECONDS: "3",
    };
    const fromEnv = parseConfig([], env);
    expect(fromEnv.ok && fromEnv.value).toMatchObject({
      appName: "cart",
      version: "v9",
      versionHeader: false,
      drainSeconds: 3,
    });
    const flagWins = parseConfig(["--version", "v2"], env);
    expect(flagWins.ok && flagWins.value.version).toBe("v2");
  });

  it.each([
    [["--version", "v1", "--routes", "r"], /app-name/],
    [["--app-name", "shop", "--version", "v1"], /--routes FILE or --controller-url/],
    [["--app-name", "shop", "--version", "v1", "--controller-url", "https://c"], /namespace/],
    [
      ["--app-name", "shop", "--version", "v1", "--controller-url", "c:443", "--namespace", "n"],
      /http/,
    ],
    [[...base, "--listen", "nope"], /--listen/],
    [[...base, "--version-header", "maybe"], /version-header/],
    [[...base, "--log-level", "loud"], /log-level/],
    [[...base, "--drain-seconds", "-1"], /drain-seconds/],
    [[...base, "--probes", "{"], /VERSO_PROBES/],
    [[...base, "--bogus", "1"], /bogus/],
  ])("rejects %j", (argv, why) => {
    const r = parseConfig(argv, {});
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(why);
  });

  it("takes the controller CA inline from VERSO_CONTROLLER_CA_PEM", () => {
    const r = parseConfig(["--app-name", "shop", "--version", "v1"], {
      VERSO_CONTROLLER_URL: "https://verso-webhook.verso-system.svc",
      VERSO_NAMESPACE: "shop",
      VERSO_CONTROLLER_CA_PEM: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----",
    });
    expect(r.ok && r.value.controllerCaPem).toContain("BEGIN CERTIFICATE");
    expect(r.ok && r.value.controllerCa).toBeUndefined();
  });

  it("parses a probe map", () => {
    const probes = JSON.stringify({
      "/app-health/web/readyz": { kind: "http", port: 8080, path: "/ready", scheme: "HTTP" },
      "/app-health/web/livez": { kind: "tcp", port: 8080 },
    });
    const r = parseConfig([...base, "--probes", probes], {});
    expect(r.ok && r.value.probes["/app-health/web/livez"]).toEqual({ kind: "tcp", port: 8080 });
  });

  it("access log: off by default; on by flag or env, with its options", () => {
    const off = parseConfig(base, {});
    expect(off.ok && off.value.accessLog).toBeUndefined();
    const on = parseConfig([...base, "--access-log", "true"], { VERSO_COLOR: "blue" });
    expect(on.ok && on.value).toMatchObject({
      color: "blue",
      accessLog: { includeQuery: false, bufferBytes: 1024 * 1024 },
    });
    const env = parseConfig(base, {
      VERSO_ACCESS_LOG: "TRUE",
      VERSO_ACCESS_LOG_QUERY: "true",
      VERSO_ACCESS_LOG_BUFFER_BYTES: "4096",
    });
    expect(env.ok && env.value.accessLog).toEqual({ includeQuery: true, bufferBytes: 4096 });
    const flagWins = parseConfig([...base, "--access-log=false"], { VERSO_ACCESS_LOG: "true" });
    expect(flagWins.ok && flagWins.value.accessLog).toBeUndefined();
  });

  it.each([
    [["--access-log", "yes"], /--access-log: use true or false/],
    [["--access-log-query", "1"], /--access-log-query: use true or false/],
    [["--access-log-buffer-bytes", "100"], /--access-log-buffer-bytes/],
    [["--access-log-buffer-bytes", "64k"], /--access-log-buffer-bytes/],
  ])("refuses %j", (args, message) => {
    const r = parseConfig([...base, "--access-log", "true", ...args], {});
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(message);
  });
});
