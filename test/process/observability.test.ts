/**
 * deploy/observability/: the alerts (rules.yaml and the PrometheusRule), the Grafana dashboard
 * and the scrape config, checked by Prometheus' own tools (the dashboard also by Grafana's own
 * schema, with verso-grafana-lint) and then run for real: Debian's Prometheus with the shipped
 * jobs, relabelling and rules scrapes four Bun proxies (one without a routing table, one that
 * cuts the release off) and the webhook's HTTPS /metrics
 * (its admission series, and the controller's release series from the controller's own
 * module) while traffic with 5xx, forwards, retries and fallbacks goes through. Every
 * dashboard expression must return series and every rule must evaluate; the alerts this
 * traffic calls for go pending or fire, the others stay quiet.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Agent } from "node:https";
import { Gauge } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CONTROLLER_METRIC, METRIC } from "../../shared/metric-names.ts";
import type { Logger } from "../../shared/log.ts";
import { admit } from "../../webhook/admission/admit.ts";
import { createAdmissionMetrics, createRegistry } from "../../webhook/admission/metrics.ts";
import { startServer, type WebhookServer } from "../../webhook/admission/server.ts";
import { writeSelfSigned } from "../../webhook/admission/tls.ts";
import { parseConfig } from "../../webhook/config.ts";
import type { Phase, ReleaseStatus } from "../../webhook/controller/decide/status.ts";
import { createReleaseMetrics } from "../../webhook/controller/io/releaseMetrics.ts";
import { ensureGrafanaLint, runGrafanaLint } from "../harness/grafanaLint.ts";
import { REPO_ROOT } from "../harness/paths.ts";
import { freePort, sleep, waitFor } from "../harness/ports.ts";
import { prometheusBinary } from "../harness/prometheus.ts";
import {
  concrete,
  DASHBOARD_FILE,
  expressions,
  loadDashboard,
  metricNames,
  panelsOf,
} from "./dashboard.ts";
import {
  fileSdConfig,
  OBSERVABILITY,
  RULES,
  startShippedPrometheus,
  type PodPort,
  type ShippedPrometheus,
} from "./observability-fixture.ts";
import {
  get,
  startApp,
  startProxy,
  writeRoutes,
  type App,
  type AppRoutes,
  type Proxy,
} from "./sidecar-fixture.ts";
import { makeAgent, review, samplePod, send } from "./webhookClient.ts";

const promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].find((p) => existsSync(p));
const ALERT_TESTS = join(REPO_ROOT, "test", "data", "observability", "alerts.test.yaml");

/** Series of Kubernetes itself that an alert reads (the API server's admission metrics). */
const KUBERNETES_SERIES = ["apiserver_admission_webhook_fail_open_count"];

interface RuleGroup {
  name: string;
  rules: { alert?: string; record?: string; expr: string }[];
}

const rulesFile = (): { groups: RuleGroup[] } => parse(readFileSync(RULES, "utf8"));
const ruleExpressions = (): { where: string; expr: string }[] =>
  rulesFile().groups.flatMap((g) => g.rules.map((r) => ({ where: r.alert!, expr: r.expr })));

