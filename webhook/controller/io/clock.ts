/**
 * Time for the release loop and its helpers: the wall clock and timers, passed in so that
 * tests move time by hand (manualClock.ts) instead of sleeping.
 */
export type TimerHandle = { readonly __timer: unique symbol };

export interface Clock {
  now(): number;
  /** Runs `fn` once after `ms`; never keeps the process alive on its own. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  /** Runs `fn` every `ms`; never keeps the process alive on its own. */
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
}

type NodeTimer = ReturnType<typeof setTimeout>;

export const systemClock: Clock = {
  now: Date.now,
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t as unknown as TimerHandle;
  },
  clearTimeout: (h) => clearTimeout(h as unknown as NodeTimer | undefined),
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref();
    return t as unknown as TimerHandle;
  },
  clearInterval: (h) => clearInterval(h as unknown as NodeTimer | undefined),
};
