import { describe, expect, it } from "vitest";
import { parseRoutingTable, type RoutingTable } from "../../shared/table.ts";
import { compileTable, type CompiledTable } from "./compile.ts";
import {
  cookieValue,
  decide,
  viewOf,
  withoutHopKey,
  type Decision,
  type RequestView,
} from "./decide.ts";
import { BUCKETS, bucketOf } from "./hash.ts";

function table(
  release: unknown,
  endpoints: Record<string, string[]> = {
    v1: ["127.0.0.2:15006"],
    v2: ["127.0.0.3:15006"],
  },
): CompiledTable {
  const parsed = parseRoutingTable({ app: "shop", revision: 3, release, endpoints });
  if (!parsed.ok) throw new Error(parsed.error);
  return compileTable(parsed.value);
}

const view = (headers: Record<string, string> = {}, hopValid = false, url = "/"): RequestView =>
  viewOf(url.split("?")[0]!, new Headers(headers), hopValid);
const LOW = () => 0; // bucket 0: below any weight > 0
const HIGH = () => 0.9999; // bucket 9999: release only at weight 100

const canary = (weight: number, extra: object = {}) =>
  table({ version: "v2", strategy: "canary", weight, ...extra });
const blueGreen = (weight: number, extra: object = {}) =>
  table({ version: "v2", strategy: "blue-green", weight, ...extra });
const internal = { match: [{ header: "X-User-Type", value: "internal" }] };

const local = (reason: string, fallback?: string): Decision =>
  fallback === undefined
    ? ({ serve: "local", reason } as Decision)
    : ({ serve: "local", reason, fallback } as Decision);
const fwd = (to: string, reason: string) => expect.objectContaining({ forward: to, reason });

