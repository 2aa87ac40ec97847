import { describe, expect, it } from "vitest";
import { formatDuration, parseFlagDuration, parseRenamedMsFlag } from "./flagDuration.ts";

describe("parseFlagDuration", () => {
  it.each([
    // text, ms, deprecation (undefined: the current spelling)
    ["5s", 5_000, undefined],
    ["250ms", 250, undefined],
    ["1m30s", 90_000, undefined],
    ["0", 0, undefined],
    ["0s", 0, undefined],
    ["5", 5_000, "--drain-delay 5: a bare number of seconds is deprecated, write --drain-delay 5s"],
    [
      "0.5",
      500,
      "--drain-delay 0.5: a bare number of seconds is deprecated, write --drain-delay 500ms",
    ],
    [
      "600",
      600_000,
      "--drain-delay 600: a bare number of seconds is deprecated, write --drain-delay 10m",
    ],
  ])("%j -> %d ms, deprecation %j", (text, ms, deprecation) => {
    expect(parseFlagDuration("drain-delay", text)).toEqual({
      ok: true,
      value: deprecation === undefined ? { ms } : { ms, deprecation },
    });
  });

  it.each(["", "-5", "5d", "s", "1m30", "five"])("%j is refused naming the flag", (text) => {
    const r = parseFlagDuration("drain-delay", text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/^--drain-delay: bad duration|^--drain-delay: empty/);
  });
});

describe("parseRenamedMsFlag", () => {
  it.each([
    ["200", 200, "--tls-poll-interval-ms is deprecated, write --tls-poll-interval 200ms"],
    ["10000", 10_000, "--tls-poll-interval-ms is deprecated, write --tls-poll-interval 10s"],
  ])("%j -> %d ms with %j", (text, ms, deprecation) => {
    expect(parseRenamedMsFlag("tls-poll-interval-ms", "tls-poll-interval", text)).toEqual({
      ok: true,
      value: { ms, deprecation },
    });
  });

  it.each(["10s", "-1", "1.5", ""])("%j is refused, pointing at the new flag", (text) => {
    const r = parseRenamedMsFlag("tls-poll-interval-ms", "tls-poll-interval", text);
    expect(!r.ok && r.error).toMatch(/use --tls-poll-interval with a duration/);
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0"],
    [250, "250ms"],
    [1_500, "1500ms"],
    [5_000, "5s"],
    [90_000, "90s"],
    [600_000, "10m"],
    [7_200_000, "2h"],
  ])("%d ms -> %j", (ms, text) => expect(formatDuration(ms)).toBe(text));
});
