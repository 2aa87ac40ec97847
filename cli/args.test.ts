import { describe, expect, it } from "vitest";
import { parseArgs } from "./args.ts";

describe("parseArgs", () => {
  const good: [string[], Record<string, unknown>][] = [
    [["list"], { command: "list", namespace: undefined, allNamespaces: false, output: "table" }],
    [["list", "-A"], { command: "list", allNamespaces: true }],
    [["-n", "shop", "list"], { command: "list", namespace: "shop" }],
    [["list", "-nshop"], { namespace: "shop" }],
    [["list", "--namespace=shop", "-o", "json"], { namespace: "shop", output: "json" }],
    [["get", "shop", "-o", "yaml"], { command: "get", positionals: ["shop"], output: "yaml" }],
    [["get", "shop", "-w", "--interval", "500ms"], { watch: true, intervalMs: 500 }],
    [["get", "shop", "--watch", "--count", "3"], { watch: true, count: 3 }],
    [["get", "shop", "--no-metrics"], { metrics: false }],
    [["promote", "shop", "--full"], { command: "promote", full: true }],
    [["set-weight", "shop", "25"], { command: "set-weight", positionals: ["shop", "25"] }],
    [["lint", "a.yaml", "b.yaml"], { command: "lint", positionals: ["a.yaml", "b.yaml"] }],
    [["lint", "-"], { positionals: ["-"] }],
    [["dashboard", "--port", "0"], { command: "dashboard", port: 0 }],
    [["--context", "kind", "--kubeconfig", "/k", "version"], { context: "kind", kubeconfig: "/k" }],
    [["get", "shop", "--color=always"], { color: "always" }],
    [[], { command: "help", help: true }],
    [["get", "--help"], { help: true }],
  ];
  it.each(good)("%j", (argv, want) => {
    const r = parseArgs(argv);
    expect(r.ok ? r.value : r.error).toMatchObject(want);
  });

  const bad: [string[], string][] = [
    [["frobnicate"], 'unknown command "frobnicate"'],
    [["get"], "get: missing APP"],
    [["get", "a", "b"], 'get: unexpected "b"'],
    [["set-weight", "shop"], "set-weight: missing N"],
    [["list", "--bogus"], "unknown flag --bogus"],
    [["list", "-n"], "-n needs a value"],
    [["list", "-o", "xml"], "--output: use json, yaml or table"],
    [["get", "x", "--interval", "soon"], "--interval: bad duration"],
    [["get", "x", "--interval", "10ms"], "at least 100ms"],
    [["list", "--watch"], "--watch works with get only"],
    [["abort", "x", "--full"], "--full works with promote only"],
    [["promote", "x", "-A"], "-A works with list and dashboard only"],
    [["dashboard", "--port", "99999"], "--port"],
    [["list", "-A=1"], "-A takes no value"],
  ];
  it.each(bad)("%j is refused", (argv, message) => {
    const r = parseArgs(argv);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(message);
  });
});