function runPromtool(args: string[], cwd = REPO_ROOT): { code: number; out: string } {
  const r = spawnSync(promtool!, args, { cwd, encoding: "utf8" });
  return { code: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}

/** Every `verso_*` series name the code registers: the proxy's, the webhook's, the controller's. */
function exportedNames(): Set<string> {
  const names = new Set<string>([...Object.values(METRIC), ...Object.values(CONTROLLER_METRIC)]);
  const registry = createRegistry();
  createAdmissionMetrics(registry);
  for (const m of registry.getMetricsAsArray()) names.add(m.name);
  // The controller registers its gauges where it wires itself up (webhook/controller/).
  const dir = join(REPO_ROOT, "webhook", "controller");
  for (const file of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    if (!file.endsWith(".ts") || file.endsWith(".test.ts")) continue;
    for (const m of readFileSync(join(dir, file), "utf8").matchAll(/"(verso_[a-z0-9_]+)"/g)) {
      names.add(m[1]!);
    }
  }
  return names;
}

// Needs no promtool: the schema check runs wherever Go can build it.
describe("the dashboard against Grafana's own schema (verso-grafana-lint)", () => {
  // scripts/grafana-lint/main.go: grafana-foundation-sdk's strict decoding (unknown fields,
  // wrong types, missing required fields; panel options by panel type) and Validate.
  let lint: string;
  let dir: string;
  beforeAll(async () => {
    lint = await ensureGrafanaLint();
    dir = mkdtempSync(join(tmpdir(), "verso-grafana-lint-"));
  }, 900_000); // the first build compiles the SDK: about a minute on 2 cores
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("accepts the shipped dashboard", () => {
    const r = runGrafanaLint(lint, [DASHBOARD_FILE]);
    expect(r.stdout + r.stderr).toBe(
      `${DASHBOARD_FILE}: ok: ${panelsOf(loadDashboard()).length} panels\n`,
    );
    expect(r.code).toBe(0);
  });

  type Raw = Record<string, unknown> & { panels: Record<string, unknown>[] };
  const options = (d: Raw, type: string) =>
    d.panels.find((p) => p.type === type)!.options as Record<string, unknown>;
  it.each<[string, (d: Raw) => void, RegExp]>([
    [
      "an unknown top-level field",
      (d) => void (d.bogusField = true),
      /: Dashboard: unexpected field 'bogusField'$/m,
    ],
    [
      "gridPos.h as a string",
      (d) => void ((d.panels[1]!.gridPos as { h: unknown }).h = "8"),
      /: panels\[1\]\.gridPos\.h: json: cannot unmarshal string into Go value of type uint32$/m,
    ],
    [
      "a stat panel without its required justifyMode",
      (d) => void delete options(d, "stat").justifyMode,
      /: panels\[\d+\]\.options\.justifyMode: required field is missing from input$/m,
    ],
  ])("rejects a copy with %s, naming the field", (name, mutate, problem) => {
    const d = JSON.parse(readFileSync(DASHBOARD_FILE, "utf8")) as Raw;
    mutate(d);
    const file = join(dir, `${name.replaceAll(/[^a-z]+/g, "-")}.json`);
    writeFileSync(file, JSON.stringify(d, null, 2));
    const r = runGrafanaLint(lint, [file]);
    expect(r.stdout, r.stderr).toMatch(problem);
    // That problem only: every line is the file's, and there is one.
    expect(r.stdout.trim().split("\n"), r.stdout).toHaveLength(1);
    expect(r.stdout.startsWith(`${file}: `)).toBe(true);
    expect(r.code).toBe(1);
  });
});

describe.skipIf(!promtool)(
  "shipped alerts, dashboard and scrape config, checked by promtool",
  () => {
    it("promtool check rules accepts rules.yaml", () => {
      const r = runPromtool(["check", "rules", RULES]);
      expect(r.out).toMatch(/SUCCESS: 7 rules found/);
      expect(r.code).toBe(0);
    });

    it("the PrometheusRule holds exactly the groups of rules.yaml", () => {
      const operator = parse(readFileSync(join(OBSERVABILITY, "prometheusrule.yaml"), "utf8")) as {
        kind: string;
        spec: { groups: RuleGroup[] };
      };
      expect(operator.kind).toBe("PrometheusRule");
      expect(operator.spec.groups).toEqual(rulesFile().groups);
    });

    it("promtool test rules: each alert fires when it should, and only then", () => {
      const r = runPromtool(["test", "rules", ALERT_TESTS]);
      expect(r.out).toMatch(/SUCCESS/);
      expect(r.code).toBe(0);
      // Every alert has a case in which it fires.
      const tests = parse(readFileSync(ALERT_TESTS, "utf8")) as {
        tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
      };
      const fired = new Set(
        tests.tests.flatMap((t) =>
          t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname),
        ),
      );
      expect([...fired].sort()).toEqual(
        ruleExpressions()
          .map((r) => r.where)
          .sort(),
      );
    });

    it("the dashboard is well formed: ids, layout, datasource, variables", () => {
      const d = loadDashboard();
      expect(d).toMatchObject({ uid: "verso-overview", title: "Verso" });
      expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
      const panels = panelsOf(d);
      expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
      const cells = new Set<string>();
      for (const p of panels) {
        const { x, y, w, h } = p.gridPos;
        expect(x + w, p.title).toBeLessThanOrEqual(24);
        // No two panels share a grid cell.
        for (let i = x; i < x + w; i++) {
          for (let j = y; j < y + h; j++) {
            expect(cells.has(`${i},${j}`), `${p.title} overlaps at ${i},${j}`).toBe(false);
            cells.add(`${i},${j}`);
          }
        }
        if (p.type === "row") continue;
        expect(p.targets?.length, p.title).toBeGreaterThan(0);
        for (const t of [p.datasource, ...(p.targets ?? []).map((t) => t.datasource)]) {
          expect(t, p.title).toEqual({ type: "prometheus", uid: "${datasource}" });
        }
      }
      const defined = new Set(d.templating.list.map((v) => v.name));
      for (const { where, expr } of expressions(d)) {
        for (const [, name] of expr.matchAll(/\$([a-zA-Z_]+)/g)) {
          expect(
            name === "__rate_interval" || name === "__range" || defined.has(name!),
            where,
          ).toBe(true);
        }
      }
    });

    it("every dashboard expression parses (promtool check rules on them as recording rules)", () => {
      const dir = mkdtempSync(join(tmpdir(), "verso-dashboard-"));
      try {
        const exprs = expressions(loadDashboard());
        const file = join(dir, "dashboard-rules.yaml");
        const rules = exprs.map((e, i) => ({
          record: `verso:dashboard_${i}`,
          expr: concrete(e.expr),
        }));
        writeFileSync(file, JSON.stringify({ groups: [{ name: "dashboard", rules }] }));
        const r = runPromtool(["check", "rules", file]);
        expect(r.out).toMatch(new RegExp(`SUCCESS: ${exprs.length} rules found`));
        expect(r.code).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("every series the dashboard and the alerts read is one Verso or Kubernetes exports", () => {
      const exported = exportedNames();
      const read = new Set(
        [...expressions(loadDashboard()), ...ruleExpressions()].flatMap((e) => [
          ...metricNames(concrete(e.expr)),
        ]),
      );
      for (const name of read) {
        const known = exported.has(name) || KUBERNETES_SERIES.includes(name);
        expect(known, `${name} is not exported by any Verso component`).toBe(true);
      }
      // The proxy's series are all on the dashboard.
      for (const name of Object.values(METRIC)) expect(read.has(name), name).toBe(true);
    });

    it("promtool check config accepts the scrape config (file discovery for Kubernetes')", () => {
      // Debian's Prometheus has no Kubernetes discovery compiled in (kubernetes_sd_configs is an
      // unknown field to it): the jobs are checked with file discovery, relabelling unchanged.
      const dir = mkdtempSync(join(tmpdir(), "verso-scrape-"));
      try {
        const file = join(dir, "prometheus.yml");
        writeFileSync(file, JSON.stringify(fileSdConfig(dir, 15)));
        const r = runPromtool(["check", "config", file]);
        expect(r.out).toMatch(/SUCCESS/);
        expect(r.code).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);

describe.skipIf(!prometheusBinary())(
  "a real Prometheus with the shipped scrape config and rules",
  () => {
    // The mutation is made to throw on purpose: its error log would only be noise here.
    const quiet: Logger = {
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
      enabled: () => false,
    };
    let dir: string;
    let apps: App[] = [];
    let proxies: Proxy[] = [];
    let webhook: WebhookServer | undefined;
    let agent: Agent | undefined;
    let prom: ShippedPrometheus | undefined;
    let throwOnUid: string | undefined;

    /** Admission traffic: one injected pod, one opted out, one whose mutation throws. */
    async function admissions(round: number): Promise<void> {
      const mutate = (body: unknown) =>
        send(agent!, `${webhook!.url}/mutate`, "POST", JSON.stringify(body));
      await mutate(review(samplePod(), { uid: `ok-${round}` }));
      const optedOut = samplePod() as { metadata: { annotations?: Record<string, string> } };
      optedOut.metadata.annotations = { "verso.dev/inject": "false" };
      await mutate(review(optedOut, { uid: `skip-${round}` }));
      throwOnUid = `throw-${round}`;
      await mutate(review(samplePod(), { uid: throwOnUid }));
    }

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "verso-observability-test-"));
      const fail: AppRoutes["http"] = {
        "/fail": (_req, res) => void res.writeHead(500).end("fail"),
      };
      const app1 = await startApp("127.0.0.171", "v1", { http: fail });
      const app2 = await startApp("127.0.0.172", "v2");
      apps = [app1, app2];
      const [port1, port2, deadPort, cutPort] = await Promise.all([
        freePort(app1.host),
        freePort(app2.host),
        freePort("127.0.0.173"),
        freePort("127.0.0.177"),
      ]);
      const dead = `127.0.0.173:${deadPort}`; // nothing listens: connection refused
      const routes = join(dir, "routes.json");
      const hopKey = randomBytes(16).toString("hex");
      const table = (revision: number, v2: string[], cutoffFailures = 0) => ({
        app: "shop",
        revision,
        release: {
          version: "v2",
          strategy: "canary",
          weight: 0,
          match: [{ header: "x-to", value: "v2" }],
          cutoffFailures,
        },
        endpoints: { v1: [`${app1.host}:${port1}`], v2 },
        hopKey,
      });
      // One v2 peer refuses, the other answers: forwards to v2 retry on the second.
      writeRoutes(routes, table(1, [dead, `${app2.host}:${port2}`]));
      // A v1 proxy whose table cuts v2 off after two failures (here: refusals) in a row.
      const cutRoutes = join(dir, "routes-cut.json");
      writeRoutes(cutRoutes, table(1, [dead], 2));
      const common = { routes, dir };
      proxies = await Promise.all([
        startProxy({ ...common, host: app1.host, app: app1, version: "v1", port: port1 }),
        startProxy({ ...common, host: app2.host, app: app2, version: "v2", port: port2 }),
      ]);
      const cutter = await startProxy({
        ...{ routes: cutRoutes, dir, host: "127.0.0.177", app: app1, version: "v1" },
        port: cutPort,
        // With the access log on, so its dropped-lines counter is exported too.
        extraArgs: ["--access-log", "true"],
      });
      proxies.push(cutter);
      // A proxy whose controller never answers: it serves without a table (revision -1).
      const token = join(dir, "token");
      writeFileSync(token, "not-a-token");
      const unrouted = await startProxy({
        host: "127.0.0.174",
        app: app1,
        version: "v1",
        dir,
        waitReady: false,
        extraArgs: [
          ...["--controller-url", "http://127.0.0.1:9", "--namespace", "shop"],
          ...["--token-file", token, "--table-wait-seconds", "1"],
        ],
      });
      proxies.push(unrouted);

      // The webhook's HTTPS edge with its real admission metrics (the mutation made to throw
      // for one uid per round, as test/process/webhook.test.ts does).
      const tls = await writeSelfSigned(join(dir, "tls"), ["127.0.0.1"]);
      const config = parseConfig(
        [
          ...["--listen", "127.0.0.1:0", "--tls-cert", tls.certFile, "--tls-key", tls.keyFile],
          "--no-controller",
        ],
        {},
      );
      if (!config.ok) throw new Error(config.error);
      webhook = await startServer(config.value, {
        logger: quiet,
        admit: (req, cfg) => {
          if (req.uid === throwOnUid) throw new Error("boom");
          return admit(req, cfg);
        },
      });
      agent = makeAgent(readFileSync(tls.certFile, "utf8"));
      // The controller runs only against a kube-apiserver (the cluster tier). Here its release
      // series come from its own module (createReleaseMetrics) fed with a release's status,
      // and the two gauges webhook/controller/index.ts registers inline are set by hand, all
      // on the webhook's registry: the real scrape (HTTPS, honor_labels) and the real PromQL
      // engine see them with the labels the controller gives them.
      const registers = [webhook.registry];
      new Gauge({ name: "verso_controller_leader", help: "leader", registers }).set(1);
      new Gauge({ name: "verso_controller_route_subscribers", help: "streams", registers }).set(2);
      const release = createReleaseMetrics(webhook.registry);
      const shopV2 = { namespace: "shop", app: "shop", version: "v2" };
      const cartV7 = { namespace: "cart", app: "cart", version: "v7" };
      // A status and policy as the release loop has them (only the fields the series read).
      const status = (phase: Phase, weight: number, step?: number): ReleaseStatus =>
        ({ phase, weight, step }) as ReleaseStatus;
      release.status(shopV2, status("Progressing", 10, 1), undefined);
      release.measured(shopV2, {
        release: { requests: 19, errors: 0 },
        stable: { requests: 181, errors: 1 },
      });
      release.status(cartV7, status("Failed", 0), undefined);
      release.rollback(cartV7, "ErrorRateTooHigh", 0.4);
      release.reconcileError("cart", "cart");

      const address = (p: Proxy) => `${p.host}:${p.adminPort}`;
      const pod = (p: Proxy, name: string): PodPort[] => [
        // What discovery lists for an injected pod: the app's port and the proxy's ports.
        {
          address: address(p),
          namespace: "shop",
          pod: name,
          portName: "verso-admin",
          labels: { "verso.dev/app": "shop" },
        },
        {
          address: `${p.host}:${p.port}`,
          namespace: "shop",
          pod: name,
          portName: "verso-http",
          labels: { "verso.dev/app": "shop" },
        },
      ];
      prom = await startShippedPrometheus({
        pods: {
          "verso-proxies": [
            ...pod(proxies[0]!, "shop-v1-0"),
            ...pod(proxies[1]!, "shop-v2-0"),
            ...pod(unrouted, "shop-v1-notable"),
            ...pod(cutter, "shop-v1-cut"),
            // Not injected, and an injected pod that is not running: both dropped.
            {
              address: "127.0.0.175:8080",
              namespace: "shop",
              pod: "plain-0",
              portName: "verso-admin",
            },
            {
              address: "127.0.0.176:15020",
              namespace: "shop",
              pod: "shop-v1-1",
              portName: "verso-admin",
              labels: { "verso.dev/app": "shop" },
              phase: "Pending",
            },
          ],
          "verso-controller": [
            {
              address: `127.0.0.1:${webhook.address.port}`,
              namespace: "verso-system",
              pod: "verso-webhook-0",
              portName: "https",
              labels: { "app.kubernetes.io/name": "verso-webhook" },
            },
          ],
        },
      });

      // Prometheus applies discovered targets every 5 s: traffic waits for the first scrapes,
      // or counters made and finished before them would read as flat (rate 0).
      await waitFor(
        "every kept target scraped once",
        async () => {
          const t = await prom!.targets();
          const up = t.activeTargets.filter((a) => a.health === "up");
          return up.length === 5 ? true : undefined;
        },
        30_000,
      );
      // Traffic, bounded: 5xx, forwards with retries, then (v2 gone) fallbacks; the cutter
      // cuts v2 off.
      const v1 = proxies[0]!.url;
      for (let round = 0; round < 24; round++) {
        if (round === 12) writeRoutes(routes, table(2, [dead]));
        const toV2 = round < 12 ? 1 : 3;
        await Promise.all([
          get(`${v1}/`),
          get(`${v1}/`),
          get(`${v1}/fail`),
          ...Array.from({ length: toV2 }, () => get(`${v1}/`, { "x-to": "v2" })),
          get(`${proxies[1]!.url}/`),
          get(`${unrouted.url}/`),
          get(`${cutter.url}/`, { "x-to": "v2" }),
          admissions(round),
        ]);
        if (round % 8 === 0) {
          release.rollback(cartV7, "ErrorRateTooHigh", 1.5);
          release.reconcileError("cart", "cart");
        }
        await sleep(400);
      }
    }, 120_000); // processes, first scrapes (targets apply every 5 s) and ~15 s of traffic

    afterAll(async () => {
      await prom?.stop();
      for (const p of proxies) await p.proc.stop();
      agent?.destroy();
      await webhook?.close();
      for (const a of apps) await a.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("scrapes the proxies' admin ports and the webhook, drops the rest, labels namespace and pod", async () => {
      const { activeTargets, droppedTargets } = await waitFor(
        "every kept target scraped",
        async () => {
          const t = await prom!.targets();
          return t.activeTargets.length === 5 && t.activeTargets.every((a) => a.health === "up")
            ? t
            : undefined;
        },
        30_000,
      );
      const kept = activeTargets.map(
        (t) => `${t.scrapePool} ${t.labels.namespace} ${t.labels.pod}`,
      );
      expect(kept.sort()).toEqual([
        "verso-controller verso-system verso-webhook-0",
        "verso-proxies shop shop-v1-0",
        "verso-proxies shop shop-v1-cut",
        "verso-proxies shop shop-v1-notable",
        "verso-proxies shop shop-v2-0",
      ]);
      for (const t of activeTargets) {
        expect(t.lastError).toBe("");
        // Target labels never take the proxy's own app/version.
        expect(Object.keys(t.labels).sort()).toEqual(["instance", "job", "namespace", "pod"]);
      }
      // The four proxies' verso-http ports, plain-0 (not injected), the Pending pod.
      expect(droppedTargets).toHaveLength(6);
      // honor_labels: the release series keep the release's namespace, not the target's.
      const weights = await prom!.query('verso_release_weight{kind="desired"}');
      expect(weights.map((s) => s.metric.namespace).sort()).toEqual(["cart", "shop"]);
      const leader = await prom!.query("verso_controller_leader");
      expect(leader.map((s) => s.metric.namespace)).toEqual(["verso-system"]);
    });

    it("every dashboard expression returns series over the scraped data", async () => {
      for (const { where, expr } of expressions(loadDashboard())) {
        const promql = concrete(expr);
        const series = await waitFor(
          `${where}: ${promql}`,
          async () => {
            const s = await prom!.query(promql);
            return s.length > 0 ? s : undefined;
          },
          20_000,
        );
        expect(series.length, where).toBeGreaterThan(0);
      }
      // A few numbers the traffic above pins down.
      const unrouted = await prom!.query(
        concrete(
          'count by (namespace, app) (verso_routing_table_revision{namespace=~"$namespace", app=~"$app"} < 0)',
        ),
      );
      expect(unrouted).toEqual([{ metric: { namespace: "shop", app: "shop" }, value: 1 }]);
      const errorShare = await prom!.query(
        concrete(
          expressions(loadDashboard()).find((e) => e.where === "Error rate (5xx share) A")!.expr,
          "30s",
        ),
      );
      const byVersion = Object.fromEntries(errorShare.map((s) => [s.metric.version, s.value]));
      expect(byVersion.v1).toBeGreaterThan(0); // /fail on v1
      expect(byVersion.v2).toBe(0); // v2 served without errors: 0, not missing
      expect(
        (await prom!.query("sum(verso_retries_total)"))[0]?.value,
        "a forward retried on the second v2 peer",
      ).toBeGreaterThan(0);
      const cut = await prom!.query("verso_release_cutoff");
      expect(cut.map((c) => [c.metric.pod, c.metric.version, c.value])).toEqual([
        ["shop-v1-cut", "v2", 1],
      ]);
    });

    it("every rule evaluates; the alerts this traffic calls for go pending or fire", async () => {
      const rules = await waitFor(
        "every rule evaluated",
        async () => {
          const r = await prom!.rules();
          return r.length === 7 && r.every((x) => x.health === "ok") ? r : undefined;
        },
        20_000,
      );
      for (const r of rules) expect(r.lastError ?? "", r.name).toBe("");
      const alerts = await waitFor(
        "the alerts",
        async () => {
          const a = await prom!.alerts();
          const names = new Set(a.map((x) => x.labels.alertname));
          return names.size >= 4 ? a : undefined;
        },
        20_000,
      );
      const summary = alerts
        .map(
          (a) =>
            `${a.labels.alertname} ${a.labels.namespace ?? ""}/${a.labels.pod ?? a.labels.app ?? ""} ${a.state}`,
        )
        .sort();
      expect(summary).toEqual([
        "VersoHighFallbackRate shop/shop pending",
        "VersoProxyWithoutRoutingTable shop/shop-v1-notable pending",
        "VersoReleaseFailed cart/cart firing",
        "VersoWebhookErrors / pending",
      ]);
    });
  },
);
