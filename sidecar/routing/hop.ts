/**
 * Hop tokens (`x-verso-hop`): a proxy that forwards a request to a peer signs
 * (app, target version, expiry) with HMAC-SHA256 so the peer serves it locally. A client cannot
 * forge one without the key, so it cannot bypass the split; a forged, wrong-version or stale
 * token is ignored and the request routed normally. Format: `<expiryMs>.<sig b64url>.<version>`
 * (the version goes last because versions may contain dots).
 *
 * Pure apart from the HMAC itself: the clock is a parameter.
 */
import { equalBytes, hmacSha256, sha256 } from "./hmac.ts";

export const HOP_HEADER = "x-verso-hop";
/** A token lives this long; senders reuse one for at most REUSE_MS of it. */
export const HOP_TTL_MS = 30_000;
const REUSE_MS = 5_000;
/** Tolerated clock skew between pods: a token may not claim to live longer than TTL + this. */
const SKEW_MS = 30_000;

export function signHop(key: Buffer, app: string, version: string, expiryMs: number): string {
  const sig = hmacSha256(key, `${app}\n${version}\n${expiryMs}`).toString("base64url");
  return `${expiryMs}.${sig}.${version}`;
}

export type HopCheck =
  | { valid: true }
  | { valid: false; reason: "malformed" | "expired" | "wrong-version" | "bad-signature" };

/** Verify against any of `keys` (the current key and, during a rotation, the previous one). */
export function verifyHop(
  token: string,
  keys: readonly Buffer[],
  app: string,
  selfVersion: string,
  nowMs: number,
): HopCheck {
  const a = token.indexOf(".");
  const b = a === -1 ? -1 : token.indexOf(".", a + 1);
  if (a <= 0 || b === -1) return { valid: false, reason: "malformed" };
  const expiryText = token.slice(0, a);
  if (!/^\d{1,15}$/.test(expiryText)) return { valid: false, reason: "malformed" };
  const expiry = Number(expiryText);
  if (expiry <= nowMs || expiry > nowMs + HOP_TTL_MS + SKEW_MS) {
    return { valid: false, reason: "expired" };
  }
  if (token.slice(b + 1) !== selfVersion) return { valid: false, reason: "wrong-version" };
  const given = Buffer.from(token.slice(a + 1, b), "base64url");
  for (const key of keys) {
    if (equalBytes(given, hmacSha256(key, `${app}\n${selfVersion}\n${expiry}`))) {
      return { valid: true };
    }
  }
  return { valid: false, reason: "bad-signature" };
}

/** The fallback key for file mode without a key: anyone who knows the app name can derive it. */
export function derivedHopKey(app: string): Buffer {
  return sha256(`verso-hop-key\n${app}`);
}

/**
 * Per-process signer/verifier with small caches so the hot path signs about once per
 * REUSE_MS per target version and verifies a repeated token with one map lookup.
 */
export class HopKeys {
  private keys: Buffer[] = [];
  private readonly signed = new Map<string, { token: string; renewAt: number }>();
  private readonly verified = new Map<string, number>();
  private readonly app: string;
  private readonly selfVersion: string;

  constructor(app: string, selfVersion: string) {
    this.app = app;
    this.selfVersion = selfVersion;
  }

  /** Install a key; the previous one still verifies (rotation), tokens are re-signed. */
  setKey(key: Buffer | undefined): void {
    const current = this.keys[0];
    if (key && current && key.equals(current)) return;
    this.keys = key ? (current ? [key, current] : [key]) : [];
    this.signed.clear();
    this.verified.clear();
  }

  hasKey(): boolean {
    return this.keys.length > 0;
  }

  sign(version: string, nowMs: number): string {
    const cached = this.signed.get(version);
    if (cached && cached.renewAt > nowMs) return cached.token;
    const token = signHop(this.keys[0]!, this.app, version, nowMs + HOP_TTL_MS);
    this.signed.set(version, { token, renewAt: nowMs + REUSE_MS });
    return token;
  }

  verify(token: string, nowMs: number): boolean {
    const expiry = this.verified.get(token);
    if (expiry !== undefined) {
      if (expiry > nowMs) return true;
      this.verified.delete(token);
    }
    if (this.keys.length === 0) return false;
    const check = verifyHop(token, this.keys, this.app, this.selfVersion, nowMs);
    if (!check.valid) return false;
    // Bounded: a peer set signs a handful of live tokens; forged ones never get here.
    if (this.verified.size >= 256) this.verified.clear();
    this.verified.set(token, Number(token.slice(0, token.indexOf("."))));
    return true;
  }
}
