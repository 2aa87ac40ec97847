/**
 * Hop-token keys. One 32-byte secret per installation, kept in the Secret `verso-hop-key` in
 * the controller's namespace (made by the first replica that finds none; a racing replica
 * reads the winner's), and one key per app derived from it with HMAC-SHA256 over
 * `namespace/app`. Every replica derives the same key; apps never share one.
 */
import { createHmac, randomBytes } from "node:crypto";
import { VersoError } from "../../../shared/errors.ts";
import type { KubeApi } from "./kube.ts";

export const HOP_SECRET_NAME = "verso-hop-key";
const KEY = "key";

export async function loadHopSecret(kube: KubeApi, namespace: string): Promise<Buffer> {
  for (let i = 0; i < 3; i++) {
    const existing = await kube.readSecretKey(namespace, HOP_SECRET_NAME, KEY);
    if (existing && existing.length >= 16) return existing;
    // Made, or a racing replica made it first (false): either way, read it back.
    await kube.createSecret(namespace, HOP_SECRET_NAME, { [KEY]: randomBytes(32) });
  }
  const key = await kube.readSecretKey(namespace, HOP_SECRET_NAME, KEY);
  if (!key) {
    throw new VersoError(
      "CONTROLLER_HOP_KEY_MISSING",
      `secret ${namespace}/${HOP_SECRET_NAME} has no "${KEY}"`,
    );
  }
  return key;
}

export function deriveHopKey(secret: Buffer, namespace: string, app: string): string {
  return createHmac("sha256", secret).update(`${namespace}/${app}`).digest("base64");
}
