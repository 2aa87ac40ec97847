import { describe, expect, it } from "vitest";
import { guard } from "./guard.ts";

const PORT = 7420;
const TOKEN = "t0k3n";

describe("guard: who may talk to the dashboard", () => {
  it.each([
    // method, host, origin, token -> status (0 = allowed)
    ["GET", "127.0.0.1:7420", undefined, undefined, 0],
    ["GET", "localhost:7420", undefined, undefined, 0],
    ["GET", "LOCALHOST:7420", undefined, undefined, 0],
    ["GET", "evil.example:7420", undefined, undefined, 421],
    ["GET", "127.0.0.1:9999", undefined, undefined, 421],
    ["GET", undefined, undefined, undefined, 421],
    ["POST", "127.0.0.1:7420", "http://127.0.0.1:7420", TOKEN, 0],
    ["POST", "127.0.0.1:7420", undefined, TOKEN, 0],
    ["POST", "127.0.0.1:7420", "http://127.0.0.1:7420", undefined, 403],
    ["POST", "127.0.0.1:7420", "http://127.0.0.1:7420", "wrong", 403],
    ["POST", "127.0.0.1:7420", "http://evil.example", TOKEN, 403],
    ["POST", "evil.example:7420", "http://evil.example:7420", TOKEN, 421],
  ] as const)("%s Host %s Origin %s token %s -> %s", (method, host, origin, token, want) => {
    const v = guard({ method, host, origin, token }, PORT, TOKEN);
    expect(v.ok ? 0 : v.status).toBe(want);
  });
});
