/**
 * Installs the cert-manager CRDs from ../shared/data beside the checkout (data only: no
 * cert-manager controller runs) and waits until they are Established, so manifests that use
 * Certificate/Issuer validate with a server-side dry run.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { ControlPlane } from "./controlPlane.ts";
import { kubectl } from "./kubectl.ts";
import { CERT_MANAGER_CRDS, exists } from "./paths.ts";
import { waitFor } from "./ports.ts";

interface Crd {
  status?: { conditions?: { type: string; status: string }[] };
}

export async function installCertManagerCrds(cp: ControlPlane): Promise<string[]> {
  if (!exists(CERT_MANAGER_CRDS)) {
    throw new Error(`cert-manager CRDs not found at ${CERT_MANAGER_CRDS}`);
  }
  const res = await kubectl(cp.binaries.kubectl, cp.kubeconfig, [
    "apply",
    "--server-side",
    "--force-conflicts",
    "-f",
    CERT_MANAGER_CRDS,
  ]);
  if (res.code !== 0) throw new Error(`installing cert-manager CRDs failed: ${res.stderr}`);
  const names = readdirSync(CERT_MANAGER_CRDS)
    .filter((f) => /^cert-manager\.io_.*\.yaml$/.test(f))
    .map((f) => `${f.replace(/^cert-manager\.io_/, "").replace(/\.yaml$/, "")}.cert-manager.io`);
  for (const name of names) {
    await waitFor(
      `CRD ${name} Established`,
      async () => {
        const crd = await cp.client.get<Crd>(
          join("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", name),
        );
        const ok = crd.status?.conditions?.some(
          (c) => c.type === "Established" && c.status === "True",
        );
        return ok ? true : undefined;
      },
      30_000,
    );
  }
  return names;
}
