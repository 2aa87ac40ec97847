/**
 * (b) The install manifests validate against a real apiserver that knows cert-manager's CRDs:
 * `kubectl apply --dry-run=server -k deploy/`. Namespaces the manifests create are created
 * first (a server-side dry run does not create them, so namespaced objects in them would
 * fail to validate for a reason that says nothing about the manifests).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { startCluster, type Cluster } from "../harness/cluster.ts";
import { DEPLOY_DIR, EXAMPLES_DIR } from "../harness/paths.ts";

describe("manifests against a real apiserver with cert-manager CRDs", () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ webhook: false, kubelet: false, crds: true });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it("knows cert-manager's kinds, and validates them for real", async () => {
    const resources = await cluster.kubectl([
      "api-resources",
      "--api-group=cert-manager.io",
      "-o",
      "name",
    ]);
    expect(resources.code, resources.stderr).toBe(0);
    expect(resources.stdout.split("\n").sort()).toEqual(
      expect.arrayContaining([
        "certificaterequests.cert-manager.io",
        "certificates.cert-manager.io",
        "clusterissuers.cert-manager.io",
        "issuers.cert-manager.io",
      ]),
    );
    // A Certificate without its required fields is refused: the dry run below can fail.
    const bad = await cluster.kubectl(
      ["apply", "--dry-run=server", "-f", "-"],
      "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: bad, namespace: default}\nspec: {dnsNames: [x]}\n",
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/secretName|issuerRef|Required/i);
  });

  /** Creates the Namespaces a kustomization declares (a dry run would not). */
  async function createNamespacesOf(dir: string): Promise<void> {
    const rendered = await cluster.kubectl(["kustomize", dir]);
    expect(rendered.code, rendered.stderr).toBe(0);
    const namespaces = parseAllDocuments(rendered.stdout)
      .map((d) => d.toJS() as { kind?: string; metadata?: { name?: string } } | null)
      .filter((o) => o?.kind === "Namespace")
      .map((o) => o?.metadata?.name ?? "");
    for (const ns of namespaces) {
      const created = await cluster.kubectl(["create", "namespace", ns]);
      expect(created.code, created.stderr).toBe(0);
    }
  }

  it("validates deploy/examples with a server-side dry run", async () => {
    await createNamespacesOf(EXAMPLES_DIR);
    const res = await cluster.kubectl(["apply", "--dry-run=server", "-k", EXAMPLES_DIR]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/deployment.apps\/shop-v2 created \(server dry run\)/);
  });

  it("kubectl apply --dry-run=server -k deploy/ succeeds", async () => {
    await createNamespacesOf(DEPLOY_DIR);
    const res = await cluster.kubectl(["apply", "--dry-run=server", "-k", DEPLOY_DIR]);
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
    expect(res.stdout).toMatch(/\(server dry run\)/);
  });
});
