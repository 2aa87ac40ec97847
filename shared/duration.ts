/** Go-style durations as users write them in annotations: `500ms`, `30s`, `1m`, `1h30m`. */
import { err, ok, type Result } from "./errors.ts";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(text: string): Result<number> {
  const s = text.trim();
  if (s === "") return err("empty duration");
  // A bare 0 needs no unit, as in Go's time.ParseDuration.
  if (s === "0") return ok(0);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    consumed = re.lastIndex;
  }
  if (consumed !== s.length || consumed === 0) {
    return err(
      `bad duration ${JSON.stringify(text)}: use a number with ms, s, m or h, e.g. "30s" or "1m"`,
    );
  }
  return ok(total);
}
