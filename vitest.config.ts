import { readFileSync } from "node:fs";
import { defineConfig } from "vitest/config";

// Tests run on Bun (`bun --bun vitest run`) so they see the runtime the executable uses.
// The forks pool under Bun has been reported to time out waiting for workers; threads has been
// stable here over repeated runs. End-to-end files share network namespaces and the compiled
// executable, so files run one at a time, and the projects one after another (groupOrder).
//
// Projects, each run alone with `--project <name>` (npm run test:<name>):
//   unit  test/unit: in-process code, fake time, no root, no executable; under a minute
//   e2e   test/e2e and the plugins: real sockets, namespaces and dist/sockwarden, as root; and
//         the in-process tests that drive real rule-runner processes through their real time
//         budgets, kills and memory (minutes on a busy machine)
//   soak  the two-minute soak (`npm run soak` is the long one)
//   wine  the Windows executable under wine
const SOAK = ["test/e2e/soak.test.ts"];
const WINE = ["test/e2e/windows-wine.test.ts"];
const RUNNER_PROCESSES = ["test/unit/rules-hostile.test.ts", "test/unit/rule-runner.test.ts", "test/unit/daemon-reload-in-flight.test.ts", "test/unit/rule-selector-runner.test.ts"];

export default defineConfig({
  // Bun reads `import x from "./y.d.ts" with { type: "text" }` as the file's text; Vite ignores
  // the attribute. A declaration file has no code to run, so any import of one is that text.
  plugins: [{ name: "declaration-text", enforce: "pre", load: (id) => (id.endsWith(".d.ts") ? `export default ${JSON.stringify(readFileSync(id, "utf8"))};` : null) }],
  test: {
    pool: "threads",
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // CI also writes a machine-readable report, from which .ci/run prints a one-line summary.
    reporters: process.env.CI ? ["default", "json"] : ["default"],
    outputFile: process.env.CI ? { json: ".cache/vitest-report.json" } : undefined,
    projects: [
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"], exclude: RUNNER_PROCESSES, sequence: { groupOrder: 0 } } },
      {
        extends: true,
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts", "plugins/**/*.test.ts", ...RUNNER_PROCESSES],
          exclude: [...SOAK, ...WINE],
          sequence: { groupOrder: 1 },
        },
      },
      { extends: true, test: { name: "soak", include: SOAK, sequence: { groupOrder: 2 } } },
      { extends: true, test: { name: "wine", include: WINE, sequence: { groupOrder: 3 } } },
    ],
  },
});
