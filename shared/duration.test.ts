import { describe, expect, it } from "vitest";
import { parseDuration } from "./duration.ts";

describe("parseDuration", () => {
  it.each([
    ["0", 0],
    ["0s", 0],
    ["500ms", 500],
    ["30s", 30_000],
    ["1m", 60_000],
    ["1h30m", 5_400_000],
    ["1.5s", 1_500],
    [" 2m ", 120_000],
  ])("%j -> %d ms", (text, ms) => expect(parseDuration(text)).toEqual({ ok: true, value: ms }));

  it.each(["", "5", "00", "1d", "1m30", "-1s", "s"])("%j is refused with a hint", (text) => {
    const r = parseDuration(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/duration/);
  });
});
