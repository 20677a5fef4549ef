// Watch benchmark: CPU per refresh and steady-state CPU share of `sockwarden watch --ndjson` at
// one refresh per second over idle loopback TCP sockets, against running `ss -tanpi` once per
// second over the same sockets.
//
//   sudo bun bench/watch.ts [--sockets 10k,100k] [--seconds 20] [--watch-cmd 'sh -c "…"'] [--quick]
//
// Hooks on the suite skeleton (bench/lib/skeleton.ts): its namespace is sw-bench-<pid>-watch, its
// measuring half bench/lib/watch-inner.ts. See bench/README.md.
import { runSuite, NAMESPACE_TOOLS, type SuiteHooks } from "./lib/skeleton.ts";
import { TIME_BIN } from "./lib/proc.ts";
import { parseWatchOptions, WATCH_USAGE, type WatchOptions } from "./lib/watch-options.ts";
import { runWatchInner } from "./lib/watch-inner.ts";

export const WATCH_SUITE: SuiteHooks<WatchOptions> = {
  name: "watch",
  script: import.meta.path,
  usage: WATCH_USAGE,
  parse: parseWatchOptions,
  needs: (o) => ({
    required: [...NAMESPACE_TOOLS, [TIME_BIN, "time"], ["getconf", "libc-bin"], ...(o.tools.includes("ss") ? [["ss", "iproute2"] as [string, string]] : [])],
  }),
  measure: (o, run) => runWatchInner(o, run.netns),
};

if (import.meta.main) process.exitCode = await runSuite(WATCH_SUITE, process.argv.slice(2));
