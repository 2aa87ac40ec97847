import { describe, expect, it } from "vitest";
import {
  accessLine,
  formatAccessLine,
  loggedPath,
  traceIdOf,
  type LineContext,
  type RequestFacts,
} from "./line.ts";

const ctx: LineContext = { app: "shop", version: "v1", color: undefined, includeQuery: false };
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const facts = (over: Partial<RequestFacts> = {}): RequestFacts => ({
  startMs: Date.UTC(2026, 10, 29, 12, 0, 0, 123),
  durationMs: 1.23456789,
  route: "no-release",
  peer: undefined,
  fallback: undefined,
  method: "GET",
  target: "/cart/items?user=42&token=secret",
  status: 200,
  bytes: 512,
  traceparent: null,
  ...over,
});

describe("formatAccessLine", () => {
  it("served here: every documented field, in order, one line", () => {
    const line = formatAccessLine(ctx, facts());
    expect(line.endsWith("\n")).toBe(true);
    expect(line.indexOf("\n")).toBe(line.length - 1);
    expect(JSON.parse(line)).toEqual({
      time: "2026-11-29T12:00:00.123Z",
      app: "shop",
      version: "v1",
      route: "no-release",
      forwarded: false,
      servedBy: "v1",
      method: "GET",
      path: "/cart/items",
      status: 200,
      bytes: 512,
      durationMs: 1.235,
      upstream: "local",
    });
    expect(Object.keys(JSON.parse(line) as object)).toEqual([
      "time",
      "app",
      "version",
      "route",
      "forwarded",
      "servedBy",
      "method",
      "path",
      "status",
      "bytes",
      "durationMs",
      "upstream",
    ]);
  });

  it("forwarded: the peer's version and address, the colour and the trace id", () => {
    const line = accessLine(
      { ...ctx, color: "blue" },
      facts({
        route: "match",
        peer: { addr: "10.0.0.7:15006", version: "v2" },
        traceparent: `00-${TRACE}-00f067aa0ba902b7-01`,
      }),
    );
    expect(line).toMatchObject({
      color: "blue",
      route: "match",
      forwarded: true,
      servedBy: "v2",
      upstream: "10.0.0.7:15006",
      traceId: TRACE,
    });
  });

  it("fallback: the wanted version is named, the request served here", () => {
    const line = accessLine(ctx, facts({ route: "random", fallback: "v2", status: 502 }));
    expect(line).toMatchObject({
      route: "random",
      fallback: "v2",
      forwarded: false,
      servedBy: "v1",
      upstream: "local",
      status: 502,
    });
  });

  it("escapes what the client controls: the line stays one valid JSON object", () => {
    const line = formatAccessLine(
      ctx,
      facts({ method: 'GE"T', target: '/a"b\\c\n{"x":1}\u2028?q' }),
    );
    expect(line.split("\n")).toHaveLength(2);
    expect(JSON.parse(line)).toMatchObject({ method: 'GE"T', path: '/a"b\\c\n{"x":1}\u2028' });
  });

  it("keeps the query only when asked", () => {
    const line = accessLine({ ...ctx, includeQuery: true }, facts());
    expect(line.path).toBe("/cart/items?user=42&token=secret");
  });
});

describe("loggedPath", () => {
  it.each([
    ["/a/b?c=d", false, "/a/b"],
    ["/a/b?c=d", true, "/a/b?c=d"],
    ["/a/b", false, "/a/b"],
    ["/?", false, "/"],
    ["/a?b?c", false, "/a"],
  ])("%s (query %s) -> %s", (target, q, want) => expect(loggedPath(target, q)).toBe(want));
});

describe("traceIdOf", () => {
  it.each([
    [null, undefined],
    [`00-${TRACE}-00f067aa0ba902b7-01`, TRACE],
    [`00-${TRACE}-00f067aa0ba902b7-00`, TRACE],
    // A later version may add fields after a dash; version 00 may not.
    [`01-${TRACE}-00f067aa0ba902b7-01-what-comes-next`, TRACE],
    [`00-${TRACE}-00f067aa0ba902b7-01-extra`, undefined],
    [`ff-${TRACE}-00f067aa0ba902b7-01`, undefined],
    [`00-${"0".repeat(32)}-00f067aa0ba902b7-01`, undefined],
    [`00-${TRACE}-${"0".repeat(16)}-01`, undefined],
    [`00-${TRACE.toUpperCase()}-00f067aa0ba902b7-01`, undefined],
    [`00-${TRACE.slice(1)}-00f067aa0ba902b7-01`, undefined],
    // Two traceparent fields, joined by Headers.get: not one valid header.
    [`00-${TRACE}-00f067aa0ba902b7-01, 00-${TRACE}-00f067aa0ba902b7-01`, undefined],
    ["garbage", undefined],
  ])("%s -> %s", (header, want) => expect(traceIdOf(header)).toBe(want));
});