// Mirrors the truth table above decide(), row by row.
describe("decide: truth table", () => {
  const rows: {
    name: string;
    t: CompiledTable | undefined;
    v: RequestView;
    self: string;
    roll: () => number;
    want: unknown;
  }[] = [
    {
      name: "valid hop token, release v2, self v1: local",
      t: canary(100),
      v: view({}, true),
      self: "v1",
      roll: LOW,
      want: local("hop-token"),
    },
    {
      name: "valid hop token, match would send elsewhere: local",
      t: canary(0, internal),
      v: view({ "x-user-type": "internal" }, true),
      self: "v1",
      roll: LOW,
      want: local("hop-token"),
    },
    {
      name: "no table yet: local",
      t: undefined,
      v: view(),
      self: "v1",
      roll: LOW,
      want: local("no-release"),
    },
    {
      name: "table without release: local",
      t: table(undefined),
      v: view(),
      self: "v2",
      roll: LOW,
      want: local("no-release"),
    },
    {
      name: "match, self is release: local",
      t: canary(0, internal),
      v: view({ "x-user-type": "internal" }),
      self: "v2",
      roll: HIGH,
      want: local("match"),
    },
    {
      name: "match, self stable: forward release",
      t: canary(0, internal),
      v: view({ "x-user-type": "internal" }),
      self: "v1",
      roll: HIGH,
      want: fwd("v2", "match"),
    },
    {
      name: "blue-green 100, self release: local",
      t: blueGreen(100),
      v: view(),
      self: "v2",
      roll: HIGH,
      want: local("blue-green-promoted"),
    },
    {
      name: "blue-green 100, self stable: forward release",
      t: blueGreen(100),
      v: view(),
      self: "v1",
      roll: HIGH,
      want: fwd("v2", "blue-green-promoted"),
    },
    {
      name: "blue-green 0, self stable: local",
      t: blueGreen(0),
      v: view(),
      self: "v1",
      roll: LOW,
      want: local("blue-green-preview"),
    },
    {
      name: "blue-green 0, self release: forward stable",
      t: blueGreen(0),
      v: view(),
      self: "v2",
      roll: LOW,
      want: fwd("v1", "blue-green-preview"),
    },
    {
      name: "canary, bucket below weight, self release: local",
      t: canary(10),
      v: view(),
      self: "v2",
      roll: LOW,
      want: local("random"),
    },
    {
      name: "canary, bucket below weight, self stable: forward release",
      t: canary(10),
      v: view(),
      self: "v1",
      roll: LOW,
      want: fwd("v2", "random"),
    },
    {
      name: "canary, bucket above weight, self stable: local",
      t: canary(10),
      v: view(),
      self: "v1",
      roll: HIGH,
      want: local("random"),
    },
    {
      name: "canary, bucket above weight, self release: forward stable",
      t: canary(10),
      v: view(),
      self: "v2",
      roll: HIGH,
      want: fwd("v1", "random"),
    },
    {
      name: "canary 100: even bucket 9999 goes to release",
      t: canary(100),
      v: view(),
      self: "v1",
      roll: HIGH,
      want: fwd("v2", "random"),
    },
    {
      name: "canary 0: bucket 0 stays stable",
      t: canary(0),
      v: view(),
      self: "v1",
      roll: LOW,
      want: local("random"),
    },
    {
      name: "release has no peers: local, fallback counted",
      t: table({ version: "v2", strategy: "canary", weight: 100 }, { v1: ["127.0.0.2:15006"] }),
      v: view(),
      self: "v1",
      roll: LOW,
      want: local("random", "v2"),
    },
    {
      name: "stable has no peers, self release: local fallback",
      t: table({ version: "v2", strategy: "canary", weight: 0 }, { v2: ["127.0.0.3:15006"] }),
      v: view(),
      self: "v2",
      roll: HIGH,
      want: local("random", "stable"),
    },
    {
      name: "third version v0 is stable too: local",
      t: canary(10),
      v: view(),
      self: "v0",
      roll: HIGH,
      want: local("random"),
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const d = decide(r.v, r.t, r.self, r.roll);
      expect(d).toEqual(r.want);
    });
  }

  it("forward carries the peers of the target version", () => {
    const d = decide(view(), canary(100), "v1", LOW);
    expect("forward" in d && d.peers.map((p) => p.addr)).toEqual(["127.0.0.3:15006"]);
  });

  it("stable side spanning several versions is labelled 'stable' and pools their peers", () => {
    const t = table(
      { version: "v3", strategy: "canary", weight: 0 },
      {
        v1: ["127.0.0.2:15006"],
        v2: ["127.0.0.3:15006"],
        v3: ["127.0.0.4:15006"],
      },
    );
    const d = decide(view(), t, "v3", HIGH);
    expect(d).toMatchObject({ forward: "stable" });
    expect("forward" in d && d.peers.map((p) => p.version).sort()).toEqual(["v1", "v2"]);
  });
});

