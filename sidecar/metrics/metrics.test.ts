import { describe, expect, it } from "vitest";
import { collectDefaultMetrics, Histogram, Registry } from "prom-client";
import { DURATION_BUCKETS } from "../../shared/metric-names.ts";
import { codeClass, createMetrics, methodClass } from "./metrics.ts";
import { collectProcessMetrics } from "./prom.ts";

const series = (text: string, prefix: string) =>
  text
    .split("\n")
    .filter((l) => l.startsWith(prefix))
    .sort();

describe("proxy metrics", () => {
  it("the process metrics are prom-client's default set: names, types and help", async () => {
    const ours = new Registry();
    collectProcessMetrics(ours);
    const theirs = new Registry();
    collectDefaultMetrics({ register: theirs });
    for (const prefix of ["# TYPE ", "# HELP "]) {
      expect(series(await ours.metrics(), prefix)).toEqual(series(await theirs.metrics(), prefix));
    }
    expect(series(await ours.metrics(), "# TYPE ").length).toBeGreaterThan(20);
    // The CPU counters are the ones written here: they must move.
    const spin = Date.now() + 30;
    while (Date.now() < spin);
    expect(await ours.metrics()).toMatch(
      /^process_cpu_seconds_total [1-9]|^process_cpu_seconds_total 0\.0*[1-9]/m,
    );
  });

  it("the batched histogram renders exactly like prom-client's own Histogram", async () => {
    const m = createMetrics("shop", "v1");
    const ref = new Registry();
    const h = new Histogram({
      name: "verso_request_duration_seconds",
      help: "x",
      labelNames: ["app", "version"],
      buckets: DURATION_BUCKETS,
      registers: [ref],
    });
    for (const v of [0.0004, 0.001, 0.003, 0.07, 0.9, 2, 12]) {
      m.served("GET", "2xx", "local", v);
      h.labels("shop", "v1").observe(v);
    }
    const ours = series(await m.registry.metrics(), "verso_request_duration_seconds_");
    const theirs = series(await ref.metrics(), "verso_request_duration_seconds_");
    expect(ours).toEqual(theirs);
    expect(ours.length).toBe(DURATION_BUCKETS.length + 3);
  });

  it("request counts accumulate between scrapes and per label set", async () => {
    const m = createMetrics("shop", "v1");
    for (let i = 0; i < 3; i++) m.served("GET", "2xx", "local", 0.01);
    m.served("other", "5xx", "forwarded", 0.01);
    const first = await m.registry.metrics();
    expect(first).toContain(
      'verso_requests_total{app="shop",version="v1",method="GET",code_class="2xx",source="local"} 3',
    );
    expect(first).toContain(
      'verso_requests_total{app="shop",version="v1",method="other",code_class="5xx",source="forwarded"} 1',
    );
    m.served("GET", "2xx", "local", 0.01);
    const second = await m.registry.metrics();
    expect(second).toContain(
      'verso_requests_total{app="shop",version="v1",method="GET",code_class="2xx",source="local"} 4',
    );
    expect(second).toContain('verso_request_duration_seconds_count{app="shop",version="v1"} 5');
  });

  it("every method x code class x source counts into its own series", async () => {
    const m = createMetrics("shop", "v1");
    const methods = ["GET", "POST", "PUT", "DELETE", "other"] as const;
    const codes = ["1xx", "2xx", "3xx", "4xx", "5xx"] as const;
    const sources = ["local", "forwarded"] as const;
    const want: string[] = [];
    let n = 0;
    for (const method of methods) {
      for (const code of codes) {
        for (const source of sources) {
          n++;
          for (let i = 0; i < n; i++) m.served(method, code, source, 0.01);
          want.push(
            `verso_requests_total{app="shop",version="v1",method="${method}",code_class="${code}",source="${source}"} ${n}`,
          );
        }
      }
    }
    const text = await m.registry.metrics();
    for (const line of want) expect(text).toContain(line);
  });

  it.each([
    ["GET", "GET"],
    ["PATCH", "other"],
    [undefined, "other"],
  ])("method %s -> %s", (m, want) => expect(methodClass(m)).toBe(want));

  it.each([
    [101, "1xx"],
    [204, "2xx"],
    [302, "3xx"],
    [404, "4xx"],
    [503, "5xx"],
    [999, "5xx"],
  ])("status %d -> %s", (s, want) => expect(codeClass(s)).toBe(want));
});
