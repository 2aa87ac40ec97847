/** `kubectl verso version`: offline, the CLI's own version. */
import { readFileSync } from "node:fs";
import { structured, type Ctx } from "../context.ts";

function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version?: string;
  };
  return pkg.version ?? "unknown";
}

export function version(ctx: Ctx): number {
  const info = { name: "kubectl-verso", version: cliVersion(), node: process.version };
  ctx.io.stdout.write(
    structured(ctx, info) ?? `kubectl-verso ${info.version} (node ${info.node})\n`,
  );
  return 0;
}
