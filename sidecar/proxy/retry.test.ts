import { describe, expect, it } from "vitest";
import { errorKind, planRetry, type Attempted, type RetryPlan } from "./retry.ts";

const a = (o: Partial<Attempted> & Pick<Attempted, "kind">): Attempted => ({
  method: "GET",
  bodyless: true,
  resetRetried: false,
  ...o,
});

// Mirrors the truth table above planRetry(), row by row.
describe("planRetry: truth table", () => {
  const rows: [string, Attempted, RetryPlan][] = [
    [
      "peer refused, bodyless GET: next peer, marked down",
      a({ kind: "peer-connect" }),
      { do: "next", markDown: true },
    ],
    [
      "peer refused, POST with a body: next peer (nothing was sent)",
      a({ kind: "peer-connect", method: "POST", bodyless: false }),
      { do: "next", markDown: true },
    ],
    ["app refused: 502", a({ kind: "app-connect" }), { do: "fail", status: 502 }],
    ["app reset, bodyless GET, first time: again", a({ kind: "app-reset" }), { do: "again" }],
    [
      "app reset, bodyless GET, second time: 502",
      a({ kind: "app-reset", resetRetried: true }),
      { do: "fail", status: 502 },
    ],
    [
      "app reset, POST: 502 (it may have acted on it)",
      a({ kind: "app-reset", method: "POST" }),
      { do: "fail", status: 502 },
    ],
    [
      "app reset, PUT with a body: 502 (the body cannot be resent)",
      a({ kind: "app-reset", method: "PUT", bodyless: false }),
      { do: "fail", status: 502 },
    ],
    [
      "peer reset, bodyless GET, first time: again (peer kept)",
      a({ kind: "peer-reset" }),
      { do: "again" },
    ],
    [
      "peer reset, bodyless GET, second time: next, marked down",
      a({ kind: "peer-reset", resetRetried: true }),
      { do: "next", markDown: true },
    ],
    [
      "peer reset, bodyless POST: 502",
      a({ kind: "peer-reset", method: "POST" }),
      { do: "fail", status: 502 },
    ],
    [
      "peer reset, DELETE with a body: 502",
      a({ kind: "peer-reset", method: "DELETE", bodyless: false }),
      { do: "fail", status: 502 },
    ],
    ["app timeout: 504", a({ kind: "app-timeout" }), { do: "fail", status: 504 }],
    ["peer timeout: 504, never retried", a({ kind: "peer-timeout" }), { do: "fail", status: 504 }],
    ["other: 502", a({ kind: "other" }), { do: "fail", status: 502 }],
  ];
  for (const [name, input, want] of rows) it(name, () => expect(planRetry(input)).toEqual(want));
});

describe("errorKind: Bun's fetch errors by what they mean", () => {
  const err = (props: object): unknown => Object.assign(new Error("x"), props);
  const rows: [string, unknown, "app" | "peer", string][] = [
    ["ECONNREFUSED from a peer", err({ code: "ECONNREFUSED" }), "peer", "peer-connect"],
    [
      "ConnectionRefused (Bun's name) from the app",
      err({ code: "ConnectionRefused" }),
      "app",
      "app-connect",
    ],
    ["ECONNRESET from a peer", err({ code: "ECONNRESET" }), "peer", "peer-reset"],
    ["ConnectionClosed from the app", err({ code: "ConnectionClosed" }), "app", "app-reset"],
    ["Bun's idle timer (TimeoutError)", err({ name: "TimeoutError" }), "peer", "peer-timeout"],
    ["ETIMEDOUT from the app", err({ code: "ETIMEDOUT" }), "app", "app-timeout"],
    ["anything else", err({ code: "EWHATEVER" }), "app", "other"],
    ["not even an Error", "boom", "peer", "other"],
  ];
  for (const [name, e, side, want] of rows) it(name, () => expect(errorKind(e, side)).toBe(want));
});
