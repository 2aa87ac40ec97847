import { describe, expect, it } from "vitest";
import { FLUSH_DELAY_MS, LineBuffer, type LineSink } from "./buffer.ts";

/** A sink that takes chunks at once, or holds them until released (a pipe nobody reads). */
function fakeSink() {
  const chunks: string[] = [];
  let stalled = false;
  let release: (() => void) | undefined;
  let fail: ((e: Error) => void) | undefined;
  const sink: LineSink = {
    write(chunk) {
      chunks.push(chunk);
      if (!stalled) return undefined;
      return new Promise<void>((resolve, reject) => {
        release = resolve;
        fail = reject;
      });
    },
  };
  return {
    sink,
    chunks,
    stall: () => (stalled = true),
    unstall: () => {
      stalled = false;
      release?.();
    },
    fail: () => fail?.(new Error("EPIPE")),
  };
}

/** The buffer with its flushes run by hand (`run()`), and its drops counted. */
function setup(capacity = 100) {
  const out = fakeSink();
  const queued: (() => void)[] = [];
  let dropped = 0;
  const buffer = new LineBuffer({
    capacity,
    sink: out.sink,
    onDrop: (n) => (dropped += n),
    schedule: (f) => queued.push(f),
  });
  const run = (): void => {
    for (const f of queued.splice(0)) f();
  };
  return { out, buffer, run, queued, dropped: () => dropped };
}

const settle = () => new Promise((r) => setImmediate(r));

describe("LineBuffer", () => {
  it("writes nothing during the request: lines go out together, later", () => {
    const { out, buffer, run, queued } = setup();
    buffer.push("a\n");
    buffer.push("b\n");
    expect(out.chunks).toEqual([]);
    expect(queued).toHaveLength(1); // one flush scheduled, whatever the number of lines
    run();
    expect(out.chunks).toEqual(["a\nb\n"]);
    expect(buffer.held).toBe(0);
  });

  it("holds lines while the output is backed up, then sends them as one batch", async () => {
    const { out, buffer, run, queued } = setup();
    out.stall();
    buffer.push("1\n");
    run();
    buffer.push("2\n");
    buffer.push("3\n");
    // No flush is scheduled while the output has not taken the last batch.
    expect(queued).toHaveLength(0);
    expect(buffer.held).toBe(4);
    out.unstall();
    await settle();
    run();
    expect(out.chunks).toEqual(["1\n", "2\n3\n"]);
  });

  it("drops and counts when full, never blocks, and recovers once the output catches up", async () => {
    const { out, buffer, run, dropped } = setup(10);
    out.stall();
    buffer.push("first\n");
    run(); // handed to the stalled output: no longer held here
    const kept = ["1234\n", "5678\n", "9abc\n", "def0\n"].map((l) => buffer.push(l));
    expect(kept).toEqual([true, true, false, false]);
    expect(buffer.held).toBe(10);
    expect(dropped()).toBe(2);
    out.unstall();
    await settle();
    run();
    expect(out.chunks).toEqual(["first\n", "1234\n5678\n"]);
    expect(buffer.push("after\n")).toBe(true);
    run();
    expect(out.chunks.at(-1)).toBe("after\n");
    expect(dropped()).toBe(2);
  });

  it("counts the lines of a batch the output lost (rejected or thrown)", async () => {
    const { out, buffer, run, dropped } = setup();
    out.stall();
    buffer.push("x\n");
    buffer.push("y\n");
    run();
    out.fail();
    await settle();
    expect(dropped()).toBe(2);
    let lost = 0;
    const throwing = new LineBuffer({
      capacity: 100,
      sink: {
        write() {
          throw new Error("closed");
        },
      },
      onDrop: (n) => (lost += n),
      schedule: (f) => f(),
    });
    throwing.push("z\n");
    expect(lost).toBe(1);
  });

  it("drain: hands everything over and waits for a slow output, up to a deadline", async () => {
    const { out, buffer } = setup();
    out.stall();
    buffer.push("last\n");
    const drained = buffer.drain(5_000);
    setTimeout(() => out.unstall(), 20);
    expect(await drained).toBe(true);
    expect(out.chunks).toEqual(["last\n"]);

    const stuck = setup();
    stuck.out.stall();
    stuck.buffer.push("never\n");
    const t0 = Date.now();
    expect(await stuck.buffer.drain(50)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it("by default lines gather for FLUSH_DELAY_MS, then go out as one write", async () => {
    const out = fakeSink();
    const buffer = new LineBuffer({ capacity: 100, sink: out.sink, onDrop: () => undefined });
    buffer.push("a\n");
    await settle();
    buffer.push("b\n");
    expect(out.chunks).toEqual([]); // not during the request, nor right after it
    await new Promise((r) => setTimeout(r, FLUSH_DELAY_MS + 20));
    expect(out.chunks).toEqual(["a\nb\n"]);
  });
});
