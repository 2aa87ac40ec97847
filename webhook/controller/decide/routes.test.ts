import { describe, expect, it } from "vitest";
import { parsePolicy } from "../../../shared/policy.ts";
import {
  buildTable,
  endpointsOf,
  grpcEndpointsOf,
  releaseFor,
  resolvePolicy,
  selectRelease,
  weightFor,
} from "./routes.ts";
import { formatStatus, type ReleaseStatus } from "./status.ts";
import type { DeploymentView, PodView } from "./views.ts";

const dep = (
  name: string,
  created: number,
  ann: Record<string, string> = {},
  version = name,
): DeploymentView => ({
  namespace: "shop",
  name,
  uid: `uid-${name}`,
  resourceVersion: "1",
  created,
  template: "t1",
  app: "shop",
  version,
  replicas: 1,
  ready: true,
  annotations: Object.fromEntries(Object.entries(ann).map(([k, v]) => [`verso.dev/${k}`, v])),
});
const status = (o: Partial<ReleaseStatus>): ReleaseStatus => ({
  phase: "Progressing",
  weight: 20,
  reason: "StepAdvanced",
  message: "",
  version: "v2",
  template: "t1",
  startedAt: "2026-01-01T00:00:00Z",
  lastProgressAt: "2026-01-01T00:00:00Z",
  ...o,
});
const pol = (o: Record<string, string>) => {
  const r = parsePolicy(
    Object.fromEntries(Object.entries(o).map(([k, v]) => [`verso.dev/${k}`, v])),
  );
  if (!r.ok) throw new Error("bad");
  return r.value;
};

describe("selectRelease", () => {
  it("newest release wins, others are superseded, plain Deployments are ignored", () => {
    const c = selectRelease([
      dep("v1", 1),
      dep("v2", 2, { strategy: "canary" }),
      dep("v3", 3, { strategy: "canary" }),
    ]);
    expect(c.release?.name).toBe("v3");
    expect(c.superseded.map((d) => d.name)).toEqual(["v2"]);
  });
  it("no release", () => {
    expect(selectRelease([dep("v1", 1)])).toEqual({ release: undefined, superseded: [] });
  });
});

describe("weightFor (mirrors its truth table)", () => {
  const cases: [string, ReturnType<typeof pol>, ReleaseStatus | undefined, number][] = [
    ["abort", pol({ strategy: "canary", weight: "50", abort: "true" }), undefined, 0],
    ["failed", pol({ strategy: "canary", weight: "50" }), status({ phase: "Failed" }), 0],
    ["blue-green promoted", pol({ strategy: "blue-green", promote: "true" }), undefined, 100],
    [
      "blue-green preview",
      pol({ strategy: "blue-green" }),
      status({ phase: "Promoted", weight: 100 }),
      0,
    ],
    ["canary promote now", pol({ strategy: "canary", promote: "true" }), undefined, 100],
    [
      "canary promoted",
      pol({ strategy: "canary", steps: "5,50" }),
      status({ phase: "Promoted", weight: 100 }),
      100,
    ],
    [
      "automated from status",
      pol({ strategy: "canary", steps: "5,50" }),
      status({ weight: 20 }),
      20,
    ],
    ["automated without status", pol({ strategy: "canary", steps: "5,50" }), undefined, 0],
    [
      "automated with another version's status",
      pol({ strategy: "canary", steps: "5,50" }),
      status({ version: "v1" }),
      0,
    ],
    ["manual", pol({ strategy: "canary", weight: "12.5" }), status({ weight: 20 }), 12.5],
  ];
  for (const [name, p, s, w] of cases) it(name, () => expect(weightFor(p, s, "v2")).toBe(w));
});

