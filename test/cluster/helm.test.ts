/**
 * charts/verso against deploy/ and a real apiserver (with cert-manager's CRDs and, from
 * test/data, minimal prometheus-operator CRDs): the chart's default rendering is the
 * kustomization object for object, `helm lint` is clean, values.schema.json refuses bad
 * values, the rendering passes a server-side dry run, and install / upgrade / uninstall leave
 * what the README says. helm is built from its Go module (test/harness/helm.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { parseConfig } from "../../webhook/config.ts";
import { startCluster, type Cluster } from "../harness/cluster.ts";
import { ensureHelm, runHelm, type HelmResult } from "../harness/helm.ts";
import { DEPLOY_DIR, REPO_ROOT } from "../harness/paths.ts";
import { waitFor } from "../harness/ports.ts";

const CHART = join(REPO_ROOT, "charts", "verso");
const OBSERVABILITY = join(DEPLOY_DIR, "observability");
const OPERATOR_CRDS = join(REPO_ROOT, "test", "data", "prometheus-operator-crds.yaml");
const NAMESPACE = "verso-system";

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

/** `--set` for each `key=value`. */
const sets = (...pairs: string[]): string[] => pairs.flatMap((p) => ["--set", p]);

/** A YAML stream as objects keyed kind/namespace/name (comments and order do not matter). */
function objectsOf(stream: string): Map<string, KubeObject> {
  const out = new Map<string, KubeObject>();
  for (const doc of parseAllDocuments(stream)) {
    if (doc.errors.length > 0) throw new Error(`bad YAML: ${doc.errors[0]!.message}`);
    const obj = doc.toJS() as KubeObject | null;
    if (!obj) continue;
    const key = `${obj.kind}/${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;
    if (out.has(key)) throw new Error(`${key} rendered twice`);
    out.set(key, obj);
  }
  return out;
}

describe("charts/verso", () => {
  let cluster: Cluster;
  let helmBin: string;
  let home: string;
  const helm = (...args: string[]): Promise<HelmResult> =>
    runHelm(helmBin, args, { home, kubeconfig: cluster.cp.kubeconfig });
  const render = async (...args: string[]): Promise<Map<string, KubeObject>> => {
    const res = await helm("template", "verso", CHART, "--namespace", NAMESPACE, ...args);
    expect(res.code, res.stderr).toBe(0);
    return objectsOf(res.stdout);
  };
  const deploymentArgs = (objects: Map<string, KubeObject>, ns = NAMESPACE): string[] => {
    const d = objects.get(`Deployment/${ns}/verso-webhook`) as unknown as {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    };
    return d.spec.template.spec.containers[0]!.args;
  };

  beforeAll(async () => {
    // Built first: a cold build takes minutes and needs the CPU the apiserver would share.
    helmBin = await ensureHelm();
    home = mkdtempSync(join(tmpdir(), "verso-helm-"));
    cluster = await startCluster({ webhook: false, kubelet: false, crds: true });
  });

  afterAll(async () => {
    await cluster?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it("helm lint --strict passes with no warning", async () => {
    const res = await helm("lint", "--strict", CHART);
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
    expect(res.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(res.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
  });

  it("renders with default values exactly the objects of kubectl kustomize deploy/", async () => {
    const kustomized = await cluster.kubectl(["kustomize", DEPLOY_DIR]);
    expect(kustomized.code, kustomized.stderr).toBe(0);
    const want = objectsOf(kustomized.stdout);
    const got = await render();
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [key, obj] of want) expect(got.get(key), key).toEqual(obj);
  });

  it("renders the options as the webhook's flags, and only the ones set", async () => {
    const base = deploymentArgs(await render());
    expect(parseConfig(base, { POD_NAMESPACE: NAMESPACE }).ok).toBe(true);
    expect(
      base.filter((a) => /^--(metrics-source|prometheus-url|notify-|scale-down)/.test(a)),
    ).toEqual([]);
    const objects = await render(
      ...sets(
        "controller.metricsSource=prometheus",
        "controller.prometheusUrl=http://prometheus.monitoring:9090",
        "controller.scaleDownDelay=10m",
        "notifications.urls={https://hooks.example.test/a,https://hooks.example.test/b}",
        "notifications.secretName=verso-notify",
        "proxy.capture=port",
        "proxy.nativeSidecar=false",
        "proxy.image.tag=0.2.0",
        "proxy.resources.limits.memory=256Mi",
        "webhook.failurePolicy=Fail",
        "webhook.timeoutSeconds=10",
        "webhook.replicas=3",
        "webhook.excludedNamespaces={kube-system,monitoring}",
      ),
    );
    const args = deploymentArgs(objects);
    // The webhook's own parser takes every rendered flag (a misspelt one fails here).
    const parsed = parseConfig(args, { POD_NAMESPACE: NAMESPACE });
    expect(parsed.ok && parsed.value.controllerOptions.metricsSource).toBe("prometheus");
    expect(args).toEqual(
      expect.arrayContaining([
        "--metrics-source=prometheus",
        "--prometheus-url=http://prometheus.monitoring:9090",
        "--scale-down-delay=10m",
        "--notify-url=https://hooks.example.test/a,https://hooks.example.test/b",
        "--capture=port",
        "--native-sidecar=false",
        "--proxy-image=verso/sidecar:0.2.0",
        "--proxy-memory-limit=256Mi",
      ]),
    );
    expect(args.some((a) => a.startsWith("--notify-slack-url"))).toBe(false);
    const deployment = JSON.stringify(objects.get(`Deployment/${NAMESPACE}/verso-webhook`));
    expect(deployment).toContain('"name":"VERSO_WEBHOOK_NOTIFY_SLACK_URL"');
    expect(deployment).toContain('"replicas":3');
    const mwc = objects.get("MutatingWebhookConfiguration//verso-webhook") as unknown as {
      webhooks: {
        failurePolicy: string;
        timeoutSeconds: number;
        namespaceSelector: { matchExpressions: { values: string[] }[] };
      }[];
    };
    expect(mwc.webhooks[0]).toMatchObject({ failurePolicy: "Fail", timeoutSeconds: 10 });
    expect(mwc.webhooks[0]!.namespaceSelector.matchExpressions[0]!.values).toEqual([
      "kube-system",
      "monitoring",
      NAMESPACE,
    ]);
  });

  it("another release namespace: every reference to it follows; namespace.create=false", async () => {
    const res = await helm(
      ...["template", "verso", CHART, "--namespace", "delivery"],
      ...["--set", "namespace.create=false"],
    );
    expect(res.code, res.stderr).toBe(0);
    const objects = objectsOf(res.stdout);
    expect([...objects.values()].map((o) => o.kind)).not.toContain("Namespace");
    for (const o of objects.values()) {
      const clusterScoped = /^(ClusterRole|ClusterRoleBinding|MutatingWebhookConfiguration)$/;
      expect(o.metadata.namespace, o.kind).toBe(
        clusterScoped.test(o.kind) ? undefined : "delivery",
      );
    }
    // No object says verso-system any more: the CA injection, the SANs, the controller URL,
    // the RBAC subjects and the webhook's own exclusion all name the release namespace.
    expect(res.stdout).not.toContain("verso-system");
    expect(res.stdout).toContain("cert-manager.io/inject-ca-from: delivery/verso-webhook-serving");
    expect(res.stdout).toContain("verso-webhook.delivery.svc.cluster.local");
    expect(deploymentArgs(objects, "delivery")).toContain(
      "--controller-url=https://verso-webhook.delivery.svc:443",
    );
  });

  it("without cert-manager: no Issuer or Certificate, the caBundle given inline", async () => {
    const objects = await render(
      ...sets("certManager.enabled=false", "tls.caBundle=Q0EK", "tls.secretName=my-tls"),
    );
    const kinds = [...objects.values()].map((o) => o.kind);
    expect(kinds).not.toContain("Certificate");
    expect(kinds).not.toContain("Issuer");
    const mwc = objects.get("MutatingWebhookConfiguration//verso-webhook") as unknown as {
      metadata: { annotations?: Record<string, string> };
      webhooks: { clientConfig: { caBundle: string } }[];
    };
    expect(mwc.metadata.annotations).toBeUndefined();
    expect(mwc.webhooks[0]!.clientConfig.caBundle).toBe("Q0EK");
    expect(JSON.stringify(objects.get(`Deployment/${NAMESPACE}/verso-webhook`))).toContain(
      '"secretName":"my-tls"',
    );
  });

  it.each([
    [["--set-string", "webhook.replicas=two"], "at '/webhook/replicas': got string, want integer"],
    [
      ["--set", "webhook.failurePolicy=Sometimes"],
      "at '/webhook/failurePolicy': value must be one of 'Ignore', 'Fail'",
    ],
    [["--set", "webhook.replica=3"], "at '/webhook': additional properties 'replica' not allowed"],
    [["--set", "proxy.capture=ebpf"], "at '/proxy/capture': value must be one of"],
    [["--set", "webhook.timeoutSeconds=60"], "at '/webhook/timeoutSeconds'"],
    [["--set", "controller.metricsSource=prometheus"], "at '/controller/prometheusUrl'"],
    [["--set", "certManager.enabled=false"], "at '/tls/caBundle'"],
    [["--set", "proxy.resources.limits.memory=lots"], "at '/proxy/resources/limits/memory'"],
  ])("values.schema.json refuses %j", async (set, message) => {
    for (const command of ["template", "lint"]) {
      const res =
        command === "template"
          ? await helm("template", "verso", CHART, ...set)
          : await helm("lint", CHART, ...set);
      expect(res.code, command).not.toBe(0);
      expect(`${res.stdout}\n${res.stderr}`, command).toContain(message);
    }
  });

  it("the default rendering passes a server-side dry run", async () => {
    // A dry run does not create the namespace its namespaced objects need.
    const ns = await cluster.kubectl(["create", "namespace", NAMESPACE]);
    expect(ns.code, ns.stderr).toBe(0);
    const rendered = await helm("template", "verso", CHART, "--namespace", NAMESPACE);
    expect(rendered.code, rendered.stderr).toBe(0);
    const res = await cluster.kubectl(["apply", "--dry-run=server", "-f", "-"], rendered.stdout);
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
    const accepted = res.stdout.split("\n").filter((l) => l.endsWith("(server dry run)"));
    expect(accepted).toHaveLength(objectsOf(rendered.stdout).size);
  });

  it("the PodMonitors and PrometheusRule pass a server-side dry run against their CRDs", async () => {
    const crds = await cluster.kubectl(["apply", "--server-side", "-f", OPERATOR_CRDS]);
    expect(crds.code, crds.stderr).toBe(0);
    for (const name of ["podmonitors", "prometheusrules"]) {
      const established = await cluster.kubectl([
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        `crd/${name}.monitoring.coreos.com`,
      ]);
      expect(established.code, established.stderr).toBe(0);
    }
    // The CRDs check types: a PodMonitor with a bad scheme is refused.
    const bad = await cluster.kubectl(
      ["apply", "--dry-run=server", "-f", "-"],
      "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {name: bad, namespace: default}\nspec: {selector: {}, podMetricsEndpoints: [{port: x, scheme: gopher}]}\n",
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/scheme/);
    const res = await cluster.kubectl(["apply", "--dry-run=server", "-k", OBSERVABILITY]);
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
    expect(res.stdout).toMatch(/podmonitor.monitoring.coreos.com\/verso-proxies created/);
    expect(res.stdout).toMatch(/podmonitor.monitoring.coreos.com\/verso-controller created/);
    expect(res.stdout).toMatch(/prometheusrule.monitoring.coreos.com\/verso created/);
    expect(res.stdout).toMatch(/configmap\/verso-grafana-dashboard created/);
  });

  it("install, upgrade and uninstall: what stays behind", async () => {
    // Its own namespace: the dry run above made verso-system outside of helm.
    const ns = "verso-helm";
    const install = await helm("install", "verso", CHART, "-n", ns, "--create-namespace");
    expect(install.code, install.stderr).toBe(0);
    const labels = await cluster.kubectl(["get", "namespace", ns, "-o", "json"]);
    expect(JSON.parse(labels.stdout).metadata.labels).toMatchObject({
      "pod-security.kubernetes.io/enforce": "restricted",
      "app.kubernetes.io/managed-by": "Helm",
    });
    const certificate = await cluster.kubectl(["get", "certificate", "-n", ns, "-o", "name"]);
    expect(certificate.stdout.split("\n").filter(Boolean).sort()).toEqual([
      "certificate.cert-manager.io/verso-ca",
      "certificate.cert-manager.io/verso-webhook-serving",
    ]);

    const upgrade = await helm("upgrade", "verso", CHART, "-n", ns, "--set", "webhook.replicas=3");
    expect(upgrade.code, upgrade.stderr).toBe(0);
    const replicas = await cluster.kubectl([
      ...["get", "deployment", "verso-webhook", "-n", ns],
      ...["-o", "jsonpath={.spec.replicas}"],
    ]);
    expect(replicas.stdout).toBe("3");

    // What Verso leaves outside its namespace: the opt-in label on users' namespaces.
    const user = await cluster.kubectl(["create", "namespace", "shop-helm"]);
    expect(user.code, user.stderr).toBe(0);
    await cluster.kubectl(["label", "namespace", "shop-helm", "verso.dev/injection=enabled"]);

    const uninstall = await helm("uninstall", "verso", "-n", ns);
    expect(uninstall.code, uninstall.stderr).toBe(0);
    for (const kind of ["mutatingwebhookconfiguration", "clusterrole", "clusterrolebinding"]) {
      const gone = await cluster.kubectl(["get", kind, "-l", "app.kubernetes.io/part-of=verso"]);
      expect(gone.stdout, kind).toBe("");
    }
    // The namespace was the chart's: it goes, with everything made in it (cert-manager's
    // Secrets, the hop key, the Lease).
    await waitFor(
      `namespace ${ns} deleted`,
      async () => {
        const got = await cluster.kubectl(["get", "namespace", ns, "-o", "name"]);
        return got.code !== 0 ? true : undefined;
      },
      60_000,
    );
    const kept = await cluster.kubectl(["get", "namespace", "shop-helm", "--show-labels"]);
    expect(kept.stdout).toContain("verso.dev/injection=enabled");
  });
});
