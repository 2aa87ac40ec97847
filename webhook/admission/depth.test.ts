import { describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "./depth.ts";

const deep = (n: number, open = "[", close = "]"): string => open.repeat(n) + close.repeat(n);
const bytes = (s: string): Uint8Array => Buffer.from(s, "utf8");

describe("nestsDeeperThan", () => {
  it("counts arrays and objects together, up to and past the limit", () => {
    expect(nestsDeeperThan(bytes(deep(3)), 3)).toBe(false);
    expect(nestsDeeperThan(bytes(deep(4)), 3)).toBe(true);
    expect(nestsDeeperThan(bytes('{"a":[{"b":[1]}]}'), 4)).toBe(false);
    expect(nestsDeeperThan(bytes('{"a":[{"b":[1]}]}'), 3)).toBe(true);
  });

  it("counts depth at once, not brackets in total", () => {
    expect(
      nestsDeeperThan(bytes(`[${Array.from({ length: 1000 }, () => "[1]").join(",")}]`), 2),
    ).toBe(false);
  });

  it("ignores brackets inside strings, escaped quotes included", () => {
    expect(nestsDeeperThan(bytes(`["${"[".repeat(100)}"]`), 1)).toBe(false);
    expect(nestsDeeperThan(bytes(`["\\"${"{".repeat(100)}"]`), 1)).toBe(false);
    expect(nestsDeeperThan(bytes(`["\\\\", [[1]]]`), 2)).toBe(true);
  });

  it("an unterminated opening run is as deep as it is long", () => {
    expect(nestsDeeperThan(bytes("[".repeat(100_000)), MAX_JSON_DEPTH)).toBe(true);
  });

  it("multi-byte UTF-8 is scanned exactly", () => {
    expect(nestsDeeperThan(bytes(`["é[ü{", {"ß": ["😀"]}]`), 3)).toBe(false);
  });

  it("100k levels and a 2 MB flat body take well under 200 ms", () => {
    const text = bytes(deep(100_000, '{"a":', "}"));
    const t = performance.now();
    expect(nestsDeeperThan(text, MAX_JSON_DEPTH)).toBe(true);
    const flat = bytes(`[${"1,".repeat(1_000_000)}1]`);
    expect(nestsDeeperThan(flat, MAX_JSON_DEPTH)).toBe(false);
    expect(performance.now() - t).toBeLessThan(200);
  });
});
