import { describe, expect, it } from "vitest";
import type { Peer } from "../routing/compile.ts";
import { DOWN_MS, PeerPool } from "./peers.ts";

const peer = (addr: string): Peer => {
  const [host, port] = addr.split(":");
  return { addr, host: host!, port: Number(port), origin: `http://${addr}`, version: "v2" };
};
const A = peer("10.0.0.1:15006");
const B = peer("10.0.0.2:15006");
const C = peer("10.0.0.3:15006");

describe("PeerPool", () => {
  it("spreads idle peers round robin", () => {
    const pool = new PeerPool();
    const picks = Array.from({ length: 6 }, () => pool.pick([A, B, C], 0)!.addr);
    expect(new Set(picks.slice(0, 3)).size).toBe(3);
    expect(picks.slice(3)).toEqual(picks.slice(0, 3));
  });

  it("prefers the peer with the fewest outstanding requests", () => {
    const pool = new PeerPool();
    pool.acquire(A.addr);
    pool.acquire(A.addr);
    pool.acquire(B.addr);
    for (let i = 0; i < 5; i++) expect(pool.pick([A, B, C], 0)).toBe(C);
    pool.release(A.addr);
    pool.release(A.addr);
    pool.acquire(C.addr);
    for (let i = 0; i < 5; i++) expect(pool.pick([A, B, C], 0)).toBe(A);
  });

  it("skips a peer marked down until DOWN_MS has passed, and peers already tried", () => {
    const pool = new PeerPool();
    pool.markDown(A.addr, 1_000);
    for (let i = 0; i < 5; i++) expect(pool.pick([A, B], 1_000)).toBe(B);
    expect(pool.pick([A, B], 1_000, new Set([B.addr]))).toBeUndefined();
    expect(pool.pick([A, B], 1_000 + DOWN_MS + 1, new Set([B.addr]))).toBe(A);
  });

  it("no peers -> undefined", () => {
    expect(new PeerPool().pick([], 0)).toBeUndefined();
  });
});
