import { describe, expect, it } from "vitest";
import { relayCloseCode } from "./websocket.ts";

describe("relayCloseCode: what one side of a websocket relay may send the other", () => {
  const rows: [number, number | undefined, string][] = [
    [1000, 1000, "normal closure passes"],
    [1001, 1001, "going away passes"],
    [1011, 1011, "server error passes"],
    [4001, 4001, "application codes pass"],
    [3000, 3000, "registered codes pass"],
    [1005, undefined, "no status: closed without a code (1005 may not be sent)"],
    [1006, 1001, "abnormal end: becomes going away (close(1006) throws, leaking the other side)"],
    [1015, 1001, "TLS failure: becomes going away"],
    [1016, 1001, "unassigned 1xxx: going away"],
    [2000, 1001, "reserved range: going away"],
    [5000, 1001, "out of range: going away"],
  ];
  for (const [code, want, why] of rows)
    it(`${code}: ${why}`, () => expect(relayCloseCode(code)).toBe(want));
});
