import { describe, expect, it } from "vitest";
import { derivedHopKey, HOP_TTL_MS, HopKeys, signHop, verifyHop } from "./hop.ts";

const KEY = Buffer.from("0123456789abcdef0123456789abcdef");
const OTHER = Buffer.from("fedcba9876543210fedcba9876543210");
const NOW = 1_800_000_000_000;

describe("hop token: sign / verify", () => {
  const good = signHop(KEY, "shop", "v2", NOW + HOP_TTL_MS);
  const cases: {
    name: string;
    token: string;
    keys?: Buffer[];
    app?: string;
    self?: string;
    now?: number;
    want: string;
  }[] = [
    { name: "valid", token: good, want: "valid" },
    {
      name: "signed with another key (forged)",
      token: signHop(OTHER, "shop", "v2", NOW + HOP_TTL_MS),
      want: "bad-signature",
    },
    { name: "for another app", token: good, app: "cart", want: "bad-signature" },
    { name: "for another version", token: good, self: "v1", want: "wrong-version" },
    { name: "expired", token: good, now: NOW + HOP_TTL_MS + 1, want: "expired" },
    {
      name: "expiry too far in the future",
      token: signHop(KEY, "shop", "v2", NOW + 10 * 60_000),
      want: "expired",
    },
    {
      name: "expiry edited, signature kept",
      token: good.replace(/^\d+/, String(NOW + 20_000)),
      want: "bad-signature",
    },
    {
      name: "version edited to match",
      token: signHop(KEY, "shop", "v1", NOW + 1000).replace(/v1$/, "v2"),
      want: "bad-signature",
    },
    { name: "garbage", token: "yes-please", want: "malformed" },
    { name: "empty", token: "", want: "malformed" },
    { name: "one dot", token: "123.abc", want: "malformed" },
    {
      name: "truncated signature",
      token: good.replace(/\.([^.]+)\./, (_m, s: string) => `.${s.slice(0, 10)}.`),
      want: "bad-signature",
    },
    {
      name: "old key still verifies during rotation",
      token: good,
      keys: [OTHER, KEY],
      want: "valid",
    },
    { name: "no key at all", token: good, keys: [], want: "bad-signature" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = verifyHop(c.token, c.keys ?? [KEY], c.app ?? "shop", c.self ?? "v2", c.now ?? NOW);
      expect(r.valid ? "valid" : r.reason).toBe(c.want);
    });
  }

  it("versions with dots round-trip", () => {
    const t = signHop(KEY, "shop", "1.2.3", NOW + 1000);
    expect(verifyHop(t, [KEY], "shop", "1.2.3", NOW)).toEqual({ valid: true });
  });
});

describe("HopKeys", () => {
  it("reuses a token for a few seconds, then signs a fresh one", () => {
    const signer = new HopKeys("shop", "v1");
    signer.setKey(KEY);
    const a = signer.sign("v2", NOW);
    expect(signer.sign("v2", NOW + 1000)).toBe(a);
    expect(signer.sign("v2", NOW + 6000)).not.toBe(a);
  });

  it("a receiver accepts the sender's token and rejects it once expired, even when cached", () => {
    const sender = new HopKeys("shop", "v1");
    const receiver = new HopKeys("shop", "v2");
    sender.setKey(KEY);
    receiver.setKey(KEY);
    const t = sender.sign("v2", NOW);
    expect(receiver.verify(t, NOW)).toBe(true);
    expect(receiver.verify(t, NOW + 1)).toBe(true);
    expect(receiver.verify(t, NOW + HOP_TTL_MS + 1)).toBe(false);
  });

  it("a rotated key keeps the previous one for verification only", () => {
    const sender = new HopKeys("shop", "v1");
    const receiver = new HopKeys("shop", "v2");
    sender.setKey(KEY);
    receiver.setKey(KEY);
    receiver.setKey(OTHER);
    expect(receiver.verify(sender.sign("v2", NOW), NOW)).toBe(true);
    receiver.setKey(derivedHopKey("shop"));
    expect(receiver.verify(signHop(KEY, "shop", "v2", NOW + 1000), NOW)).toBe(false);
  });

  it("without a key nothing verifies", () => {
    const receiver = new HopKeys("shop", "v2");
    expect(receiver.hasKey()).toBe(false);
    expect(receiver.verify(signHop(KEY, "shop", "v2", NOW + 1000), NOW)).toBe(false);
  });
});