describe("resolvePolicy and releaseFor", () => {
  it("valid annotations give the release", () => {
    const d = dep("v2", 2, {
      strategy: "canary",
      weight: "10",
      match: "header:x-a=1",
      sticky: "cookie:uid",
    });
    expect(releaseFor(d, resolvePolicy(d))).toEqual({
      version: "v2",
      strategy: "canary",
      weight: 10,
      cutoffFailures: 5,
      match: [{ header: "x-a", value: "1" }],
      sticky: { cookie: "uid" },
    });
  });
  it("rule weights go to the table as written; an @steps rule takes the release's weight of the moment", () => {
    const d = dep("v2", 2, {
      strategy: "canary",
      steps: "5,20,50",
      match: "header:x-user-type=internal,header:x-region=beijing@20,path:/beta@steps",
      status: formatStatus(status({ weight: 50, step: 3 })),
    });
    expect(releaseFor(d, resolvePolicy(d))?.match).toEqual([
      { header: "x-user-type", value: "internal" },
      { header: "x-region", value: "beijing", weight: 20 },
      { pathPrefix: "/beta", weight: 50 },
    ]);
  });
  it("a promoted release takes all traffic: its weighted rules leave the table", () => {
    const match = "header:x-region=beijing@20,header:x-tenant=acme@0";
    const auto = dep("v2", 2, {
      strategy: "canary",
      steps: "5,100",
      match,
      status: formatStatus(status({ phase: "Promoted", weight: 100 })),
    });
    expect(releaseFor(auto, resolvePolicy(auto))).toEqual({
      version: "v2",
      strategy: "canary",
      weight: 100,
      cutoffFailures: 5,
    });
    const byHand = dep("v2", 2, { strategy: "canary", weight: "100", match });
    expect(releaseFor(byHand, resolvePolicy(byHand))?.match).toHaveLength(2);
  });
  it("invalid annotations fall back to status.applied, with the errors", () => {
    const d = dep("v2", 2, {
      strategy: "canary",
      weight: "140",
      status: formatStatus(
        status({ applied: { "verso.dev/strategy": "canary", "verso.dev/weight": "7" } }),
      ),
    });
    const r = resolvePolicy(d);
    expect(r.errors.map((e) => e.code)).toEqual(["POLICY_WEIGHT"]);
    expect(releaseFor(d, r)?.weight).toBe(7);
  });
  it("invalid annotations fall back to memory, then to no release", () => {
    const d = dep("v2", 2, { strategy: "canary", weight: "140" });
    expect(releaseFor(d, resolvePolicy(d, pol({ strategy: "canary", weight: "3" })))?.weight).toBe(
      3,
    );
    expect(releaseFor(d, resolvePolicy(d))).toBeUndefined();
  });
  it("a failed release loses its match rules", () => {
    const d = dep("v2", 2, {
      strategy: "canary",
      match: "header:x-a=1",
      status: formatStatus(status({ phase: "Failed", weight: 0 })),
    });
    expect(releaseFor(d, resolvePolicy(d))).toEqual({
      version: "v2",
      strategy: "canary",
      weight: 0,
      cutoffFailures: 5,
    });
  });
  it("an aborted release loses its match and sticky rules; another version's failure does not", () => {
    const rules = { strategy: "canary", weight: "5", match: "header:x-a=1", sticky: "cookie:u" };
    const aborted = dep("v2", 2, { ...rules, abort: "true" });
    expect(releaseFor(aborted, resolvePolicy(aborted))).toEqual({
      version: "v2",
      strategy: "canary",
      weight: 0,
      cutoffFailures: 5,
    });
    const d = dep("v2", 2, {
      ...rules,
      status: formatStatus(status({ version: "v1", phase: "Failed", weight: 0 })),
    });
    expect(releaseFor(d, resolvePolicy(d))).toEqual({
      version: "v2",
      strategy: "canary",
      weight: 5,
      cutoffFailures: 5,
      match: [{ header: "x-a", value: "1" }],
      sticky: { cookie: "u" },
    });
  });
});

