/**
 * The TokenReview cache with a hand-driven clock and a counting review function: how long an
 * answer is reused (30 s for a caller, 5 s for a refusal, never for an unreachable apiserver)
 * what it is keyed by, and how it stays bounded. The HTTP edge over it is in
 * test/process/controller-stream.test.ts.
 */
import { describe, expect, it } from "vitest";
import { createAuthenticator, type ReviewAnswer } from "./tokenReview.ts";

const SHOP: ReviewAnswer = {
  authenticated: true,
  username: "system:serviceaccount:shop:default",
  audiences: ["verso"],
};

/** A review function that counts its calls; `answers` maps token -> answer or "down". */
function reviewer(answers: Record<string, ReviewAnswer | "down">) {
  const calls: { token: string; audiences: string[] }[] = [];
  const review = async (token: string, audiences: string[]): Promise<ReviewAnswer> => {
    calls.push({ token, audiences });
    const a = answers[token];
    if (a === "down" || a === undefined) throw new Error("connect ECONNREFUSED");
    return a;
  };
  return { review, calls, count: (token: string) => calls.filter((c) => c.token === token).length };
}

function setup(answers: Record<string, ReviewAnswer | "down">, maxEntries?: number) {
  let t = 1_000_000;
  const r = reviewer(answers);
  const auth = createAuthenticator(r.review, { now: () => t, maxEntries });
  return {
    ...r,
    at: (ms: number) => (t = 1_000_000 + ms),
    as: (token: string) => auth.authenticate(`Bearer ${token}`),
    cached: () => auth.cached(),
  };
}

const REFUSED: ReviewAnswer = { authenticated: false, error: "invalid bearer token" };

