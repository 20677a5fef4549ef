// List benchmark: one `sockwarden list -a --json` against one `ss -tanp`, `netstat -tanp` and
// `lsof -nP -i` run over the same N established loopback TCP connections.
//
//   sudo bun bench/list.ts [--sizes 1k,10k,30k] [--runs 7] [--quick]    (or bun bench/run.ts --suite list)
//
// Hooks on the suite skeleton (bench/lib/skeleton.ts): its namespace is sw-bench-<pid>-list, its
// measuring half bench/lib/inner.ts. See bench/README.md.
import { runSuite, NAMESPACE_TOOLS, type SuiteHooks } from "./lib/skeleton.ts";
import { TIME_BIN } from "./lib/proc.ts";
import { parseOptions, USAGE, type Options } from "./lib/options.ts";
import { runInner } from "./lib/inner.ts";

const MEASURED: [string, string][] = [
  ["ss", "iproute2"],
  ["netstat", "net-tools"],
  ["lsof", "lsof"],
];

export const LIST_SUITE: SuiteHooks<Options> = {
  name: "list",
  script: import.meta.path,
  usage: USAGE,
  parse: parseOptions,
  needs: (o) => ({
    required: [...NAMESPACE_TOOLS, [TIME_BIN, "time"]],
    optional: MEASURED.filter(([tool]) => (o.tools as string[]).includes(tool)),
  }),
  measure: (o, run) => runInner(o, run.netns),
};

if (import.meta.main) process.exitCode = await runSuite(LIST_SUITE, process.argv.slice(2));
