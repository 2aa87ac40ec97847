import { describe, expect, it } from "vitest";
import {
  parsePolicy,
  withGatesConfigMap,
  type PolicyErrorCode,
  type ReleasePolicy,
} from "./policy.ts";

const A = (o: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [`verso.dev/${k}`, v]));

describe("parsePolicy: valid", () => {
  const cases: { name: string; in: Record<string, string>; expect: Partial<ReleasePolicy> }[] = [
    {
      name: "canary defaults",
      in: { strategy: "canary" },
      expect: {
        strategy: "canary",
        weight: 0,
        promote: false,
        intervalMs: 60_000,
        progressDeadlineMs: 600_000,
        paused: false,
        abort: false,
        gates: { minRequests: 0, warnMarginPct: 10 },
      },
    },
    { name: "decimal weight", in: { strategy: "canary", weight: "2.5" }, expect: { weight: 2.5 } },
    {
      name: "match rules with their own weights (the region example)",
      in: {
        strategy: "canary",
        weight: "5",
        match: "header:x-user-type=internal, header:X-Region=beijing@20, cookie:beta=1@2.5%",
      },
      expect: {
        weight: 5,
        match: [
          { header: "x-user-type", value: "internal" },
          { header: "x-region", value: "beijing", weight: 20 },
          { cookie: "beta", value: "1", weight: 2.5 },
        ],
      },
    },
    {
      name: "rule weights 0 and 100, @steps, a path and a regex with a weight",
      in: {
        strategy: "canary",
        match: "header:x-vip=1@0,header:x-a=b@100,path:/api/beta @steps,header:x-env~^qa-@50",
      },
      expect: {
        match: [
          { header: "x-vip", value: "1", weight: 0 },
          { header: "x-a", value: "b" },
          { pathPrefix: "/api/beta", followsSteps: true },
          { header: "x-env", regex: "^qa-", weight: 50 },
        ],
      },
    },
    {
      name: "an @ that is no weight stays in the value; an escaped one stays in the regex",
      in: { strategy: "canary", match: "header:x-email=ops@example.com,header:x-tag~^v\\@2$" },
      expect: {
        match: [
          { header: "x-email", value: "ops@example.com" },
          { header: "x-tag", regex: "^v\\@2$" },
        ],
      },
    },
    { name: "weight 100", in: { strategy: "canary", weight: "100" }, expect: { weight: 100 } },
    {
      name: "blue-green promote",
      in: { strategy: "blue-green", promote: "True" },
      expect: { strategy: "blue-green", promote: true },
    },
    {
      name: "match rules of every kind",
      in: {
        strategy: "canary",
        match: "header:X-User-Type=internal, cookie:beta=1,header:x-env~^qa-,path:/api/beta",
      },
      expect: {
        match: [
          { header: "x-user-type", value: "internal" },
          { cookie: "beta", value: "1" },
          { header: "x-env", regex: "^qa-" },
          { pathPrefix: "/api/beta" },
        ],
      },
    },
    {
      name: "regex with a comma",
      in: { strategy: "canary", match: "header:x-id~^a{1,3}$" },
      expect: { match: [{ header: "x-id", regex: "^a{1,3}$" }] },
    },
    {
      name: "sticky header",
      in: { strategy: "canary", sticky: "header:X-User-Id" },
      expect: { sticky: { header: "x-user-id" } },
    },
    {
      name: "sticky cookie",
      in: { strategy: "canary", sticky: "cookie:uid" },
      expect: { sticky: { cookie: "uid" } },
    },
    {
      name: "automated canary with every gate",
      in: {
        strategy: "canary",
        steps: "5, 20,50,100",
        interval: "2s",
        "max-error-rate": "1%",
        "max-p99": "500ms",
        "max-p99-ratio": "1.2",
        "min-requests": "20",
        "progress-deadline": "1m",
        paused: "true",
        abort: "false",
      },
      expect: {
        steps: [5, 20, 50, 100],
        intervalMs: 2000,
        gates: {
          maxErrorRate: 1,
          maxP99Ms: 500,
          maxP99Ratio: 1.2,
          minRequests: 20,
          warnMarginPct: 10,
        },
        progressDeadlineMs: 60_000,
        paused: true,
        abort: false,
      },
    },
    {
      name: "error rate without %",
      in: { strategy: "canary", "max-error-rate": "0.5" },
      expect: { gates: { maxErrorRate: 0.5, minRequests: 0, warnMarginPct: 10 } },
    },
    {
      name: "release engine defaults: cut-off at 5, hold when inconclusive, 10s gate timeout",
      in: { strategy: "canary", interval: "10s" },
      expect: {
        cutoffFailures: 5,
        onInconclusive: "hold",
        webhookTimeoutMs: 10_000,
        webhooks: {},
        autoPromote: false,
        postSwitchWindowMs: 30_000,
      },
    },
    {
      name: "capacity guard, levels, low traffic, cut-off, gates and a notification URL",
      in: {
        strategy: "blue-green",
        "max-weight": "30%",
        "pod-share-factor": "2",
        "warn-margin": "25%",
        confidence: "95",
        "inconclusive-limit": "3",
        "on-inconclusive": "fail",
        "cutoff-failures": "0",
        "auto-promote": "true",
        "post-switch-window": "1m",
        "scale-down-delay": "5m",
        "webhook-timeout": "2s",
        "webhook-smoke-test": "http://127.0.0.1:9000/smoke",
        "webhook-confirm-promotion": "https://approve.example/shop",
        "notify-url": "http://127.0.0.1:9000/notify",
      },
      expect: {
        maxWeight: 30,
        podShareFactor: 2,
        gates: { minRequests: 0, warnMarginPct: 25, confidencePct: 95 },
        inconclusiveLimit: 3,
        onInconclusive: "fail",
        cutoffFailures: 0,
        autoPromote: true,
        postSwitchWindowMs: 60_000,
        scaleDownDelayMs: 300_000,
        webhookTimeoutMs: 2_000,
        webhooks: {
          "smoke-test": "http://127.0.0.1:9000/smoke",
          "confirm-promotion": "https://approve.example/shop",
        },
        notifyUrl: "http://127.0.0.1:9000/notify",
      },
    },
    {
      name: "blue-green preview analysis: 3 intervals of the matched traffic",
      in: { strategy: "blue-green", "auto-promote": "true", "preview-analysis": " 3 " },
      expect: { autoPromote: true, previewAnalysis: 3 },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = parsePolicy(A(c.in));
      expect(r.ok).toBe(true);
      if (r.ok) expect(r.value).toMatchObject(c.expect);
    });
  }
  for (const raw of [undefined, "0"]) {
    it(`preview analysis ${raw === undefined ? "absent" : `"${raw}"`}: off`, () => {
      const more: Record<string, string> = raw === undefined ? {} : { "preview-analysis": raw };
      const r = parsePolicy(A({ strategy: "blue-green", "auto-promote": "true", ...more }));
      expect(r.ok && r.value.previewAnalysis).toBeUndefined();
    });
  }
});

