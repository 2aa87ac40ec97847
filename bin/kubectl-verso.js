#!/usr/bin/env node
// kubectl-verso: `kubectl verso ...` once this is on PATH (npm's "bin" links it). The CLI is
// TypeScript run by Node's type stripping (Node >= 22.18 / 23.6; the project pins Node 24),
// which works for files outside node_modules: use it from a checkout (npm link, or
// `npm install -g <checkout>`, which links the directory).
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18) || (major === 23 && minor < 6)) {
  process.stderr.write(
    `kubectl-verso needs Node >= 22.18 (type stripping); this is ${process.version}. ` +
      "Put the project's node (node_modules/.bin) first on PATH.\n",
  );
  process.exit(1);
}
const { main } = await import("../cli/main.ts");
await main();
