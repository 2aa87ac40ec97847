/**
 * Who is calling the route stream: the proxy's projected service-account token (audience
 * `verso`), checked with a TokenReview. Answers are cached by a hash of the token (never the
 * token itself) for a short while, so a reconnect storm costs one review per pod; the cache is
 * bounded by dropping expired and then oldest entries, never by emptying it (which would turn
 * one new token into a review for every pod).
 *
 * Reviews of distinct tokens run at most `maxInFlight` at a time, with at most `maxQueued`
 * waiting: a flood of made-up tokens on the open stream port cannot turn into a flood of
 * TokenReviews on the apiserver. Past the queue a caller is told 503 review_busy at once; the
 * proxies' stream clients reconnect with backoff, so a restart storm of many pods drains.
 */
import { createHash } from "node:crypto";
import { TOKEN_AUDIENCE } from "../../../shared/pod-env.ts";

export interface ReviewAnswer {
  authenticated: boolean;
  username?: string;
  audiences?: string[];
  error?: string;
}

/** One TokenReview call (the apiserver edge), injected so tests can use a real apiserver. */
export type ReviewFn = (token: string, audiences: string[]) => Promise<ReviewAnswer>;

export type Caller = { namespace: string; serviceAccount: string };

export type AuthFailure = {
  status: 401 | 403 | 503;
  reason: "NoToken" | "TokenInvalid" | "NotServiceAccount" | "ReviewUnavailable" | "ReviewBusy";
  message: string;
};

export type AuthResult = { ok: true; caller: Caller } | { ok: false; failure: AuthFailure };

const SA = /^system:serviceaccount:([^:]+):([^:]+)$/;

const refuse = (
  status: AuthFailure["status"],
  reason: AuthFailure["reason"],
  message: string,
): AuthResult => ({ ok: false, failure: { status, reason, message } });

/** Pure: a review answer -> the caller or why not. */
export function judge(answer: ReviewAnswer): AuthResult {
  if (!answer.authenticated) {
    return refuse(401, "TokenInvalid", answer.error || "the token was not accepted");
  }
  if (answer.audiences && !answer.audiences.includes(TOKEN_AUDIENCE)) {
    return refuse(401, "TokenInvalid", `the token is not for audience "${TOKEN_AUDIENCE}"`);
  }
  const m = SA.exec(answer.username ?? "");
  if (!m) {
    return refuse(
      403,
      "NotServiceAccount",
      `${answer.username ?? "caller"} is not a service account`,
    );
  }
  return { ok: true, caller: { namespace: m[1] as string, serviceAccount: m[2] as string } };
}

/** "Bearer <token>" -> token; undefined when absent or malformed. */
export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return m?.[1];
}

export interface Authenticator {
  authenticate(authorization: string | undefined): Promise<AuthResult>;
  /** Answers held now (expired ones included until they are swept); exported as a gauge. */
  cached(): number;
}

type Entry = { result: AuthResult; until: number };

/**
 * Answers by token hash. One map per period, so each map is in expiry order (insertion order
 * plus a fixed period): expired entries are dropped from the front on every insert, at a cost
 * of one step per expired entry. Past `max`, the oldest refusal goes first and then the oldest
 * answer, so a flood of bad tokens churns refusals and leaves callers' answers in place.
 */
function createCache(max: number) {
  const answers = new Map<string, Entry>();
  const refusals = new Map<string, Entry>();
  const dropExpired = (map: Map<string, Entry>, at: number): void => {
    for (const [key, e] of map) {
      if (e.until > at) return;
      map.delete(key);
    }
  };
  const dropOldest = (map: Map<string, Entry>): boolean => {
    const first = map.keys().next();
    return !first.done && map.delete(first.value);
  };
  return {
    get(key: string, at: number): AuthResult | undefined {
      const e = answers.get(key) ?? refusals.get(key);
      if (!e) return undefined;
      if (e.until > at) return e.result;
      answers.delete(key);
      refusals.delete(key);
      return undefined;
    },
    set(key: string, result: AuthResult, until: number, at: number): void {
      answers.delete(key);
      refusals.delete(key);
      dropExpired(answers, at);
      dropExpired(refusals, at);
      while (answers.size + refusals.size >= max) {
        if (!dropOldest(refusals) && !dropOldest(answers)) break;
      }
      (result.ok ? answers : refusals).set(key, { result, until });
    },
    size: () => answers.size + refusals.size,
  };
}

/** At most `max` tasks at once and `queue` waiting; `undefined` from `run` when both are full. */
function createLimiter(max: number, queue: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
  return {
    run<T>(task: () => Promise<T>): Promise<T> | undefined {
      if (running < max) running++;
      else if (waiting.length >= queue) return undefined;
      else {
        // The slot is handed over by `release` without dropping `running`.
        return new Promise<void>((go) => waiting.push(go)).then(() => task().finally(release));
      }
      return task().finally(release);
    },
  };
}

export interface AuthenticatorOptions {
  /** How long a caller's answer is reused (30 s). */
  ttlMs?: number;
  /** How long a refusal is reused (5 s). */
  negativeTtlMs?: number;
  now?: () => number;
  /** Answers held (10,000). */
  maxEntries?: number;
  /** TokenReviews of distinct tokens at once (16). */
  maxInFlight?: number;
  /** Reviews waiting for a slot before callers are told review_busy (1,000). */
  maxQueued?: number;
  /**
   * A review not answered in this long is given up (10 s): the caller is told
   * review_unavailable and the slot is free, so reviews hung on a dead connection (after an
   * apiserver failover) cannot hold every slot.
   */
  reviewTimeoutMs?: number;
}

/** `p`, or a rejection after `ms`; the timer never outlives the answer. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

export function createAuthenticator(
  review: ReviewFn,
  options: AuthenticatorOptions = {},
): Authenticator {
  const ttl = options.ttlMs ?? 30_000;
  const negativeTtl = options.negativeTtlMs ?? 5_000;
  const now = options.now ?? Date.now;
  const cache = createCache(Math.max(1, options.maxEntries ?? 10_000));
  const inflight = new Map<string, Promise<AuthResult>>();
  const reviewTimeoutMs = options.reviewTimeoutMs ?? 10_000;
  const limiter = createLimiter(
    Math.max(1, options.maxInFlight ?? 16),
    Math.max(0, options.maxQueued ?? 1_000),
  );

  return {
    cached: cache.size,
    async authenticate(authorization) {
      const token = bearer(authorization);
      if (!token) {
        return refuse(
          401,
          "NoToken",
          "send Authorization: Bearer <service-account token with audience verso>",
        );
      }
      const key = createHash("sha256").update(token).digest("base64url");
      const hit = cache.get(key, now());
      if (hit) return hit;
      const pending = inflight.get(key);
      if (pending) return pending;
      const p = limiter.run(async (): Promise<AuthResult> => {
        try {
          const result = judge(await within(review(token, [TOKEN_AUDIENCE]), reviewTimeoutMs));
          const at = now();
          cache.set(key, result, at + (result.ok ? ttl : negativeTtl), at);
          return result;
        } catch (error) {
          // Not cached: the apiserver being away says nothing about the token.
          return refuse(
            503,
            "ReviewUnavailable",
            `cannot review the token now: ${(error as Error).message}`,
          );
        } finally {
          inflight.delete(key);
        }
      });
      if (!p) {
        return refuse(503, "ReviewBusy", "too many token reviews in progress; retry shortly");
      }
      inflight.set(key, p);
      return p;
    },
  };
}
