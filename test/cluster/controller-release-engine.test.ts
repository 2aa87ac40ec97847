/**
 * The release engine on a real apiserver with real proxies and traffic: gates called from the
 * controller to a real HTTP receiver on 127.0.0.1 (which also gets the notifications), a
 * confirm-promotion gate holding the last step, blue-green automation (a failing smoke test;
 * a switch, then a switch back on failure; a preview analysis that fails on matched requests),
 * and the proxies' fast cut-off. Four apps run their releases side by side, as they would in a
 * cluster (the preview analysis brings a fifth of its own); every load loop is bounded.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABEL } from "../../shared/annotations.ts";
import { startCluster, type Cluster } from "../harness/cluster.ts";
import { isReady } from "../harness/podStatus.ts";
import type { Pod } from "../harness/podTypes.ts";
import { waitFor } from "../harness/ports.ts";
import {
  eventsFor,
  getThroughProxy,
  podLoad,
  statusOf,
  streamFor,
  waitForPhase,
  type PodLoad,
  type StatusAnnotation,
  type TableStream,
} from "./controllerFixtures.ts";
import { createNamespace, deployment, podsOf } from "./fixtures.ts";

const NS = "engine";
const INTERVAL = "3s";

interface Received {
  path: string;
  body: Record<string, unknown>;
}

/** Gates and notification endpoints, recording every call. */
function startReceiver(): Promise<{
  url: string;
  received: Received[];
  approve(): void;
  close(): Promise<void>;
}> {
  const received: Received[] = [];
  let approved = false;
  const server = http.createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (raw += c));
    req.on("end", () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        // recorded empty
      }
      const path = req.url ?? "/";
      received.push({ path, body });
      const status =
        path === "/gate/smoke-fail" ? 500 : path === "/gate/confirm" && !approved ? 403 : 200;
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(status === 200 ? "ok" : "no");
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        received,
        approve: () => (approved = true),
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}

/** One GET through the pod's proxy that `verso.dev/match: header:x-preview=1` sends to the release. */
const getMatched = (pod: Pod): Promise<unknown> =>
  fetch(`http://${pod.status?.podIP}:15006/`, {
    headers: { "x-preview": "1" },
    signal: AbortSignal.timeout(3_000),
  })
    .then((r) => r.arrayBuffer())
    .catch(() => undefined);