describe("decide: match precedence", () => {
  const rules = {
    match: [
      { header: "x-user-type", value: "internal" },
      { cookie: "beta", value: "1" },
      { header: "x-env", regex: "^qa-" },
      { pathPrefix: "/api/beta" },
    ],
  };
  const cases: { name: string; v: RequestView; release: boolean }[] = [
    { name: "header exact", v: view({ "x-user-type": "internal" }), release: true },
    {
      name: "header exact is case-sensitive in the value",
      v: view({ "x-user-type": "Internal" }),
      release: false,
    },
    { name: "cookie among others", v: view({ cookie: "a=2; beta=1; c=3" }), release: true },
    { name: "cookie other value", v: view({ cookie: "beta=0" }), release: false },
    { name: "cookie name is not a prefix match", v: view({ cookie: "betax=1" }), release: false },
    { name: "header regex", v: view({ "x-env": "qa-7" }), release: true },
    { name: "header regex anchored", v: view({ "x-env": "prod-qa-7" }), release: false },
    { name: "path prefix", v: view({}, false, "/api/beta/items?x=1"), release: true },
    {
      name: "path prefix ignores the query",
      v: view({}, false, "/api?p=/api/beta"),
      release: false,
    },
    { name: "nothing matches", v: view({ "x-user-type": "external" }), release: false },
  ];
  for (const c of cases) {
    it(`${c.name} -> ${c.release ? "release" : "stable"}`, () => {
      // weight 0 and blue-green preview: only a rule can reach the release.
      for (const t of [canary(0, rules), blueGreen(0, rules)]) {
        const d = decide(c.v, t, "v1", HIGH);
        expect("forward" in d).toBe(c.release);
      }
    });
  }

  it("a match beats the weight split and blue-green promote order", () => {
    const d = decide(view({ "x-user-type": "internal" }), canary(0, rules), "v1", HIGH);
    expect(d).toMatchObject({ forward: "v2", reason: "match" });
  });

  it("a match beats a sticky key that hashes to stable", () => {
    const t = canary(0, { ...rules, sticky: { header: "x-user-id" } });
    const d = decide(view({ "x-user-id": "u1", cookie: "beta=1" }), t, "v1", HIGH);
    expect(d).toMatchObject({ forward: "v2", reason: "match" });
  });

  it("sticky key present -> reason sticky, absent -> random", () => {
    const t = canary(50, { sticky: { cookie: "uid" } });
    expect(decide(view({ cookie: "uid=abc" }), t, "v1", HIGH).reason).toBe("sticky");
    expect(decide(view({}), t, "v1", HIGH).reason).toBe("random");
  });
});

// The product owner's example: internal users all to v2, Beijing 20 %, everyone else 5 %.
const regions = (beijing: number, rest = 5, extra: object = {}) =>
  canary(rest, {
    match: [
      { header: "x-user-type", value: "internal" },
      { header: "x-region", value: "beijing", weight: beijing },
    ],
    ...extra,
  });
const at = (bucket: number) => () => bucket / BUCKETS; // a roll landing in `bucket`
const onRelease = (d: Decision): boolean => "forward" in d;

