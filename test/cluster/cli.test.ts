/**
 * `kubectl verso` against a real API server, as a separate process with a kubeconfig file:
 * every command on live releases (the controller runs in the webhook process and reacts to
 * what the CLI writes), live numbers read through the API server's pod proxy, the watch view
 * piped and on a pseudo-terminal, a user bound to a read-only Role, and lint.
 *
 * Pod IPs: the API server's pod proxy refuses loopback pod IPs, so the pods get addresses from
 * a local route (test/harness/localRoute.ts; root only). Without it the live-number checks are
 * skipped with the reason printed; everything else still runs.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import type { Cluster } from "../harness/cluster.ts";
import type { LocalRange } from "../harness/localRoute.ts";
import { REPO_ROOT } from "../harness/paths.ts";
import { waitFor } from "../harness/ports.ts";
import {
  CLI,
  NODE_BIN,
  runCli,
  SCENE_NS,
  startScene,
  type CliResult,
  type Scene,
} from "./cliFixtures.ts";
import { eventsFor, statusOf, waitForPhase } from "./controllerFixtures.ts";

const NS = SCENE_NS;
const ANSI = "\x1b[";

describe("kubectl verso against a real API server", () => {
  let cluster: Cluster;
  let range: LocalRange | undefined;
  let viewer: string;
  let auditor: string;
  let scene: Scene | undefined;
  const client = () => cluster.cp.client;
  const cli = (args: string[], kubeconfig = cluster.cp.kubeconfig): Promise<CliResult> =>
    runCli(["-n", NS, ...args], { kubeconfig });
  const ok = async (args: string[], kubeconfig?: string): Promise<CliResult> => {
    const r = await cli(args, kubeconfig);
    if (r.code !== 0) throw new Error(`kubectl verso ${args.join(" ")}: ${r.code}\n${r.stderr}`);
    return r;
  };

  beforeAll(async () => {
    scene = await startScene();
    ({ cluster, range, viewer, auditor } = scene);
  });

  afterAll(async () => {
    await scene?.stop();
  });

  it("version works offline, also as a kubectl plugin", async () => {
    const r = await runCli(["version", "-o", "json"], { env: { KUBECONFIG: "/nonexistent" } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: "kubectl-verso", version: "0.1.0" });
    // kubectl runs any kubectl-<name> on PATH: `kubectl verso version`.
    const dir = mkdtempSync(join(tmpdir(), "verso-plugin-"));
    symlinkSync(CLI, join(dir, "kubectl-verso"));
    const viaKubectl = await new Promise<CliResult>((resolve) => {
      const child = spawn(cluster.cp.binaries.kubectl, ["verso", "version"], {
        env: { ...process.env, PATH: `${dir}:${NODE_BIN}:${process.env.PATH ?? ""}` },
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      child.once("exit", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
    expect(viaKubectl.stderr).toBe("");
    expect(viaKubectl.stdout).toMatch(/^kubectl-verso 0\.1\.0/);
  });

  it("list: every release of the namespace with phase, step and weights", async () => {
    const r = await ok(["list"]);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^APP\s+STRATEGY\s+PHASE\s+STEP\s+DESIRED\s+ACTUAL\s+AGE$/);
    expect(lines.find((l) => l.startsWith("shop "))).toMatch(/canary\s+Progressing\s+1\/3\s+20%/);
    expect(lines.find((l) => l.startsWith("cart "))).toMatch(/canary\s+Progressing\s+-\s+10%/);
    expect(r.stdout).not.toContain("plain"); // no release
    expect(r.stdout).not.toContain(ANSI); // piped: no colour

    const json = JSON.parse((await ok(["list", "-o", "json"])).stdout) as {
      items: { app: string; desiredWeight: number; actualWeight?: number; step?: string }[];
    };
    const shop = json.items.find((i) => i.app === "shop");
    expect(shop).toMatchObject({ desiredWeight: 20, step: "1/3" });
    if (range) expect(shop?.actualWeight).toBeGreaterThan(0);

    const all = await ok(["list", "-A"]);
    expect(all.stdout.split("\n")[0]).toMatch(/^NAMESPACE\s+APP/);
    expect(all.stdout).toMatch(/cli\s+shop\s+canary/);
  });

  it("get: versions, phase, gates with value/threshold/sample, live numbers, events", async () => {
    // Wait for an analysis with numbers (every 3s, held: the sample is never enough).
    await waitFor(
      "an analysis of shop-v2 with requests",
      async () => {
        const s = await statusOf(client(), NS, "shop-v2");
        return (s?.analysis?.measured.releaseRequests ?? 0) > 0 ? s : undefined;
      },
      30_000,
      500,
    );
    const r = await ok(["get", "shop"]);
    const out = r.stdout;
    expect(out).toContain("shop in namespace cli: release shop-v2 (version v2)");
    expect(out).toMatch(/Strategy:\s+canary, steps 20,50,100 every 3s/);
    expect(out).toMatch(/Phase:\s+Progressing, step 1 of 3/);
    expect(out).toMatch(/Weight:\s+desired 20%/);
    expect(out).toMatch(/v1\s+stable\s+shop-v1\s+1\/1\s+shop-v1-/);
    expect(out).toMatch(/v2\s+release\s+shop-v2\s+1\/1\s+shop-v2-/);
    expect(out).toMatch(/GATES \(last analysis \d+s ago: hold, NotEnoughTraffic/);
    expect(out).toMatch(/error rate\s+\d+(\.\d+)?%\s+<= 5%\s+\d+\s+pass/);
    expect(out).toMatch(/p99\s+[\d.]+ms\s+<= 500ms\s+\d+\s+pass/);
    expect(out).toMatch(/requests\s+\d+\s+>= 1000000\s+\d+\s+fail/);
    expect(out).toMatch(/EVENTS[\s\S]*Started\s+shop-v2/);
    if (range) {
      expect(out).toMatch(/TRAFFIC \(last [\d.]+s, 2 pods scraped twice\)/);
      expect(out).toMatch(/v1\s+[\d.]+\s+0%\s+[\d.]+ms\s+\d+/);
      expect(out).toMatch(/v2\s+[\d.]+\s+0%\s+[\d.]+ms\s+\d+/);
      expect(out).toMatch(/Weight:\s+desired 20%, actual [\d.]+% \(last [\d.]+s\)/);
    }

    const view = parseYaml((await ok(["get", "shop", "-o", "yaml", "--no-metrics"])).stdout) as {
      phase: string;
      gates: { gate: string; threshold: number; value?: number; sample?: number }[];
      versions: { version: string; pods: { ready: boolean }[] }[];
    };
    expect(view.phase).toBe("Progressing");
    expect(view.gates.map((g) => g.gate)).toEqual(["error-rate", "p99", "min-requests"]);
    expect(view.gates[0]).toMatchObject({ threshold: 5 });
    expect(view.gates[0]?.sample).toBeGreaterThan(0);
    expect(view.versions.map((v) => [v.version, v.pods.every((p) => p.ready)])).toEqual([
      ["v1", true],
      ["v2", true],
    ]);
  });

  it("get: unknown app and an app without a release are clear errors", async () => {
    const unknown = await cli(["get", "nosuch"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no app "nosuch" in namespace "cli".*\[CLI_UNKNOWN_APP\]/);
    expect(unknown.stderr).toContain("apps here: cart, plain, shop");
    const plain = await cli(["promote", "plain"]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/app "plain" has no release.*\[CLI_NO_RELEASE\]/);
  });

  it("get --watch: plain frames when piped, in-place redraws with colour on a terminal", async () => {
    const piped = await ok(["get", "shop", "--watch", "--interval", "1s", "--count", "3"]);
    const frames = piped.stdout.split(/^--- Every 1s: kubectl verso get shop -n cli/m).slice(1);
    expect(frames).toHaveLength(3);
    expect(piped.stdout).not.toContain(ANSI);
    for (const f of frames) expect(f).toMatch(/Phase:\s+Progressing/);
    expect(frames[0]).toContain("measuring: numbers from the next refresh on");
    if (range) expect(frames[2]).toMatch(/TRAFFIC \(last [\d.]+s/);

    // `script` (util-linux) gives the CLI a pseudo-terminal, as a person's shell would.
    if (spawnSync("script", ["--version"]).error) {
      console.warn("[cli.test] no `script` command: the terminal view is not checked");
      return;
    }
    const command = [
      `PATH=${NODE_BIN}:$PATH`,
      `KUBECONFIG=${cluster.cp.kubeconfig}`,
      `node ${CLI} -n ${NS} get shop --watch --interval 1s --count 3`,
    ].join(" ");
    const tty = await new Promise<CliResult>((resolve) => {
      const child = spawn("script", ["-qfec", command, "/dev/null"], { cwd: REPO_ROOT });
      let stdout = "";
      child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
      child.once("exit", (code) => resolve({ code: code ?? 1, stdout, stderr: "" }));
    });
    expect(tty.code).toBe(0);
    const home = tty.stdout.split("\x1b[H").length - 1;
    expect(home).toBe(3); // three frames, each drawn from the top-left corner
    expect(tty.stdout).toContain("\x1b[?25l"); // cursor hidden while drawing...
    expect(tty.stdout).toContain("\x1b[?25h"); // ...and shown again at the end
    expect(tty.stdout).toContain("\x1b[36mProgressing\x1b[0m"); // colour
    expect(tty.stdout).not.toContain("--- Every");
  });

  it("promote moves one step, --full promotes; the controller follows", async () => {
    const r = await ok(["promote", "shop"]);
    expect(r.stdout).toContain("shop (shop-v2): step 2 of 3, 50% of traffic to v2");
    const s = await statusOf(client(), NS, "shop-v2");
    expect(s).toMatchObject({ phase: "Progressing", step: 2, weight: 50 });
    // The leader keeps the step and measures it (held again: the sample is never enough).
    await waitFor(
      "an analysis at step 2",
      async () => {
        const st = await statusOf(client(), NS, "shop-v2");
        return st?.step === 2 && st.reason === "Held" ? st : undefined;
      },
      30_000,
      250,
    );
    const full = await ok(["promote", "shop", "--full", "-o", "json"]);
    expect(JSON.parse(full.stdout)).toMatchObject({
      command: "promote",
      writes: [{ deployment: "shop-v2", annotations: { "verso.dev/promote": "true" } }],
    });
    const promoted = await waitForPhase(client(), NS, "shop-v2", "Promoted", 30_000);
    expect(promoted.weight).toBe(100);
    const again = await ok(["promote", "shop"]);
    expect(again.stdout).toContain("already promoted (nothing to do)");
  });

  it("undo goes back to the previous version; retry starts the release over", async () => {
    const undo = await ok(["undo", "shop"]);
    expect(undo.stdout).toContain("all traffic back to v1 (shop-v1)");
    const failed = await waitForPhase(client(), NS, "shop-v2", "Failed", 30_000);
    expect(failed).toMatchObject({ weight: 0, reason: "Aborted" });
    const list = await ok(["list", "--no-metrics"]);
    expect(list.stdout).toMatch(/shop\s+canary\s+Failed\s+\S+\s+0%/);
    const promote = await cli(["promote", "shop"]);
    expect(promote.code).toBe(1);
    expect(promote.stderr).toMatch(/has failed.*kubectl verso retry shop.*\[CLI_RELEASE_FAILED\]/);

    await ok(["retry", "shop"]);
    const again = await waitForPhase(client(), NS, "shop-v2", "Progressing", 30_000);
    expect(again).toMatchObject({ step: 1, weight: 20 });
    const retryAgain = await cli(["retry", "shop"]);
    expect(retryAgain.code).toBe(1);
    expect(retryAgain.stderr).toContain("[CLI_NOT_FAILED]");
  });

  it("pause holds, resume continues, abort rolls back", async () => {
    await ok(["pause", "shop"]);
    await waitForPhase(client(), NS, "shop-v2", "Paused", 30_000);
    expect((await ok(["get", "shop", "--no-metrics"])).stdout).toMatch(
      /Control:\s+paused \(verso\.dev\/paused\)/,
    );
    await ok(["resume", "shop"]);
    const resumed = await waitForPhase(client(), NS, "shop-v2", "Progressing", 30_000);
    expect(resumed.reason).toMatch(/Resumed|Held/);
    await ok(["abort", "shop"]);
    const aborted = await waitForPhase(client(), NS, "shop-v2", "Failed", 30_000);
    expect(aborted.reason).toBe("Aborted");
    const reasons = await waitFor(
      "Paused, Resumed and Aborted events",
      async () => {
        const r = (await eventsFor(client(), NS, "shop-v2")).map((e) => e.reason);
        return ["Paused", "Resumed", "Aborted"].every((x) => r.includes(x)) ? r : undefined;
      },
      15_000,
      250,
    );
    expect(reasons).toContain("Aborted");
  });

  it("set-weight: a manual canary's weight; refused with the parser's code otherwise", async () => {
    await ok(["set-weight", "cart", "30"]);
    await waitFor(
      "cart-v2 at 30%",
      async () => ((await statusOf(client(), NS, "cart-v2"))?.weight === 30 ? true : undefined),
      30_000,
      250,
    );
    const bad = await cli(["set-weight", "cart", "140"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /verso\.dev\/weight: "140": use a number from 0 to 100.*\[POLICY_WEIGHT\]/,
    );
    const steps = await cli(["set-weight", "shop", "50"]);
    expect(steps.code).toBe(1);
    expect(steps.stderr).toMatch(/automated canary \(steps 20,50,100\).*\[CLI_UNSUPPORTED\]/);
  });

  it("a read-only user reads everything and is refused writes with the verb and resource", async () => {
    const get = await ok(["get", "shop"], viewer);
    expect(get.stdout).toContain("release shop-v2");
    if (range) expect(get.stdout).toMatch(/TRAFFIC \(last [\d.]+s/);
    const promote = await cli(["retry", "shop"], viewer);
    expect(promote.code).toBe(1);
    expect(promote.stderr).toContain(
      'forbidden: you may not patch deployments.apps "shop-v2" in namespace "cli"',
    );
    expect(promote.stderr).toContain('User "viewer" cannot patch resource "deployments"');
    expect(promote.stderr).toContain("[CLI_FORBIDDEN]");
    // Another namespace: nothing is granted there.
    const other = await runCli(["list", "-n", "default"], { kubeconfig: viewer });
    expect(other.code).toBe(1);
    expect(other.stderr).toContain(
      'forbidden: you may not list deployments.apps in namespace "default"',
    );
    // Without pods/proxy the page still comes, and says why it has no live numbers.
    const noProxy = await ok(["get", "shop"], auditor);
    expect(noProxy.stdout).toContain('live numbers need "get" on pods/proxy');
  });

  it("lint: good manifests pass, bad ones fail with every problem", async () => {
    const good = await runCli([
      "lint",
      join(REPO_ROOT, "deploy", "examples"),
      join(REPO_ROOT, "cli", "testdata", "good.yaml"),
    ]);
    expect(good.stderr).toBe("");
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/object\(s\), 2 release\(s\): no problems/);
    const bad = await runCli(["lint", join(REPO_ROOT, "cli", "testdata", "bad.yaml")]);
    expect(bad.code).toBe(1);
    for (const code of [
      "POLICY_STEPS",
      "POLICY_WEIGHT",
      "POLICY_MATCH_WEIGHT",
      "LINT_UNKNOWN",
      "LINT_NOT_STRING",
      "LINT_MISPLACED",
      "LINT_NOT_RELEASE",
      "LINT_OWNED",
    ])
      expect(bad.stdout).toContain(code);
    expect(bad.stdout).toContain("did you mean verso.dev/interval?");
    const stdin = await runCli(["lint", "-", "-o", "json"], {
      input: "kind: Deployment\nmetadata:\n  annotations:\n    verso.dev/strategy: rolling\n",
    });
    expect(stdin.code).toBe(1);
    expect(JSON.parse(stdin.stdout).problems[0]).toMatchObject({ code: "POLICY_STRATEGY" });
  });
});
