import { describe, expect, it } from "vitest";
import {
  deadlineTimerMs,
  encodeGrpcMessage,
  grpcCode,
  grpcCodeClass,
  parseGrpcTimeout,
  trailersOnly,
} from "./status.ts";

describe("grpcCodeClass: the standard gRPC-to-HTTP mapping by class (mirrors the table)", () => {
  const rows: [number, string][] = [
    [0, "2xx"],
    ...[1, 3, 5, 6, 7, 9, 11, 16].map((c): [number, string] => [c, "4xx"]),
    ...[2, 4, 8, 10, 12, 13, 14, 15, 17, 99].map((c): [number, string] => [c, "5xx"]),
  ];
  for (const [code, cls] of rows)
    it(`${code} -> ${cls}`, () => expect(grpcCodeClass(code)).toBe(cls));
});

describe("grpcCode", () => {
  it("reads a status; absent or malformed is UNKNOWN (2)", () => {
    expect(grpcCode("14")).toBe(14);
    expect(grpcCode(["0"])).toBe(0);
    expect(grpcCode(undefined)).toBe(2);
    expect(grpcCode("ok")).toBe(2);
    expect(grpcCode("123")).toBe(2);
  });
});

describe("parseGrpcTimeout", () => {
  const rows: [string | undefined, number | undefined][] = [
    ["1H", 3_600_000],
    ["2M", 120_000],
    ["3S", 3_000],
    ["250m", 250],
    ["1500u", 1.5],
    ["2000000n", 2],
    ["12345678m", 12_345_678],
    ["123456789m", undefined], // 9 digits: over the spec's 8
    ["10", undefined],
    ["-1S", undefined],
    [undefined, undefined],
  ];
  for (const [text, ms] of rows)
    it(`${String(text)} -> ${String(ms)}`, () => expect(parseGrpcTimeout(text)).toBe(ms));
});

describe("deadlineTimerMs: what the proxy's own deadline timer is armed with", () => {
  it("a usual deadline as is; none without grpc-timeout; none past what a timer holds", () => {
    expect(deadlineTimerMs("250m")).toBe(250);
    expect(deadlineTimerMs("24H")).toBe(86_400_000);
    expect(deadlineTimerMs(undefined)).toBeUndefined();
    // grpc-go's "no deadline" is 30 days: armed, a timer would fire at once (it did, tested).
    expect(deadlineTimerMs("2592000S")).toBeUndefined();
    expect(deadlineTimerMs("99999999H")).toBeUndefined();
  });
});

describe("trailers-only answers", () => {
  it("percent-encodes grpc-message as the spec says (printable ASCII but %, UTF-8 bytes)", () => {
    expect(encodeGrpcMessage("no upstream: 100% down")).toBe("no upstream: 100%25 down");
    expect(encodeGrpcMessage("é\n")).toBe("%C3%A9%0A");
  });
  it("is HTTP 200 with the status in the one header block", () => {
    expect(trailersOnly(14, "gone")).toEqual({
      ":status": 200,
      "content-type": "application/grpc",
      "grpc-status": "14",
      "grpc-message": "gone",
    });
  });
});