describe("endpointsOf and buildTable", () => {
  const pod = (
    name: string,
    version: string,
    endpoint?: string,
    grpcEndpoint?: string,
  ): PodView => ({
    namespace: "shop",
    name,
    app: "shop",
    version,
    endpoint,
    admin: undefined,
    grpcEndpoint,
  });
  it("only ready pods, sorted", () => {
    expect(
      endpointsOf([
        pod("a", "v2", "127.0.0.9:15006"),
        pod("b", "v1", "127.0.0.3:15006"),
        pod("c", "v1", "127.0.0.2:15006"),
        pod("d", "v1"),
      ]),
    ).toEqual({
      v1: ["127.0.0.2:15006", "127.0.0.3:15006"],
      v2: ["127.0.0.9:15006"],
    });
  });
  it("bumps the revision only on change, never backwards", () => {
    const input = {
      app: "shop",
      release: undefined,
      endpoints: { v1: ["127.0.0.2:15006"] },
      hopKey: "k",
    };
    const t1 = buildTable(input, undefined, 1000);
    expect(t1.revision).toBe(1000);
    expect(buildTable(input, t1, 5000)).toBe(t1);
    const t2 = buildTable({ ...input, endpoints: {} }, t1, 500);
    expect(t2.revision).toBe(1001);
    const t3 = buildTable(
      { ...input, release: { version: "v2", strategy: "canary", weight: 5 } },
      t2,
      9000,
    );
    expect(t3.revision).toBe(9000);
    expect(t3).toMatchObject({ app: "shop", hopKey: "k", release: { weight: 5 } });
  });

  it("gRPC endpoints: only pods with a gRPC listener, sorted like endpoints", () => {
    const pods = [
      pod("a", "v2", "127.0.0.9:15006", "127.0.0.9:15007"),
      pod("b", "v1", "127.0.0.3:15006", "127.0.0.3:15007"),
      pod("c", "v1", "127.0.0.2:15006", "127.0.0.2:15007"),
      pod("d", "v1", "127.0.0.4:15006"),
      pod("e", "v1"),
    ];
    expect(grpcEndpointsOf(pods)).toEqual({
      v1: ["127.0.0.2:15007", "127.0.0.3:15007"],
      v2: ["127.0.0.9:15007"],
    });
    expect(Object.keys(grpcEndpointsOf(pods))).toEqual(["v1", "v2"]);
    expect(grpcEndpointsOf([pod("d", "v1", "127.0.0.4:15006")])).toEqual({});
  });

  it("emits grpcEndpoints only when a pod has one: other tables stay byte-identical", () => {
    const input = {
      app: "shop",
      release: undefined,
      endpoints: { v1: ["127.0.0.2:15006"] },
      hopKey: "k",
    };
    const without = buildTable(input, undefined, 1000);
    const withEmpty = buildTable({ ...input, grpcEndpoints: {} }, undefined, 1000);
    expect(JSON.stringify(withEmpty)).toBe(JSON.stringify(without));
    expect(JSON.stringify(without)).toBe(
      '{"app":"shop","revision":1000,"endpoints":{"v1":["127.0.0.2:15006"]},"hopKey":"k"}',
    );
    // An empty map does not count as a change either.
    expect(buildTable({ ...input, grpcEndpoints: {} }, without, 2000)).toBe(without);
  });

  it("a change in gRPC endpoints alone is a new revision", () => {
    const input = {
      app: "shop",
      release: undefined,
      endpoints: { v1: ["127.0.0.2:15006"] },
      hopKey: "k",
    };
    const t1 = buildTable(input, undefined, 1000);
    const t2 = buildTable({ ...input, grpcEndpoints: { v1: ["127.0.0.2:15007"] } }, t1, 1000);
    expect(t2).not.toBe(t1);
    expect(t2.revision).toBe(1001);
    expect(t2.grpcEndpoints).toEqual({ v1: ["127.0.0.2:15007"] });
    expect(buildTable({ ...input, grpcEndpoints: { v1: ["127.0.0.2:15007"] } }, t2, 5000)).toBe(t2);
    const t3 = buildTable({ ...input, grpcEndpoints: { v1: ["127.0.0.3:15007"] } }, t2, 1000);
    expect(t3.revision).toBe(1002);
    // The last gRPC pod gone: the field leaves the table, and that is a change too.
    const t4 = buildTable(input, t3, 1000);
    expect(t4.revision).toBe(1003);
    expect(t4).not.toHaveProperty("grpcEndpoints");
  });
});

