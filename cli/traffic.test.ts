import { describe, expect, it } from "vitest";
import { toScrape, trafficBetween } from "./traffic.ts";

/** Prometheus text as the proxy exports it, for one pod. */
function metrics(rows: { version: string; ok: number; errors: number; fast: number }[]): string {
  const lines: string[] = [];
  for (const r of rows) {
    const l = `app="shop",version="${r.version}"`;
    lines.push(`verso_requests_total{${l},method="GET",code_class="2xx",source="local"} ${r.ok}`);
    lines.push(
      `verso_requests_total{${l},method="GET",code_class="5xx",source="local"} ${r.errors}`,
    );
    const all = r.ok + r.errors;
    lines.push(`verso_request_duration_seconds_bucket{${l},le="0.01"} ${r.fast}`);
    lines.push(`verso_request_duration_seconds_bucket{${l},le="0.1"} ${all}`);
    lines.push(`verso_request_duration_seconds_bucket{${l},le="+Inf"} ${all}`);
  }
  lines.push(`verso_requests_total{app="other",version="v9",code_class="2xx"} 1000`);
  return lines.join("\n");
}

describe("trafficBetween", () => {
  const before = toScrape(
    0,
    new Map([
      ["a", metrics([{ version: "v1", ok: 100, errors: 0, fast: 100 }])],
      ["b", metrics([{ version: "v2", ok: 10, errors: 0, fast: 10 }])],
      ["gone", metrics([{ version: "v1", ok: 500, errors: 0, fast: 500 }])],
    ]),
    "shop",
  );

  it("rates, 5xx share, p99 and the release's share over the window", () => {
    const after = toScrape(
      2_000,
      new Map([
        ["a", metrics([{ version: "v1", ok: 180, errors: 0, fast: 180 }])],
        ["b", metrics([{ version: "v2", ok: 28, errors: 2, fast: 10 }])],
      ]),
      "shop",
    );
    expect(trafficBetween(before, after, "v2")).toEqual({
      windowMs: 2_000,
      pods: 2,
      releaseShare: 20,
      versions: [
        { version: "v1", requests: 80, errors: 0, rps: 40, errorRate: 0, p99Ms: 9.9 },
        { version: "v2", requests: 20, errors: 2, rps: 10, errorRate: 10, p99Ms: 99.1 },
      ],
    });
  });

  it("a restarted proxy (counter went down) and a new pod count from zero", () => {
    const after = toScrape(
      1_000,
      new Map([
        ["a", metrics([{ version: "v1", ok: 5, errors: 0, fast: 5 }])],
        ["new", metrics([{ version: "v2", ok: 5, errors: 0, fast: 5 }])],
      ]),
      "shop",
    );
    const t = trafficBetween(before, after, "v2");
    expect(t.versions.map((v) => [v.version, v.requests])).toEqual([
      ["v1", 5],
      ["v2", 5],
    ]);
    expect(t.pods).toBe(1);
    expect(t.releaseShare).toBe(50);
  });

  it("no requests: no share, no error rate, no p99", () => {
    const t = trafficBetween(before, { ...before, at: 1_000 }, "v2");
    expect(t.releaseShare).toBeUndefined();
    expect(t.versions[0]).toEqual({ version: "v1", requests: 0, errors: 0, rps: 0 });
  });
});
