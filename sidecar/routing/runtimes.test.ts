/**
 * The code both runtimes load (shared/ and the proxy's routing) gives the same answers on Bun
 * (the proxy) as on Node (the webhook, the controller and these tests): hop tokens signed on
 * one verify on the other, tables parse and compile alike, decisions match.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { BUN, REPO_ROOT } from "../../test/harness/paths.ts";
import { parseRoutingTable } from "../../shared/table.ts";
import { compileTable } from "./compile.ts";
import { decide, viewOf } from "./decide.ts";
import { bucketOf } from "./hash.ts";
import { derivedHopKey, signHop, verifyHop } from "./hop.ts";

const KEY = Buffer.from("runtime-parity-hop-key-012345678");
const TABLE = {
  app: "shop",
  revision: 3,
  release: {
    version: "v2",
    strategy: "canary",
    weight: 30,
    match: [{ header: "x-region", value: "beijing", weight: 20 }],
    sticky: { header: "x-user-id" },
  },
  endpoints: { v1: ["127.0.0.2:15006"], v2: ["127.0.0.3:15006"] },
};
const USERS = Array.from({ length: 200 }, (_, i) => `user-${i}`);

/** What a runtime answers; the same function body runs on Node here and on Bun below. */
const PROGRAM = `
const { parseRoutingTable } = await import("./shared/table.ts");
const { compileTable } = await import("./sidecar/routing/compile.ts");
const { decide, viewOf } = await import("./sidecar/routing/decide.ts");
const { bucketOf } = await import("./sidecar/routing/hash.ts");
const { derivedHopKey, signHop, verifyHop } = await import("./sidecar/routing/hop.ts");
const input = JSON.parse(process.argv.at(-1));
const key = Buffer.from(input.key, "base64");
const parsed = parseRoutingTable(input.table);
const table = compileTable(parsed.value);
const side = (h) => "forward" in decide(viewOf("/", new Headers(h), false), table, "v1", () => 0.5);
console.log(JSON.stringify({
  token: signHop(key, "shop", "v2", 1_900_000_000_000),
  verifies: verifyHop(input.token, [key], "shop", "v1", 1_899_999_990_000).valid,
  derived: derivedHopKey("shop").toString("base64"),
  buckets: input.users.map((u) => bucketOf(u)),
  regionSides: input.users.map((u) => side({ "x-region": "beijing", "x-user-id": u })),
  otherSides: input.users.map((u) => side({ "x-user-id": u })),
}));
`;

/** Node's answers; `bunToken` (signed on Bun for v2) is verified here as v2 would. */
function onNode(bunToken: string) {
  const parsed = parseRoutingTable(TABLE);
  if (!parsed.ok) throw new Error(parsed.error);
  const table = compileTable(parsed.value);
  const side = (h: Record<string, string>) =>
    "forward" in decide(viewOf("/", new Headers(h), false), table, "v1", () => 0.5);
  return {
    token: signHop(KEY, "shop", "v2", 1_900_000_000_000),
    verifies: verifyHop(bunToken, [KEY], "shop", "v2", 1_899_999_990_000).valid,
    derived: derivedHopKey("shop").toString("base64"),
    buckets: USERS.map((u) => bucketOf(u)),
    regionSides: USERS.map((u) => side({ "x-region": "beijing", "x-user-id": u })),
    otherSides: USERS.map((u) => side({ "x-user-id": u })),
  };
}

describe("Bun and Node agree", () => {
  it("hop tokens, derived keys, buckets and routing decisions", () => {
    // A token signed on Node for v1 must verify on Bun, and Bun's own token must equal Node's.
    const forBun = signHop(KEY, "shop", "v1", 1_900_000_000_000);
    const input = JSON.stringify({
      key: KEY.toString("base64"),
      table: TABLE,
      users: USERS,
      token: forBun,
    });
    const run = spawnSync(BUN, ["-e", PROGRAM, input], { cwd: REPO_ROOT, encoding: "utf8" });
    expect(run.status, run.stderr).toBe(0);
    const bun = JSON.parse(run.stdout) as ReturnType<typeof onNode>;
    const node = onNode(bun.token);
    expect(bun.verifies).toBe(true); // Node's token verified on Bun
    expect(node.verifies).toBe(true); // Bun's token verified on Node
    expect(bun).toEqual(node);
    // Not a vacuous match: both sides of the split occur.
    expect(new Set(node.regionSides).size).toBe(2);
  });
});