describe("parsePolicy: invalid", () => {
  const cases: { name: string; in: Record<string, string>; codes: PolicyErrorCode[] }[] = [
    { name: "unknown strategy", in: { strategy: "rolling" }, codes: ["POLICY_STRATEGY"] },
    { name: "weight 140", in: { strategy: "canary", weight: "140" }, codes: ["POLICY_WEIGHT"] },
    { name: "negative weight", in: { strategy: "canary", weight: "-1" }, codes: ["POLICY_WEIGHT"] },
    { name: "weight text", in: { strategy: "canary", weight: "ten" }, codes: ["POLICY_WEIGHT"] },
    {
      name: "promote not boolean",
      in: { strategy: "blue-green", promote: "yes" },
      codes: ["POLICY_BOOL"],
    },
    {
      name: "bad regex",
      in: { strategy: "canary", match: "header:x-env~(qa" },
      codes: ["POLICY_REGEX"],
    },
    {
      name: "bad match item",
      in: { strategy: "canary", match: "query:a=1" },
      codes: ["POLICY_MATCH"],
    },
    {
      name: "path without slash",
      in: { strategy: "canary", match: "path:api" },
      codes: ["POLICY_MATCH"],
    },
    { name: "empty match", in: { strategy: "canary", match: " " }, codes: ["POLICY_MATCH"] },
    {
      name: "rule weight above 100",
      in: { strategy: "canary", match: "header:x-region=beijing@150" },
      codes: ["POLICY_MATCH_WEIGHT"],
    },
    {
      name: "rule weight malformed",
      in: { strategy: "canary", match: "header:x-region=beijing@2.5.1" },
      codes: ["POLICY_MATCH_WEIGHT"],
    },
    { name: "bad sticky", in: { strategy: "canary", sticky: "ip" }, codes: ["POLICY_STICKY"] },
    {
      name: "steps not increasing",
      in: { strategy: "canary", steps: "5,50,20" },
      codes: ["POLICY_STEPS"],
    },
    {
      name: "steps above 100",
      in: { strategy: "canary", steps: "5,120" },
      codes: ["POLICY_STEPS"],
    },
    { name: "steps with zero", in: { strategy: "canary", steps: "0,50" }, codes: ["POLICY_STEPS"] },
    {
      name: "bad interval",
      in: { strategy: "canary", interval: "1 minute" },
      codes: ["POLICY_DURATION"],
    },
    {
      name: "zero deadline",
      in: { strategy: "canary", "progress-deadline": "0s" },
      codes: ["POLICY_DURATION"],
    },
    { name: "bad p99", in: { strategy: "canary", "max-p99": "fast" }, codes: ["POLICY_DURATION"] },
    {
      name: "bad error rate",
      in: { strategy: "canary", "max-error-rate": "200%" },
      codes: ["POLICY_ERROR_RATE"],
    },
    {
      name: "bad ratio",
      in: { strategy: "canary", "max-p99-ratio": "0" },
      codes: ["POLICY_P99_RATIO"],
    },
    {
      name: "bad min requests",
      in: { strategy: "canary", "min-requests": "1.5" },
      codes: ["POLICY_MIN_REQUESTS"],
    },
    {
      name: "max weight above 100",
      in: { strategy: "canary", "max-weight": "120" },
      codes: ["POLICY_PERCENT"],
    },
    {
      name: "confidence of 100 (no test can reach it)",
      in: { strategy: "canary", confidence: "100" },
      codes: ["POLICY_PERCENT"],
    },
    {
      name: "pod share factor 0, cut-off -1, inconclusive limit 0",
      in: {
        strategy: "canary",
        "pod-share-factor": "0",
        "cutoff-failures": "-1",
        "inconclusive-limit": "0",
      },
      codes: ["POLICY_NUMBER", "POLICY_NUMBER", "POLICY_NUMBER"],
    },
    {
      name: "unknown inconclusive policy",
      in: { strategy: "canary", "on-inconclusive": "retry" },
      codes: ["POLICY_CHOICE"],
    },
    {
      name: "a gate and a notification URL that are not http(s)",
      in: { strategy: "canary", "webhook-rollout": "ftp://x/y", "notify-url": "slack" },
      codes: ["POLICY_URL", "POLICY_URL"],
    },
    ...["-1", "1.5", "three", ""].map((v) => ({
      name: `preview analysis ${JSON.stringify(v)}`,
      in: { strategy: "blue-green", "auto-promote": "true", "preview-analysis": v },
      codes: ["POLICY_NUMBER" as const],
    })),
    {
      name: "several at once",
      in: { strategy: "canary", weight: "140", interval: "soon" },
      codes: ["POLICY_WEIGHT", "POLICY_DURATION"],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = parsePolicy(A(c.in));
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.map((e) => e.code).sort()).toEqual([...c.codes].sort());
        for (const e of r.error) expect(e.message.startsWith(e.annotation)).toBe(true);
      }
    });
  }
});

