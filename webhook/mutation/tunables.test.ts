import { describe, expect, it } from "vitest";
import { DEFAULT_INJECT } from "./config.ts";
import { parsePortList, parseTunables } from "./tunables.ts";

describe("parsePortList", () => {
  it.each([
    ["8080", [8080]],
    [" 8080 , 9090,8080 ", [8080, 9090]],
    ["", []],
    ["0", undefined],
    ["65536", undefined],
    ["http", undefined],
    ["80-90", undefined],
  ])("%j -> %j", (text, expected) => {
    expect(parsePortList(text)).toEqual(expected);
  });
});

describe("parseTunables", () => {
  it("defaults come from the config", () => {
    const t = parseTunables({}, DEFAULT_INJECT);
    expect(t).toEqual({
      ok: true,
      value: {
        capture: "iptables",
        nativeSidecar: true,
        logLevel: "info",
        accessLog: false,
        resources: DEFAULT_INJECT.resources,
        ports: undefined,
        excludePorts: new Set(),
        protocols: new Map(),
      },
    });
  });

  it.each([
    ["verso.dev/capture", "port", { capture: "port" }],
    ["verso.dev/native-sidecar", "FALSE", { nativeSidecar: false }],
    ["verso.dev/log-level", "debug", { logLevel: "debug" }],
    ["verso.dev/access-log", "True", { accessLog: true }],
    ["verso.dev/ports", "9000,9001", { ports: [9000, 9001] }],
    ["verso.dev/exclude-ports", "9090", { excludePorts: new Set([9090]) }],
    [
      "verso.dev/protocol",
      "9090=grpc,8080=http",
      {
        protocols: new Map([
          [9090, "grpc"],
          [8080, "http"],
        ]),
      },
    ],
    [
      "verso.dev/proxy-cpu",
      "250m",
      {
        resources: {
          requests: { cpu: "250m", memory: "48Mi" },
          limits: { cpu: "500m", memory: "128Mi" },
        },
      },
    ],
    [
      "verso.dev/proxy-memory-limit",
      "1Gi",
      {
        resources: {
          requests: { cpu: "50m", memory: "48Mi" },
          limits: { cpu: "500m", memory: "1Gi" },
        },
      },
    ],
  ])("%s: %s", (key, value, expected) => {
    const t = parseTunables({ [key]: value }, DEFAULT_INJECT);
    expect(t.ok && t.value).toMatchObject(expected);
  });

  it.each([
    ["verso.dev/capture", "tproxy"],
    ["verso.dev/native-sidecar", "yes"],
    ["verso.dev/log-level", "trace"],
    ["verso.dev/access-log", "on"],
    ["verso.dev/ports", "8080,http"],
    ["verso.dev/exclude-ports", "-1"],
    ["verso.dev/proxy-cpu", "fast"],
    ["verso.dev/proxy-memory", "64MB"],
    ["verso.dev/protocol", "9090=websocket"],
    ["verso.dev/protocol", "grpc"],
  ])("%s: %s is rejected, naming the annotation", (key, value) => {
    const t = parseTunables({ [key]: value }, DEFAULT_INJECT);
    expect(t.ok).toBe(false);
    expect(!t.ok && t.error[0]?.startsWith(`${key}=`)).toBe(true);
  });

  it("the access log follows --proxy-access-log unless the pod says otherwise", () => {
    const on = { ...DEFAULT_INJECT, proxyAccessLog: true };
    const accessLog = (ann: Record<string, string>) => {
      const t = parseTunables(ann, on);
      return t.ok && t.value.accessLog;
    };
    expect(accessLog({})).toBe(true);
    expect(accessLog({ "verso.dev/access-log": "false" })).toBe(false);
    expect(accessLog({ "verso.dev/access-log": " true " })).toBe(true);
  });
});
