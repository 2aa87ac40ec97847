import { defineConfig } from "vitest/config";

// Three suites, one runner: unit (pure decisions, goldens), process (real servers and
// proxies on 127.0.0.x), cluster (a real kube-apiserver; slow the first time it builds).
export default defineConfig({
  test: {
    // Process and cluster suites bind fixed 127.0.0.x addresses and share one apiserver build.
    fileParallelism: false,
    projects: [
      {
        test: {
          name: "unit",
          include: [
            "webhook/**/*.test.ts",
            "sidecar/**/*.test.ts",
            "shared/**/*.test.ts",
            "cli/**/*.test.ts",
            "test/golden/**/*.test.ts",
          ],
        },
      },
      {
        test: {
          name: "process",
          include: ["test/process/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "cluster",
          include: ["test/cluster/**/*.test.ts"],
          testTimeout: 180_000,
          hookTimeout: 1_800_000,
        },
      },
    ],
  },
});
