import { describe, expect, it } from "vitest";
import { SseParser } from "./sse.ts";

const STREAM =
  ': hb\n\nevent: table\nid: 7\ndata: {"app":"shop"}\n\n: hb\r\n\r\nevent: table\r\nid: 8\r\ndata: a\r\ndata: b\r\n\r\n';

describe("SseParser", () => {
  it("parses events, ids, multi-line data and ignores heartbeats", () => {
    const events = new SseParser().push(STREAM);
    expect(events).toEqual([
      { event: "table", id: "7", data: '{"app":"shop"}' },
      { event: "table", id: "8", data: "a\nb" },
    ]);
  });

  it("gives the same events however the bytes are split", () => {
    for (let size = 1; size <= 7; size++) {
      const p = new SseParser();
      const got = [];
      for (let i = 0; i < STREAM.length; i += size) got.push(...p.push(STREAM.slice(i, i + size)));
      expect(got.map((e) => e.id)).toEqual(["7", "8"]);
      expect(got[1]?.data).toBe("a\nb");
    }
  });

  it("keeps the last id across events and defaults the event name to message", () => {
    const events = new SseParser().push("id: 3\ndata: x\n\ndata: y\n\n");
    expect(events).toEqual([
      { event: "message", id: "3", data: "x" },
      { event: "message", id: "3", data: "y" },
    ]);
  });

  it("refuses an unbounded line", () => {
    const p = new SseParser(16);
    expect(() => p.push("data: " + "x".repeat(64))).toThrow();
  });
});
