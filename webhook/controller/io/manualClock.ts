/**
 * A Clock whose time moves only when a test says so (`advance`): timers fire in due order as
 * time passes them, so a test of the release loop runs in microseconds and never sleeps.
 */
import type { Clock, TimerHandle } from "./clock.ts";

interface Timer {
  id: number;
  due: number;
  fn: () => void;
  /** Repeat period of an interval; undefined for a one-shot timer. */
  every?: number;
}

export interface ManualClock extends Clock {
  /** Moves time forward by `ms`, firing every timer it passes (and letting promises settle). */
  advance(ms: number): Promise<void>;
  /** Lets pending promise chains (an in-memory API's answers) settle without moving time. */
  settle(): Promise<void>;
  /** Timers armed now. */
  pending(): number;
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
};

export function createManualClock(start = Date.parse("2026-01-01T00:00:00Z")): ManualClock {
  let t = start;
  let nextId = 1;
  const timers = new Map<number, Timer>();
  const add = (fn: () => void, ms: number, every?: number): TimerHandle => {
    const id = nextId++;
    timers.set(id, { id, due: t + Math.max(0, ms), fn, every });
    return id as unknown as TimerHandle;
  };
  const clear = (h: TimerHandle | undefined): void => {
    if (h !== undefined) timers.delete(h as unknown as number);
  };
  return {
    now: () => t,
    setTimeout: (fn, ms) => add(fn, ms),
    clearTimeout: clear,
    setInterval: (fn, ms) => add(fn, ms, Math.max(1, ms)),
    clearInterval: clear,
    pending: () => timers.size,
    settle,
    async advance(ms) {
      const end = t + ms;
      await settle();
      for (;;) {
        const next = [...timers.values()]
          .filter((x) => x.due <= end)
          .sort((a, b) => a.due - b.due || a.id - b.id)[0];
        if (!next) break;
        t = Math.max(t, next.due);
        if (next.every === undefined) timers.delete(next.id);
        else next.due += next.every;
        next.fn();
        await settle();
      }
      t = end;
      await settle();
    },
  };
}