describe("decide: match rules with their own weights", () => {
  const rows: {
    name: string;
    t: CompiledTable;
    h: Record<string, string>;
    bucket: number;
    release: boolean;
  }[] = [
    {
      name: "first rule (100) wins over the second",
      t: regions(20),
      h: { "x-user-type": "internal", "x-region": "beijing" },
      bucket: 9999,
      release: true,
    },
    {
      name: "rule weight 20: bucket 1999 to the release",
      t: regions(20),
      h: { "x-region": "beijing" },
      bucket: 1999,
      release: true,
    },
    {
      name: "rule weight 20: bucket 2000 stays stable",
      t: regions(20),
      h: { "x-region": "beijing" },
      bucket: 2000,
      release: false,
    },
    {
      name: "no rule matches: release weight 5, bucket 499 to the release",
      t: regions(20),
      h: { "x-region": "shanghai" },
      bucket: 499,
      release: true,
    },
    {
      name: "no rule matches: release weight 5, bucket 500 stays stable",
      t: regions(20),
      h: {},
      bucket: 500,
      release: false,
    },
    {
      name: "rule weight 0 pins to stable even at bucket 0 (release weight 100)",
      t: regions(0, 100),
      h: { "x-region": "beijing" },
      bucket: 0,
      release: false,
    },
    {
      name: "rule weight 100 sends bucket 9999",
      t: regions(100, 0),
      h: { "x-region": "beijing" },
      bucket: 9999,
      release: true,
    },
    {
      name: "decimal weight 12.5: bucket 1249 to the release",
      t: regions(12.5),
      h: { "x-region": "beijing" },
      bucket: 1249,
      release: true,
    },
    {
      name: "decimal weight 12.5: bucket 1250 stays stable",
      t: regions(12.5),
      h: { "x-region": "beijing" },
      bucket: 1250,
      release: false,
    },
    {
      name: "a weighted rule applies in a blue-green preview too",
      t: blueGreen(0, { match: [{ header: "x-region", value: "beijing", weight: 20 }] }),
      h: { "x-region": "beijing" },
      bucket: 100,
      release: true,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const d = decide(view(r.h), r.t, "v1", at(r.bucket));
      expect(onRelease(d)).toBe(r.release);
      const matched = r.h["x-user-type"] === "internal" || r.h["x-region"] === "beijing";
      expect(d.reason).toBe(matched ? "match" : "random");
    });
  }

  it("a rule weight of 0 or 100 never rolls", () => {
    const noRoll = () => {
      throw new Error("must not roll");
    };
    expect(onRelease(decide(view({ "x-region": "beijing" }), regions(0), "v1", noRoll))).toBe(
      false,
    );
    expect(onRelease(decide(view({ "x-region": "beijing" }), regions(100), "v1", noRoll))).toBe(
      true,
    );
  });

  it("sticky within a rule: a key keeps its side, in the same bucket space as the release weight", () => {
    const sticky = { sticky: { header: "x-user-id" } };
    const noRoll = () => {
      throw new Error("sticky must not roll");
    };
    for (let i = 0; i < 500; i++) {
      const h = { "x-region": "beijing", "x-user-id": `user-${i}` };
      const first = onRelease(decide(view(h), regions(20, 5, sticky), "v1", noRoll));
      expect(onRelease(decide(view(h), regions(20, 5, sticky), "v1", noRoll))).toBe(first);
      expect(first).toBe(bucketOf(`user-${i}`) < 2000);
    }
  });

  it("monotonic per rule: a Beijing user on the release stays there as the rule grows 1 -> 20 -> 50 -> 100", () => {
    const sticky = { sticky: { header: "x-user-id" } };
    const onBy = new Map<string, boolean>();
    for (const w of [1, 20, 50, 100]) {
      for (let i = 0; i < 2000; i++) {
        const key = `u${i}`;
        const on = onRelease(
          decide(
            view({ "x-region": "beijing", "x-user-id": key }),
            regions(w, 5, sticky),
            "v1",
            Math.random,
          ),
        );
        if (onBy.get(key)) expect(on).toBe(true);
        onBy.set(key, on);
      }
    }
    expect([...onBy.values()].every(Boolean)).toBe(true);
  });
});

describe("cookieValue", () => {
  it.each([
    ["a=1; b=2", "b", "2"],
    ["a=1;b=2", "b", "2"],
    [' b="quoted" ', "b", "quoted"],
    ["a=1", "b", undefined],
    ["", "b", undefined],
    ["b", "b", undefined],
    ["x=a=b; b=c=d", "b", "c=d"],
  ])("%j %s -> %s", (header, name, want) => {
    expect(cookieValue(header, name)).toBe(want);
  });
});

export type { RoutingTable };

describe("viewOf and withoutHopKey: what every listener (HTTP, gRPC) routes through", () => {
  it("reads Fetch Headers and node:http2's plain headers alike, and hides the hop header", () => {
    const fetchView = viewOf("/p", new Headers({ "x-a": "1", "x-verso-hop": "t" }), false);
    const h2View = viewOf("/p", { "x-a": ["1", "2"], "x-verso-hop": "t" }, false);
    expect(fetchView.header("x-a")).toBe("1");
    expect(h2View.header("x-a")).toBe("1, 2");
    expect(fetchView.header("x-verso-hop")).toBeUndefined();
    expect(h2View.header("x-verso-hop")).toBeUndefined();
    expect(h2View.header("x-missing")).toBeUndefined();
  });
  it("turns a forward into serving here with the wanted version as a fallback; leaves the rest", () => {
    const peers = [{ addr: "a:1", host: "a", port: 1, origin: "http://a:1", version: "v2" }];
    expect(withoutHopKey({ forward: "v2", peers, reason: "random" })).toEqual({
      serve: "local",
      reason: "random",
      fallback: "v2",
    });
    expect(withoutHopKey({ serve: "local", reason: "match" })).toEqual({
      serve: "local",
      reason: "match",
    });
  });
});