/** A port nothing listens on: a notification endpoint that always fails. */
async function deadUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}/gone`;
}

describe("controller: gates, notifications, blue-green automation, fast cut-off", () => {
  let cluster: Cluster;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const loads: PodLoad[] = [];
  /** Opened before the releases exist, so it sees every table the proxies got. */
  let bgStream: TableStream;
  const client = () => cluster.cp.client;
  const status = (name: string): Promise<StatusAnnotation | undefined> =>
    statusOf(client(), NS, name);
  const phase = (name: string, want: string, timeoutMs: number): Promise<StatusAnnotation> =>
    waitForPhase(client(), NS, name, want, timeoutMs);
  const streamOf = (app: string): Promise<TableStream> => streamFor(cluster, NS, app);
  const gate = (kind: string, path: string) => ({
    [`verso.dev/webhook-${kind}`]: receiver.url + path,
  });
  /** The status once it reaches `reason`, or fails first (the test then says which). */
  const reasonOrFailed = (name: string, reason: string, timeoutMs: number) =>
    waitFor(
      `${name} ${reason}`,
      async () => {
        const s = await status(name);
        return s?.reason === reason || s?.phase === "Failed" ? s : undefined;
      },
      timeoutMs,
      250,
    );
  const reasonsOf = async (name: string): Promise<string[]> =>
    (await eventsFor(client(), NS, name)).map((e) => e.reason);
  const eventually = (what: string, name: string, reason: string) =>
    waitFor(
      what,
      async () => ((await reasonsOf(name)).includes(reason) ? true : undefined),
      20_000,
      250,
    );

  beforeAll(async () => {
    receiver = await startReceiver();
    // The controller's flags, through the env the harness passes on to the webhook process.
    process.env.VERSO_WEBHOOK_NOTIFY_URL = `${receiver.url}/notify`;
    process.env.VERSO_WEBHOOK_NOTIFY_SLACK_URL = `${receiver.url}/slack`;
    try {
      cluster = await startCluster({ crds: false, controller: true });
    } finally {
      delete process.env.VERSO_WEBHOOK_NOTIFY_URL;
      delete process.env.VERSO_WEBHOOK_NOTIFY_SLACK_URL;
    }
    await createNamespace(client(), NS, { [LABEL.injection]: "enabled" });
    bgStream = await streamOf("bg");
    const create = (d: object) => client().create(`/apis/apps/v1/namespaces/${NS}/deployments`, d);
    const analysed = {
      "verso.dev/interval": INTERVAL,
      "verso.dev/max-error-rate": "5",
      "verso.dev/min-requests": "5",
    };
    for (const app of ["shop", "preview", "bg", "cut"])
      await create(deployment(`${app}-v1`, "v1", 1, { app }));
    await create(
      deployment("shop-v2", "v2", 1, {
        app: "shop",
        annotations: {
          "verso.dev/strategy": "canary",
          "verso.dev/steps": "20,50",
          ...analysed,
          ...gate("pre-rollout", "/gate/ok"),
          ...gate("rollout", "/gate/ok"),
          ...gate("confirm-promotion", "/gate/confirm"),
          ...gate("post-rollout", "/gate/ok"),
        },
      }),
    );
    await create(
      deployment("preview-v2", "v2", 1, {
        app: "preview",
        annotations: {
          "verso.dev/strategy": "blue-green",
          "verso.dev/auto-promote": "true",
          "verso.dev/match": "header:x-preview=1",
          ...analysed,
          ...gate("smoke-test", "/gate/smoke-fail"),
          ...gate("rollback", "/gate/ok"),
        },
      }),
    );
    await create(
      deployment("bg-v2", "v2", 1, {
        app: "bg",
        env: { ERROR_RATE: "0.5" },
        annotations: {
          "verso.dev/strategy": "blue-green",
          "verso.dev/auto-promote": "true",
          "verso.dev/post-switch-window": "2m",
          // This release shows the post-switch analysis; the cut-off has its own app.
          "verso.dev/cutoff-failures": "0",
          ...analysed,
          ...gate("smoke-test", "/gate/ok"),
        },
      }),
    );
    await create(
      deployment("cut-v2", "v2", 1, {
        app: "cut",
        env: { ERROR_RATE: "1" },
        annotations: {
          "verso.dev/strategy": "canary",
          "verso.dev/steps": "20,50",
          // Far longer than the test waits: only the proxies' cut-off can roll this back.
          "verso.dev/interval": "5m",
          "verso.dev/max-error-rate": "5",
          "verso.dev/notify-url": await deadUrl(),
        },
      }),
    );
    await waitFor(
      "8 ready pods",
      async () => {
        const pods = await podsOf(client(), NS);
        return pods.length === 8 && pods.every(isReady) ? true : undefined;
      },
      240_000,
      500,
    );
    for (const app of ["shop", "bg", "cut"]) {
      loads.push(podLoad(client(), NS, app, getThroughProxy, { minutes: 4, max: 8_000 }));
    }
  });

  afterAll(async () => {
    await Promise.all(loads.map((l) => l.stop()));
    bgStream?.close();
    await cluster?.stop();
    await receiver?.close();
  });

  it("a confirm-promotion gate holds the last step until it answers 2xx; gates and notifications reach a real receiver", async () => {
    const held = await waitFor(
      "shop-v2 awaiting confirmation",
      async () => {
        const s = await status("shop-v2");
        return s?.reason === "AwaitingGate" && s.step === 2 ? s : undefined;
      },
      90_000,
      250,
    );
    expect(held).toMatchObject({ phase: "Progressing", weight: 50 });
    // Asked again every interval, refused every time: still held.
    const confirms = () => receiver.received.filter((r) => r.path === "/gate/confirm").length;
    await waitFor(
      "a second refusal",
      async () => (confirms() >= 2 ? true : undefined),
      30_000,
      250,
    );
    expect((await status("shop-v2"))?.phase).toBe("Progressing");
    receiver.approve();
    const promoted = await phase("shop-v2", "Promoted", 30_000);
    expect(promoted.weight).toBe(100);

    const calls = receiver.received.filter(
      (r) => r.path.startsWith("/gate/") && r.body.name === "shop-v2",
    );
    expect(new Set(calls.map((c) => c.body.type))).toEqual(
      new Set(["pre-rollout", "rollout", "confirm-promotion", "post-rollout"]),
    );
    expect(calls.find((c) => c.body.type === "confirm-promotion")?.body).toMatchObject({
      name: "shop-v2",
      namespace: NS,
      app: "shop",
      phase: "Progressing",
      weight: 50,
      step: 2,
      version: "v2",
      stableVersions: ["v1"],
    });
    const notes = receiver.received.filter((r) => r.path === "/notify" && r.body.app === "shop");
    const events = notes.map((n) => n.body.event);
    expect(events).toEqual(expect.arrayContaining(["Started", "StepAdvanced", "Promoted"]));
    expect(notes[0]?.body).toMatchObject({ kind: "verso.release", namespace: NS, version: "v2" });
    const slack = receiver.received.filter((r) => r.path === "/slack");
    expect(slack.some((s) => String(s.body.text).includes("*engine/shop* v2: Promoted"))).toBe(
      true,
    );
    await eventually("GateFailed event", "shop-v2", "GateFailed");
    expect(await reasonsOf("shop-v2")).toEqual(
      expect.arrayContaining(["GateCalled", "GatePassed"]),
    );

    const metrics = await cluster.webhook!.fetchText("/metrics");
    const labels = `namespace="${NS}",app="shop",version="v2"`;
    expect(metrics).toContain(`verso_release_phase{${labels},phase="Promoted"} 1`);
    expect(metrics).toContain(`verso_release_weight{${labels},kind="desired"} 100`);
    expect(metrics).toMatch(new RegExp(`verso_release_weight\\{${labels},kind="actual"\\} \\d`));
  });

  it("a blue-green release whose smoke test fails never gets switched to, and is taken off", async () => {
    const stream = await streamOf("preview");
    const failed = await phase("preview-v2", "Failed", 60_000);
    expect(failed.reason).toBe("GateFailed");
    expect(failed.message).toContain("smoke test failed");
    const t = await stream.until(
      "preview off",
      (t) => t.release?.weight === 0 && !t.release.match,
      10_000,
    );
    expect(t.release?.version).toBe("v2");
    // At no time did a table send the new colour anything but its preview.
    expect(stream.tables.every((x) => (x.release?.weight ?? 0) === 0)).toBe(true);
    stream.close();
    const types = receiver.received
      .filter((r) => r.body.name === "preview-v2")
      .map((r) => r.body.type);
    expect(types).toEqual(expect.arrayContaining(["smoke-test", "rollback"]));
    await eventually("GateFailed event", "preview-v2", "GateFailed");
  });

  it("a blue-green release is switched, analysed, and switched back when the new colour fails", async () => {
    const stream = bgStream;
    const switched = await reasonOrFailed("bg-v2", "Switched", 60_000);
    expect(switched.weight === 100 || switched.reason === "SwitchedBack").toBe(true);
    const back = await phase("bg-v2", "Failed", 60_000);
    expect(back.reason).toBe("SwitchedBack");
    expect(back.message).toContain("switched back");
    await stream.until("bg back on the old colour", (t) => t.release?.weight === 0, 10_000);
    expect(stream.tables.some((t) => t.release?.weight === 100)).toBe(true);
    stream.close();
    const ev = (await eventsFor(client(), NS, "bg-v2")).find((e) => e.reason === "SwitchedBack");
    expect(ev?.type).toBe("Warning");
    expect(await reasonsOf("bg-v2")).toEqual(expect.arrayContaining(["Switched", "GatePassed"]));
  });

  it("a canary failing hard is cut off by the proxies and rolled back without waiting for its interval", async () => {
    const failed = await phase("cut-v2", "Failed", 60_000);
    expect(failed.reason).toBe("CutOff");
    expect(failed.step).toBe(1);
    // A 5-minute interval never ended: no analysis was made.
    expect(failed.analysis).toBeUndefined();
    const stream = await streamOf("cut");
    await stream.until("cut at 0%", (t) => t.release?.weight === 0, 10_000);
    stream.close();
    await eventually("NotificationFailed event", "cut-v2", "NotificationFailed");
    const metrics = await cluster.webhook!.fetchText("/metrics");
    const line = (reason: string, what: "sum" | "count") =>
      Number(
        new RegExp(
          `verso_release_rollback_seconds_${what}\\{namespace="${NS}",app="\\w+",reason="${reason}"\\} (\\S+)`,
        ).exec(metrics)?.[1] ?? NaN,
      );
    expect(line("CutOff", "count")).toBeGreaterThanOrEqual(1);
    process.stdout.write(
      `rollback written after the signal: cut-off ${(line("CutOff", "sum") * 1000).toFixed(0)} ms, smoke-test gate ${(line("GateFailed", "sum") * 1000).toFixed(0)} ms\n`,
    );
  });

  it("a gate declared only in a ConfigMap is called, follows the ConfigMap's changes, and the last good policy stays when it goes bad", async () => {
    const ns = "engine-cm";
    const name = "gated-v2";
    const cms = `/api/v1/namespaces/${ns}/configmaps`;
    await createNamespace(client(), ns, { [LABEL.injection]: "enabled" });
    await client().create(cms, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "gates" },
      data: { "pre-rollout": `${receiver.url}/gate/smoke-fail`, timeout: "5s" },
    });
    await client().create(
      `/apis/apps/v1/namespaces/${ns}/deployments`,
      deployment(name, "v2", 1, {
        app: "gated",
        annotations: {
          "verso.dev/strategy": "canary",
          "verso.dev/steps": "50",
          "verso.dev/interval": "2s",
          "verso.dev/gates-configmap": "gates",
        },
      }),
    );
    const calls = (path: string) =>
      receiver.received.filter((r) => r.path === path && r.body.name === name);
    const called = (path: string) =>
      waitFor(`a call to ${path}`, async () => calls(path)[0], 20_000, 100);
    const policyInvalid = (says: string) =>
      waitFor(
        `PolicyInvalid: ${says}`,
        async () =>
          (await eventsFor(client(), ns, name)).find(
            (e) => e.reason === "PolicyInvalid" && e.message.includes(says),
          ),
        10_000,
        100,
      );

    // Declared nowhere but in the ConfigMap: called, refused, the release held before traffic.
    expect((await called("/gate/smoke-fail")).body.type).toBe("pre-rollout");
    expect(await statusOf(client(), ns, name)).toMatchObject({
      phase: "Pending",
      reason: "AwaitingGate",
    });
    // Applied just before the Deployment, the ConfigMap was never taken for missing.
    const early = await eventsFor(client(), ns, name);
    expect(early.filter((e) => e.reason === "PolicyInvalid")).toEqual([]);
    // Pointed elsewhere: the next call goes there, passes, and the release starts.
    await client().patch(`${cms}/gates`, { data: { "pre-rollout": `${receiver.url}/gate/cm-ok` } });
    expect((await called("/gate/cm-ok")).body.type).toBe("pre-rollout");
    const started = await waitFor(
      `${name} started`,
      async () => {
        const s = await statusOf(client(), ns, name);
        return s && s.phase !== "Pending" ? s : undefined;
      },
      10_000,
      100,
    );
    expect(started.phase).not.toBe("Failed");

    // An unknown key, then no ConfigMap at all: each a Warning naming why, the policy kept.
    await client().patch(`${cms}/gates`, { data: { "pre-rolout": "https://typo.example" } });
    const unknown = await policyInvalid('ConfigMap "gates" key "pre-rolout" is unknown');
    expect(unknown.type).toBe("Warning");
    await client().delete(`${cms}/gates`);
    const missing = await policyInvalid('ConfigMap "gates" not found');
    expect(missing.message).toContain("the last good policy stays in force");
    const d = await client().get<{ metadata: { annotations?: Record<string, string> } }>(
      `/apis/apps/v1/namespaces/${ns}/deployments/${name}`,
    );
    const status = JSON.parse(d.metadata.annotations?.["verso.dev/status"] ?? "{}") as {
      phase: string;
      policyErrors?: string[];
      applied?: Record<string, string>;
    };
    expect(status.phase).not.toBe("Failed");
    expect(status.policyErrors).toEqual(["POLICY_CONFIGMAP"]);
    expect(status.applied?.["verso.dev/webhook-pre-rollout"]).toBe(`${receiver.url}/gate/cm-ok`);
  });

  it("a blue-green release whose new colour fails its preview analysis on matched requests is never switched to", async () => {
    const stream = await streamOf("pvw");
    const create = (d: object) => client().create(`/apis/apps/v1/namespaces/${NS}/deployments`, d);
    await create(deployment("pvw-v1", "v1", 1, { app: "pvw" }));
    await create(
      deployment("pvw-v2", "v2", 1, {
        app: "pvw",
        env: { ERROR_RATE: "1" },
        annotations: {
          "verso.dev/strategy": "blue-green",
          "verso.dev/auto-promote": "true",
          "verso.dev/match": "header:x-preview=1",
          "verso.dev/preview-analysis": "2",
          "verso.dev/interval": INTERVAL,
          "verso.dev/max-error-rate": "5",
          "verso.dev/min-requests": "5",
          // The preview analysis is what this shows, not the proxies' cut-off.
          "verso.dev/cutoff-failures": "0",
          ...gate("rollback", "/gate/ok"),
        },
      }),
    );
    const previewing = await reasonOrFailed("pvw-v2", "Preview", 90_000);
    expect(previewing).toMatchObject({ phase: "Progressing", weight: 0, step: 1 });
    // Matched requests only, through either colour's proxy: every one is the new colour's.
    const load = podLoad(client(), NS, "pvw", getMatched, { minutes: 1, max: 2_000 });
    try {
      const failed = await phase("pvw-v2", "Failed", 30_000);
      expect(failed).toMatchObject({ weight: 0, reason: "GateFailed", step: 1 });
      expect(failed.message).toContain("failed in preview");
      expect(failed.message).toMatch(/error rate [\d.]+% is above the maximum 5%/);
      expect(failed.analysis?.measured.releaseRequests).toBeGreaterThanOrEqual(5);
      process.stdout.write(`preview analysis: ${failed.message}\n`);
    } finally {
      await load.stop();
    }
    await stream.until("pvw preview off", (t) => t.release?.weight === 0 && !t.release.match);
    // Never switched: no table ever sent the new colour unmatched traffic.
    expect(stream.tables.every((t) => (t.release?.weight ?? 0) === 0)).toBe(true);
    stream.close();
    const events = await eventsFor(client(), NS, "pvw-v2");
    expect(events.map((e) => e.reason)).not.toContain("Switched");
    const warning = events.find((e) => e.reason === "GateFailed");
    expect(warning?.type).toBe("Warning");
    expect(warning?.message).toContain("matched requests");
    const types = receiver.received.filter((r) => r.body.name === "pvw-v2").map((r) => r.body.type);
    expect(types).toContain("rollback");
  });
});
