import { describe, expect, it } from "vitest";
import { deltaCounts, parseCounts, quantileMs, toStats } from "./counts.ts";
import { queriesFor, scalarOf } from "./promql.ts";

const TEXT = `# HELP verso_requests_total x
# TYPE verso_requests_total counter
verso_requests_total{app="shop",version="v1",method="GET",code_class="2xx",source="local"} 90
verso_requests_total{app="shop",version="v1",method="GET",code_class="5xx",source="local"} 10
verso_requests_total{app="other",version="v1",method="GET",code_class="5xx",source="local"} 99
verso_request_duration_seconds_bucket{le="0.1",app="shop",version="v1"} 50
verso_request_duration_seconds_bucket{le="0.2",app="shop",version="v1"} 100
verso_request_duration_seconds_bucket{le="+Inf",app="shop",version="v1"} 100
verso_request_duration_seconds_sum{app="shop",version="v1"} 12
`;

describe("counts", () => {
  it("parses the app's series by version, ignoring other apps", () => {
    const c = parseCounts(TEXT, "shop").get("v1");
    expect(c?.requests).toBe(100);
    expect(c?.errors).toBe(10);
    expect([...(c?.buckets ?? [])]).toEqual([
      [0.1, 50],
      [0.2, 100],
      [Infinity, 100],
    ]);
  });
  it("takes a counter below its baseline as a restart", () => {
    const before = parseCounts(TEXT, "shop");
    const after = parseCounts(TEXT.replace(" 90\n", " 3\n").replace(" 10\n", " 1\n"), "shop");
    expect(deltaCounts(after, before).get("v1")?.requests).toBe(4);
  });
  it("interpolates the quantile inside its bucket like histogram_quantile", () => {
    const b = new Map([
      [0.1, 50],
      [0.2, 100],
      [Infinity, 100],
    ]);
    expect(quantileMs(0.5, b)).toBeCloseTo(100);
    expect(quantileMs(0.99, b)).toBeCloseTo(198);
    expect(
      quantileMs(
        0.99,
        new Map([
          [0.1, 0],
          [Infinity, 0],
        ]),
      ),
    ).toBeUndefined();
    expect(
      quantileMs(
        0.99,
        new Map([
          [0.1, 0],
          [Infinity, 5],
        ]),
      ),
    ).toBe(100);
  });
  it("splits release from every other version", () => {
    const s = toStats(parseCounts(TEXT, "shop"), "v2");
    expect(s.release).toEqual({ requests: 0, errors: 0 });
    expect(s.stable.requests).toBe(100);
  });
});

describe("prometheus queries", () => {
  const t = {
    namespace: "shop",
    app: "shop",
    releaseVersion: "v2",
    admins: [],
    intervalMs: 60_000,
  };
  it("selects the release and stable over the interval", () => {
    expect(queriesFor(t, "release").errors).toBe(
      'sum(increase(verso_requests_total{namespace="shop",app="shop",version="v2",code_class="5xx"}[60s]))',
    );
    expect(queriesFor(t, "stable").p99).toBe(
      'histogram_quantile(0.99, sum by (le) (rate(verso_request_duration_seconds_bucket{namespace="shop",app="shop",version!="v2"}[60s])))',
    );
  });
  it("reads an instant vector, empty or NaN as no value, and throws on an error answer", () => {
    expect(scalarOf({ status: "success", data: { result: [{ value: [1, "12.5"] }] } })).toBe(12.5);
    expect(scalarOf({ status: "success", data: { result: [] } })).toBeUndefined();
    expect(
      scalarOf({ status: "success", data: { result: [{ value: [1, "NaN"] }] } }),
    ).toBeUndefined();
    expect(() => scalarOf({ status: "error", error: "bad query" })).toThrow(/prometheus/);
  });
});
