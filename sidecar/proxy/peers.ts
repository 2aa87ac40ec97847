/**
 * Peer selection: least outstanding requests, ties broken round robin; a peer that refused or
 * reset is skipped for DOWN_MS. State is keyed by address so it survives table changes.
 */
import type { Peer } from "../routing/compile.ts";

export const DOWN_MS = 5_000;

interface PeerState {
  outstanding: number;
  downUntil: number;
}

export class PeerPool {
  private readonly state = new Map<string, PeerState>();
  private turn = 0;

  private stateOf(addr: string): PeerState {
    let s = this.state.get(addr);
    if (!s) {
      s = { outstanding: 0, downUntil: 0 };
      this.state.set(addr, s);
    }
    return s;
  }

  /** A live peer not in `tried`, or undefined when none is left. */
  pick(peers: readonly Peer[], nowMs: number, tried?: ReadonlySet<string>): Peer | undefined {
    const n = peers.length;
    if (n === 0) return undefined;
    const start = this.turn++ % n;
    let best: Peer | undefined;
    let bestLoad = Infinity;
    for (let i = 0; i < n; i++) {
      const p = peers[(start + i) % n]!;
      if (tried?.has(p.addr)) continue;
      const s = this.stateOf(p.addr);
      if (s.downUntil > nowMs) continue;
      if (s.outstanding < bestLoad) {
        best = p;
        bestLoad = s.outstanding;
      }
    }
    if (this.turn > 1e9) this.turn = 0;
    return best;
  }

  acquire(addr: string): void {
    this.stateOf(addr).outstanding++;
  }

  release(addr: string): void {
    const s = this.stateOf(addr);
    if (s.outstanding > 0) s.outstanding--;
  }

  markDown(addr: string, nowMs: number): void {
    this.stateOf(addr).downUntil = nowMs + DOWN_MS;
  }

  /** Forget peers no longer in any table (bounded memory across endpoint churn). */
  retain(addrs: ReadonlySet<string>): void {
    for (const [addr, s] of this.state) {
      if (!addrs.has(addr) && s.outstanding === 0) this.state.delete(addr);
    }
  }
}
