/**
 * Duration flags of the webhook and controller: one format, Go-style (`500ms`, `5s`, `10m`,
 * shared/duration.ts, the same as the duration annotations). Two older spellings still work,
 * each with a deprecation message naming the new one, printed once at start, so an existing
 * Deployment or Helm values file keeps running while its owner is told what to write:
 *
 *   a bare number (`--drain-delay 5`)             -> seconds, as the proxy's `-seconds` flags
 *   a renamed flag (`--tls-poll-interval-ms 200`) -> its unit is in the old name
 *
 * Pure: text in, milliseconds and an optional deprecation out.
 */
import { parseDuration } from "../shared/duration.ts";
import { err, ok, type Result } from "../shared/errors.ts";

export interface FlagDuration {
  readonly ms: number;
  /** Set when an old spelling was used: what to write instead. */
  readonly deprecation?: string;
}

const BARE_NUMBER = /^\d+(\.\d+)?$/;

/** `--flag TEXT` for a duration flag: Go-style, or a bare number of seconds (deprecated). */
export function parseFlagDuration(flag: string, text: string): Result<FlagDuration> {
  const s = text.trim();
  // "0" is a duration in its own right (as in Go), not a deprecated bare number.
  if (BARE_NUMBER.test(s) && s !== "0") {
    const ms = Math.round(Number(s) * 1000);
    return ok({
      ms,
      deprecation: `--${flag} ${s}: a bare number of seconds is deprecated, write --${flag} ${formatDuration(ms)}`,
    });
  }
  const d = parseDuration(s);
  return d.ok ? ok({ ms: d.value }) : err(`--${flag}: ${d.error}`);
}

/** `--oldFlag N` where the old name carried the unit (ms): deprecated for `--newFlag DUR`. */
export function parseRenamedMsFlag(
  oldFlag: string,
  newFlag: string,
  text: string,
): Result<FlagDuration> {
  const s = text.trim();
  if (!/^\d+$/.test(s)) {
    return err(`--${oldFlag} ${text}: use --${newFlag} with a duration, e.g. 10s`);
  }
  const ms = Number(s);
  return ok({
    ms,
    deprecation: `--${oldFlag} is deprecated, write --${newFlag} ${formatDuration(ms)}`,
  });
}

/** Milliseconds in the largest unit that is exact: 250 -> 250ms, 5000 -> 5s, 600000 -> 10m. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  if (!Number.isInteger(ms / 1000)) return `${ms}ms`;
  const s = ms / 1000;
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}