describe("weightFor: capacity guard and blue-green automation", () => {
  const st = (o: Partial<ReleaseStatus>): ReleaseStatus => status(o);
  it("a hand-set weight is capped by max-weight and by the pod share, without the leader", () => {
    const p = pol({ strategy: "canary", weight: "50", "max-weight": "30" });
    expect(weightFor(p, undefined, "v2")).toBe(30);
    const share = pol({ strategy: "canary", weight: "50", "pod-share-factor": "2" });
    expect(weightFor(share, undefined, "v2", { release: 1, total: 10 })).toBe(20);
  });
  it("auto blue-green follows the machine's switch (status weight 0 or 100)", () => {
    const p = pol({ strategy: "blue-green", "auto-promote": "true" });
    expect(weightFor(p, undefined, "v2")).toBe(0);
    expect(weightFor(p, st({ weight: 100, reason: "Switched" }), "v2")).toBe(100);
    expect(weightFor(p, st({ phase: "Failed", weight: 0 }), "v2")).toBe(0);
  });
  it("a hand switch behind a smoke test waits for Promoted", () => {
    const p = pol({
      strategy: "blue-green",
      promote: "true",
      "webhook-smoke-test": "http://127.0.0.1:1/smoke",
    });
    expect(weightFor(p, st({ weight: 0, reason: "AwaitingGate" }), "v2")).toBe(0);
    expect(weightFor(p, st({ phase: "Promoted", weight: 100 }), "v2")).toBe(100);
  });
});

describe("resolvePolicy with a gates ConfigMap (verso.dev/gates-configmap)", () => {
  const url = "https://gates.example/pre";
  const named = (extra: Record<string, string> = {}) =>
    dep("v2", 2, { strategy: "canary", steps: "20,50", "gates-configmap": "gates", ...extra });
  const applied = {
    "verso.dev/strategy": "canary",
    "verso.dev/steps": "20,50",
    "verso.dev/gates-configmap": "gates",
    "verso.dev/webhook-pre-rollout": url,
  };
  it("its gates are in the policy, and in the annotations recorded as applied", () => {
    const r = resolvePolicy(named(), undefined, () => ({ "pre-rollout": url }));
    expect(r.errors).toEqual([]);
    expect(r.policy?.webhooks).toEqual({ "pre-rollout": url });
    expect(r.annotations).toEqual(applied);
  });
  it("a missing ConfigMap is a problem; status.applied (its gates included) stays in force", () => {
    const d = named({ status: formatStatus(status({ applied })) });
    const r = resolvePolicy(d, undefined, () => undefined);
    expect(r.errors.map((e) => e.code)).toEqual(["POLICY_CONFIGMAP"]);
    expect(r.errors[0]?.message).toContain('ConfigMap "gates" not found');
    expect(r.policy?.webhooks).toEqual({ "pre-rollout": url });
  });
  it("an unknown key is a problem too, with the annotations' own problems", () => {
    const r = resolvePolicy(named({ weight: "140" }), undefined, () => ({ "pre-rolout": url }));
    expect(r.errors.map((e) => e.code).sort()).toEqual(["POLICY_CONFIGMAP", "POLICY_WEIGHT"]);
    expect(r.policy).toBeUndefined();
  });
  it("ConfigMaps not listed yet: pending, the last good policy, nothing reported", () => {
    const d = named({ status: formatStatus(status({ applied })) });
    const r = resolvePolicy(d, undefined, "pending");
    expect(r).toMatchObject({ pending: true, errors: [] });
    expect(r.policy?.webhooks).toEqual({ "pre-rollout": url });
    // A release that names no ConfigMap is not held up by the listing.
    const plain = dep("v2", 2, { strategy: "canary", weight: "5" });
    expect(resolvePolicy(plain, undefined, "pending")).toMatchObject({ errors: [] });
    expect(resolvePolicy(plain, undefined, "pending").pending).toBeUndefined();
  });
  it("without a source (the CLI), the annotations alone are the policy", () => {
    const r = resolvePolicy(named());
    expect(r.errors).toEqual([]);
    expect(r.policy?.webhooks).toEqual({});
  });
});
