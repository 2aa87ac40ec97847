import { describe, expect, it } from "vitest";
import { VersoError } from "../../../shared/errors.ts";
import { deriveHopKey, loadHopSecret } from "./hopKey.ts";
import type { KubeApi } from "./kube.ts";

/** Only the two calls loadHopSecret makes; the Secret "exists" with `stored` as its key. */
const kubeWith = (stored: Buffer | undefined): KubeApi =>
  ({
    readSecretKey: () => Promise.resolve(stored),
    createSecret: () => Promise.resolve(false),
  }) as unknown as KubeApi;

describe("loadHopSecret", () => {
  it("reads an existing secret", async () => {
    const key = Buffer.alloc(32, 7);
    await expect(loadHopSecret(kubeWith(key), "verso-system")).resolves.toEqual(key);
  });

  it("fails with CONTROLLER_HOP_KEY_MISSING when the Secret never holds a key", async () => {
    const e: unknown = await loadHopSecret(kubeWith(undefined), "verso-system").catch((x) => x);
    expect(e).toBeInstanceOf(VersoError);
    expect((e as VersoError).code).toBe("CONTROLLER_HOP_KEY_MISSING");
  });
});

describe("deriveHopKey", () => {
  it("differs per app, same per input", () => {
    const s = Buffer.alloc(32, 1);
    expect(deriveHopKey(s, "shop", "a")).toBe(deriveHopKey(s, "shop", "a"));
    expect(deriveHopKey(s, "shop", "a")).not.toBe(deriveHopKey(s, "shop", "b"));
  });
});
