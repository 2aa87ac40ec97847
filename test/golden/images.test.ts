/**
 * The images run what the repository pins: the proxy image's Bun is package.json's `bun`
 * (tests, `make demo` and the benchmarks run that one), and it builds the same bundle the
 * bundle test runs (test/harness/compiled.ts).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../harness/paths.ts";

const read = (path: string): string => readFileSync(join(REPO_ROOT, path), "utf8");
const pkg = JSON.parse(read("package.json")) as { devDependencies: Record<string, string> };
const dockerfile = read("deploy/images/Dockerfile.sidecar");

describe("proxy image", () => {
  it("every stage is on the Bun version package.json pins", () => {
    const froms = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    expect(froms.length).toBeGreaterThan(0);
    for (const image of froms) expect(image).toBe(`oven/bun:${pkg.devDependencies.bun}-alpine`);
  });

  it("bundles with the command the harness runs and starts the bundle as uid 1337", () => {
    expect(dockerfile).toContain("bun build --target=bun --production sidecar/main.ts");
    expect(read("test/harness/compiled.ts")).toContain(
      '["build", "--target=bun", "--production", "sidecar/main.ts"',
    );
    expect(dockerfile).toMatch(/^USER 1337:1337$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["bun", "\/app\/verso-proxy.js"\]$/m);
  });
});
