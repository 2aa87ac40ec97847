import { describe, expect, it } from "vitest";
import { parseRoutingTableJson } from "../../shared/table.ts";
import { compileTable } from "../routing/compile.ts";

const ok = (obj: object) => JSON.stringify({ app: "shop", revision: 1, endpoints: {}, ...obj });

// The proxy's view of table parsing: what a malformed file or stream event is rejected for.
describe("routing table parsing: bad input is rejected with a reason", () => {
  const bad: [string, string, RegExp][] = [
    ["not JSON", "{app:", /not JSON/],
    ["an array", "[]", /JSON object/],
    ["no app", JSON.stringify({ revision: 1 }), /^app/],
    ["negative revision", ok({ revision: -1 }), /revision/],
    ["fractional revision", ok({ revision: 1.5 }), /revision/],
    ["endpoints not an object", ok({ endpoints: ["a:1"] }), /endpoints/],
    ["endpoint not host:port", ok({ endpoints: { v1: ["localhost"] } }), /host:port/],
    ["endpoint list not strings", ok({ endpoints: { v1: [1] } }), /endpoints\.v1/],
    [
      "release without version",
      ok({ release: { strategy: "canary", weight: 1 } }),
      /release\.version/,
    ],
    [
      "unknown strategy",
      ok({ release: { version: "v2", strategy: "linear", weight: 1 } }),
      /strategy/,
    ],
    [
      "weight above 100",
      ok({ release: { version: "v2", strategy: "canary", weight: 101 } }),
      /weight/,
    ],
    [
      "weight as string",
      ok({ release: { version: "v2", strategy: "canary", weight: "5" } }),
      /weight/,
    ],
    [
      "bad regex",
      ok({
        release: {
          version: "v2",
          strategy: "canary",
          weight: 1,
          match: [{ header: "x", regex: "(" }],
        },
      }),
      /regex/,
    ],
    [
      "match rule without value",
      ok({ release: { version: "v2", strategy: "canary", weight: 1, match: [{ header: "x" }] } }),
      /value or regex/,
    ],
    [
      "pathPrefix without slash",
      ok({
        release: { version: "v2", strategy: "canary", weight: 1, match: [{ pathPrefix: "api" }] },
      }),
      /pathPrefix/,
    ],
    [
      "sticky without key",
      ok({ release: { version: "v2", strategy: "canary", weight: 1, sticky: {} } }),
      /sticky/,
    ],
    ["hopKey not a string", ok({ hopKey: 5 }), /hopKey/],
    [
      "match rule weight above 100",
      ok({
        release: {
          version: "v2",
          strategy: "canary",
          weight: 1,
          match: [{ header: "x-region", value: "beijing", weight: 120 }],
        },
      }),
      /match\[0\]\.weight/,
    ],
  ];
  for (const [name, text, why] of bad) {
    it(name, () => {
      const r = parseRoutingTableJson(text);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toMatch(why);
    });
  }

  it("the documented example table (docs/routing.md) parses and compiles", () => {
    const r = parseRoutingTableJson(
      JSON.stringify({
        app: "shop",
        revision: 12,
        release: {
          version: "v2",
          strategy: "canary",
          weight: 10,
          match: [
            { header: "x-user-type", value: "internal" },
            { cookie: "beta", value: "1" },
            { header: "x-env", regex: "^qa-" },
            { pathPrefix: "/api/beta" },
          ],
          sticky: { header: "X-User-Id" },
        },
        endpoints: { v1: ["127.0.0.2:15006"], v2: ["127.0.0.3:15006"] },
      }),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const t = compileTable(r.value);
    expect(t.release?.threshold).toBe(1000);
    expect(t.release?.sticky).toEqual({ kind: "header", name: "x-user-id" });
    expect(t.release?.needsCookies).toBe(true);
    expect(t.stableLabel).toBe("v1");
    expect(t.peers.get("v2")?.[0]).toMatchObject({ host: "127.0.0.3", port: 15006, version: "v2" });
  });

  it("a rule's weight (the contract's example) compiles to its threshold; absent means 100", () => {
    const r = parseRoutingTableJson(
      JSON.stringify({
        app: "shop",
        release: {
          version: "v2",
          strategy: "canary",
          weight: 5,
          match: [
            { header: "x-user-type", value: "internal" },
            { header: "x-region", value: "beijing", weight: 20 },
            { cookie: "vip", value: "1", weight: 0 },
          ],
        },
        endpoints: {},
      }),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.release?.match?.[1]).toEqual({
      header: "x-region",
      value: "beijing",
      weight: 20,
    });
    const rules = compileTable(r.value).release?.rules.map((x) => x.threshold);
    expect(rules).toEqual([10_000, 2_000, 0]);
  });
});