describe("TokenReview cache", () => {
  it("reviews with audience verso and reuses a caller's answer for 30 s", async () => {
    const s = setup({ good: SHOP });
    expect(await s.as("good")).toEqual({
      ok: true,
      caller: { namespace: "shop", serviceAccount: "default" },
    });
    expect(s.calls).toEqual([{ token: "good", audiences: ["verso"] }]);
    s.at(29_999);
    expect((await s.as("good")).ok).toBe(true);
    expect(s.count("good")).toBe(1);
    s.at(30_000);
    expect((await s.as("good")).ok).toBe(true);
    expect(s.count("good")).toBe(2);
    // The new answer is kept for another 30 s from when it came.
    s.at(59_999);
    await s.as("good");
    expect(s.count("good")).toBe(2);
  });

  it.each<[string, ReviewAnswer, number]>([
    ["TokenInvalid", { authenticated: false, error: "invalid bearer token" }, 401],
    ["TokenInvalid", { ...SHOP, audiences: ["kubernetes"] }, 401],
    ["NotServiceAccount", { authenticated: true, username: "alice", audiences: ["verso"] }, 403],
  ])("reuses a refusal (%s) for 5 s only", async (reason, answer, status) => {
    const s = setup({ bad: answer });
    expect(await s.as("bad")).toMatchObject({ ok: false, failure: { reason, status } });
    s.at(4_999);
    expect(await s.as("bad")).toMatchObject({ ok: false, failure: { reason } });
    expect(s.count("bad")).toBe(1);
    s.at(5_000);
    await s.as("bad");
    expect(s.count("bad")).toBe(2);
  });

  it("never caches an unreachable apiserver, and caches the first real answer after it", async () => {
    const answers: Record<string, ReviewAnswer | "down"> = { t: "down" };
    const s = setup(answers);
    for (let i = 0; i < 3; i++) {
      expect(await s.as("t")).toMatchObject({
        ok: false,
        failure: { status: 503, reason: "ReviewUnavailable" },
      });
    }
    expect(s.count("t")).toBe(3);
    answers.t = SHOP;
    expect((await s.as("t")).ok).toBe(true);
    expect((await s.as("t")).ok).toBe(true);
    expect(s.count("t")).toBe(4);
  });

  it("keys by the whole token: another token is reviewed on its own", async () => {
    const s = setup({ a: SHOP, ab: { authenticated: false }, b: SHOP });
    expect((await s.as("a")).ok).toBe(true);
    expect((await s.as("ab")).ok).toBe(false);
    expect((await s.as("b")).ok).toBe(true);
    expect((await s.as("a")).ok).toBe(true);
    expect([s.count("a"), s.count("ab"), s.count("b")]).toEqual([1, 1, 1]);
  });

  it("shares one review among concurrent requests for a token (a reconnect storm)", async () => {
    const s = setup({ good: SHOP });
    const results = await Promise.all(Array.from({ length: 20 }, () => s.as("good")));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(s.count("good")).toBe(1);
  });

  it("drops an expired answer when it is looked up, even if the new review fails", async () => {
    const answers: Record<string, ReviewAnswer | "down"> = { good: SHOP };
    const s = setup(answers);
    await s.as("good");
    expect(s.cached()).toBe(1);
    answers.good = "down";
    s.at(30_000);
    expect(await s.as("good")).toMatchObject({
      ok: false,
      failure: { reason: "ReviewUnavailable" },
    });
    expect(s.cached()).toBe(0);
  });

  it("sweeps expired answers and refusals when a new one is stored", async () => {
    const answers: Record<string, ReviewAnswer | "down"> = {};
    for (let i = 0; i < 50; i++) answers[`good-${i}`] = SHOP;
    for (let i = 0; i < 50; i++) answers[`bad-${i}`] = REFUSED;
    answers.late = SHOP;
    answers.next = SHOP;
    const s = setup(answers);
    for (let i = 0; i < 50; i++) await s.as(`good-${i}`);
    for (let i = 0; i < 50; i++) await s.as(`bad-${i}`);
    expect(s.cached()).toBe(100);
    // 5 s on: the refusals have expired, the answers have not.
    s.at(5_000);
    await s.as("late");
    expect(s.cached()).toBe(51);
    // 30 s on: everything stored at 0 has expired; the answer stored at 5 s has not.
    s.at(30_000);
    await s.as("next");
    expect(s.cached()).toBe(2);
  });

  it("at the bound drops the oldest answer, not the whole cache", async () => {
    const s = setup({ a: SHOP, b: SHOP, c: SHOP, d: SHOP }, 3);
    for (const t of ["a", "b", "c", "d"]) await s.as(t);
    expect(s.cached()).toBe(3);
    for (const t of ["b", "c", "d"]) await s.as(t);
    expect([s.count("b"), s.count("c"), s.count("d")]).toEqual([1, 1, 1]);
    await s.as("a");
    expect(s.count("a")).toBe(2);
  });

  it("at the bound drops refusals before answers: a flood of bad tokens keeps callers cached", async () => {
    const answers: Record<string, ReviewAnswer | "down"> = { a: SHOP, b: SHOP };
    for (let i = 0; i < 20; i++) answers[`bad-${i}`] = REFUSED;
    const s = setup(answers, 3);
    await s.as("a");
    await s.as("b");
    for (let i = 0; i < 20; i++) await s.as(`bad-${i}`);
    expect(s.cached()).toBe(3);
    await s.as("a");
    await s.as("b");
    expect([s.count("a"), s.count("b")]).toEqual([1, 1]);
    // Only the newest refusal is still held.
    await s.as("bad-19");
    await s.as("bad-18");
    expect([s.count("bad-19"), s.count("bad-18")]).toEqual([1, 2]);
  });

  it("refuses a missing or non-Bearer header without a review", async () => {
    const r = reviewer({});
    const auth = createAuthenticator(r.review);
    for (const h of [undefined, "", "Basic YWxpY2U6cHc=", "Bearer "]) {
      expect(await auth.authenticate(h)).toMatchObject({
        ok: false,
        failure: { reason: "NoToken" },
      });
    }
    expect(r.calls).toEqual([]);
  });

  it("runs at most maxInFlight reviews at once, queues maxQueued, tells the rest review_busy", async () => {
    const gates: (() => void)[] = [];
    let running = 0;
    let peak = 0;
    const review = async (): Promise<ReviewAnswer> => {
      running++;
      peak = Math.max(peak, running);
      await new Promise<void>((go) => gates.push(go));
      running--;
      return SHOP;
    };
    const auth = createAuthenticator(review, { maxInFlight: 4, maxQueued: 8 });
    const results = Array.from({ length: 20 }, (_, i) => auth.authenticate(`Bearer t-${i}`));
    // The 8 past the queue are refused at once, without a review.
    const settled = await Promise.all(results.slice(12));
    for (const r of settled) {
      expect(r).toMatchObject({ ok: false, failure: { status: 503, reason: "ReviewBusy" } });
    }
    // The same token as one in flight joins it rather than taking a place.
    const again = auth.authenticate("Bearer t-0");
    expect(gates.length).toBe(4);
    while (gates.length > 0 || running > 0) {
      gates.splice(0).forEach((go) => go());
      await new Promise((r) => setImmediate(r));
    }
    for (const r of await Promise.all([...results.slice(0, 12), again])) {
      expect(r).toMatchObject({ ok: true });
    }
    expect(peak).toBe(4);
  });

  it("gives up a review that never answers: review_unavailable, and its slot serves the next", async () => {
    let calls = 0;
    const review = (token: string): Promise<ReviewAnswer> => {
      calls++;
      // The first review hangs for ever (a dead keep-alive connection); the next answers.
      return token === "hung" ? new Promise<never>(() => undefined) : Promise.resolve(SHOP);
    };
    const auth = createAuthenticator(review, { maxInFlight: 1, reviewTimeoutMs: 50 });
    const hung = auth.authenticate("Bearer hung");
    const next = auth.authenticate("Bearer fine");
    expect(await hung).toMatchObject({
      ok: false,
      failure: { status: 503, reason: "ReviewUnavailable" },
    });
    expect(await next).toMatchObject({ ok: true });
    expect(calls).toBe(2);
  });

  it("frees the slot of a review that throws", async () => {
    let calls = 0;
    const review = async (token: string): Promise<ReviewAnswer> => {
      calls++;
      if (token === "boom") throw new Error("connect ECONNRESET");
      return SHOP;
    };
    const auth = createAuthenticator(review, { maxInFlight: 1, maxQueued: 0 });
    expect(await auth.authenticate("Bearer boom")).toMatchObject({
      failure: { reason: "ReviewUnavailable" },
    });
    expect(await auth.authenticate("Bearer fine")).toMatchObject({ ok: true });
    expect(calls).toBe(2);
  });
});
