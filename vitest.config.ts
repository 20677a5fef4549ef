import { defineConfig } from "vitest/config";

// Tests run on Bun (`bun --bun vitest run`) so they see the runtime the executable uses.
// The forks pool under Bun has been reported to time out waiting for workers; threads has been
// stable here over repeated runs. End-to-end files share network namespaces and the compiled
// executable, so files run one at a time.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "plugins/**/*.test.ts"],
    pool: "threads",
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // CI also writes a machine-readable report, from which .ci/run prints a one-line summary.
    reporters: process.env.CI ? ["default", "json"] : ["default"],
    outputFile: process.env.CI ? { json: ".cache/vitest-report.json" } : undefined,
  },
});
