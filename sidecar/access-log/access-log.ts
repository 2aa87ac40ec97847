/**
 * The access log (opt-in: `--access-log true`, or `verso.dev/access-log: "true"` through the
 * webhook): one JSON line per request (line.ts) into a bounded buffer (buffer.ts) that stdout
 * drains at its own pace. When off, the proxy holds no AccessLog and builds nothing per request.
 */
import { LineBuffer, type LineSink } from "./buffer.ts";
import { formatAccessLine, type LineContext, type RequestFacts } from "./line.ts";

export type { RequestFacts } from "./line.ts";

export interface AccessLog {
  /** One finished request: formatted now, written later (or dropped, counted, if full). */
  record(facts: RequestFacts): void;
  /** At exit: hand over what is held and wait up to `timeoutMs` for stdout to take it. */
  drain(timeoutMs: number): Promise<boolean>;
}

export interface AccessLogOptions extends LineContext {
  /** Characters held while stdout is slow before lines are dropped. */
  readonly capacity: number;
  readonly sink: LineSink;
  /** Counts lines lost (verso_access_log_dropped_total). */
  readonly onDrop: (lines: number) => void;
}

export function createAccessLog(opts: AccessLogOptions): AccessLog {
  const ctx: LineContext = {
    app: opts.app,
    version: opts.version,
    color: opts.color,
    includeQuery: opts.includeQuery,
  };
  const buffer = new LineBuffer({ capacity: opts.capacity, sink: opts.sink, onDrop: opts.onDrop });
  return {
    record: (facts) => void buffer.push(formatAccessLine(ctx, facts)),
    drain: (timeoutMs) => buffer.drain(timeoutMs),
  };
}
