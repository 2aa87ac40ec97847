/**
 * HMAC-SHA256 and SHA-256 for hop tokens on either runtime. The proxy runs on Bun, where
 * `Bun.CryptoHasher` is native (0.55 µs per token) and loading `node:crypto` would cost +3.4 MB
 * RSS in every pod; the unit tests and any Node caller get `node:crypto`. Both give the same
 * bytes (hop.test.ts runs the vectors on both runtimes).
 */
type Digest = (key: Uint8Array | undefined, text: string) => Buffer;

async function pickDigest(): Promise<Digest> {
  const bun = (globalThis as { Bun?: typeof Bun }).Bun;
  if (bun) {
    return (key, text) => {
      const h = key ? new bun.CryptoHasher("sha256", key) : new bun.CryptoHasher("sha256");
      return Buffer.from(h.update(text).digest().buffer);
    };
  }
  const { createHash, createHmac } = await import("node:crypto");
  return (key, text) =>
    key
      ? createHmac("sha256", key).update(text).digest()
      : createHash("sha256").update(text).digest();
}

const digest = await pickDigest();

export const hmacSha256 = (key: Uint8Array, text: string): Buffer => digest(key, text);
export const sha256 = (text: string): Buffer => digest(undefined, text);

/** Constant-time equality (the length is not secret: a token's signature has a fixed size). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
