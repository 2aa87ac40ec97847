/**
 * The proxy's stdout as a LineSink, through Bun's FileSink: its writes never block the event
 * loop (measured: process.stdout and Bun.write each misbehave on a pipe nobody reads, the
 * first holding everything in memory, the second blocking the process), and `flush()` says
 * whether the pipe took the chunk (a number) or is backed up (a promise, settled once it caught
 * up), which is what LineBuffer needs to hold and then drop instead.
 */
import type { LineSink } from "./buffer.ts";

export function stdoutSink(): LineSink {
  const out = Bun.stdout.writer();
  return {
    write(chunk) {
      out.write(chunk);
      const flushed = out.flush();
      return typeof flushed === "number" ? undefined : flushed;
    },
  };
}
