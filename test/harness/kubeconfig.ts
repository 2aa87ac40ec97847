/** Writes a kubeconfig for the admin token, the form kubectl and client-node both read. */
import { writeFileSync } from "node:fs";
import type { Credentials } from "./kubeClient.ts";

export function writeKubeconfig(path: string, credentials: Credentials): void {
  const ca = Buffer.from(credentials.caPem).toString("base64");
  const text = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: verso-local",
    "  cluster:",
    `    server: ${credentials.server}`,
    `    certificate-authority-data: ${ca}`,
    "users:",
    "- name: admin",
    "  user:",
    `    token: ${credentials.token}`,
    "contexts:",
    "- name: verso-local",
    "  context:",
    "    cluster: verso-local",
    "    user: admin",
    "current-context: verso-local",
    "",
  ].join("\n");
  writeFileSync(path, text, { mode: 0o600 });
}