describe("withGatesConfigMap: gates declared in the ConfigMap a Deployment names", () => {
  const ok = "https://gates.example/ok";
  const configMaps: Record<string, Record<string, string>> = {
    gates: { "pre-rollout": ok, "confirm-promotion": "http://approve.example/shop", timeout: "5s" },
    empty: {},
    unknown: { "pre-rollout": ok, "pre-rolout": ok },
    ftp: { rollout: "ftp://gates.example/x" },
    "bad-timeout": { timeout: "soon" },
  };
  const lookup = (name: string): Record<string, string> | undefined => configMaps[name];
  const valid: {
    name: string;
    in: Record<string, string>;
    webhooks: ReleasePolicy["webhooks"];
    timeoutMs: number;
  }[] = [
    {
      name: "gate kinds and timeout from the ConfigMap",
      in: { "gates-configmap": "gates" },
      webhooks: { "pre-rollout": ok, "confirm-promotion": "http://approve.example/shop" },
      timeoutMs: 5_000,
    },
    {
      name: "an annotation wins over the ConfigMap for the same kind (and the timeout)",
      in: {
        "gates-configmap": "gates",
        "webhook-pre-rollout": "https://own.example/pre",
        "webhook-timeout": "20s",
      },
      webhooks: {
        "pre-rollout": "https://own.example/pre",
        "confirm-promotion": "http://approve.example/shop",
      },
      timeoutMs: 20_000,
    },
    {
      name: "annotations and the ConfigMap add up, kind by kind",
      in: { "gates-configmap": " gates ", "webhook-rollback": "https://own.example/rb" },
      webhooks: {
        "pre-rollout": ok,
        "confirm-promotion": "http://approve.example/shop",
        rollback: "https://own.example/rb",
      },
      timeoutMs: 5_000,
    },
    {
      name: "an empty ConfigMap declares nothing",
      in: { "gates-configmap": "empty" },
      webhooks: {},
      timeoutMs: 10_000,
    },
    { name: "no annotation: nothing looked up", in: {}, webhooks: {}, timeoutMs: 10_000 },
  ];
  for (const c of valid) {
    it(c.name, () => {
      const merged = withGatesConfigMap(A({ strategy: "canary", ...c.in }), lookup);
      expect(merged.errors).toEqual([]);
      const r = parsePolicy(merged.annotations);
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.value.webhooks).toEqual(c.webhooks);
        expect(r.value.webhookTimeoutMs).toBe(c.timeoutMs);
      }
    });
  }

  const invalid: { name: string; configMap: string; codes: PolicyErrorCode[]; says: string[] }[] = [
    {
      name: "no such ConfigMap",
      configMap: "missing",
      codes: ["POLICY_CONFIGMAP"],
      says: ['ConfigMap "missing" not found'],
    },
    {
      name: "a name no ConfigMap can have",
      configMap: "Shop_Gates",
      codes: ["POLICY_CONFIGMAP"],
      says: ['"Shop_Gates" is not a ConfigMap name'],
    },
    {
      name: "an unknown key, named with its ConfigMap",
      configMap: "unknown",
      codes: ["POLICY_CONFIGMAP"],
      says: ['ConfigMap "unknown" key "pre-rolout" is unknown', "pre-rollout, smoke-test"],
    },
    {
      name: "a gate URL that is not http(s)",
      configMap: "ftp",
      codes: ["POLICY_URL"],
      says: ['ConfigMap "ftp" key rollout: "ftp://gates.example/x": use an http:// or https://'],
    },
    {
      name: "a timeout that is not a duration",
      configMap: "bad-timeout",
      codes: ["POLICY_DURATION"],
      says: ['ConfigMap "bad-timeout" key timeout'],
    },
  ];
  for (const c of invalid) {
    it(c.name, () => {
      const own = A({ strategy: "canary", "gates-configmap": c.configMap });
      const merged = withGatesConfigMap(own, lookup);
      expect(merged.errors.map((e) => e.code)).toEqual(c.codes);
      for (const e of merged.errors) {
        expect(e.annotation).toBe("verso.dev/gates-configmap");
        expect(e.message.startsWith("verso.dev/gates-configmap: ")).toBe(true);
      }
      const text = merged.errors.map((e) => e.message).join("; ");
      for (const s of c.says) expect(text).toContain(s);
      // Nothing from a bad ConfigMap is used, not even its valid entries.
      expect(merged.annotations).toEqual(own);
    });
  }
});
