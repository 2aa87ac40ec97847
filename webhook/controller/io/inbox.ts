/**
 * Events that arrived for a release between two reconciles (gate answers, proxies' cut-offs),
 * kept by Deployment uid until the next reconcile hands them to the machine. `at` is when each
 * arrived: the start of the rollback clock (verso_release_rollback_seconds).
 */
import type { ReleaseEvent } from "../decide/machine.ts";

export interface Arrival {
  event: ReleaseEvent;
  at: number;
}

export interface Inbox {
  push(uid: string, arrival: Arrival): void;
  /** Everything queued for `uid`, in arrival order; the queue is emptied. */
  take(uid: string): Arrival[];
  /** A reconcile that could not write gives its events back, ahead of newer ones. */
  putBack(uid: string, arrivals: Arrival[]): void;
}

export function createInbox(): Inbox {
  const queues = new Map<string, Arrival[]>();
  return {
    push(uid, a) {
      const q = queues.get(uid) ?? [];
      q.push(a);
      queues.set(uid, q);
    },
    take(uid) {
      const q = queues.get(uid) ?? [];
      queues.delete(uid);
      return q;
    },
    putBack(uid, arrivals) {
      if (arrivals.length === 0) return;
      queues.set(uid, [...arrivals, ...(queues.get(uid) ?? [])]);
    },
  };
}
