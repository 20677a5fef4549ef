// Watch benchmark: CPU per refresh and steady-state CPU share of `sockwarden watch --ndjson` at
// one refresh per second over idle loopback TCP sockets, against running `ss -tanpi` once per
// second over the same sockets.
//
//   sudo bun bench/watch.ts [--sockets 10k,100k] [--seconds 20] [--watch-cmd 'sh -c "…"']
//
// Like bench/run.ts, this process creates a network namespace (sw-bench-<pid>-watch), re-runs
// itself inside it (the measuring half, bench/lib/watch-inner.ts) and deletes it afterwards in
// every case. `bun bench/run.ts` runs this suite after the list suite. See bench/README.md.
import path from "node:path";
import { NS_PREFIX } from "./lib/netns.ts";
import { runOuter } from "./lib/outer.ts";
import { PYTHON } from "./lib/helper.ts";
import { TIME_BIN } from "./lib/proc.ts";
import { parseWatchOptions, WATCH_USAGE, type WatchOptions } from "./lib/watch-options.ts";
import { runWatchInner } from "./lib/watch-inner.ts";

const SCRIPT = path.join(import.meta.dir, "watch.ts");

/** The outer half, also called by bench/run.ts: `args` are this suite's own options. */
export async function runWatchSuite(opts: WatchOptions, args: string[]): Promise<number> {
  return runOuter({
    netns: `${NS_PREFIX}${process.pid}-watch`,
    script: SCRIPT,
    args,
    deadline: opts.deadline,
    required: [
      ["ip", "iproute2"],
      ["nsenter", "util-linux"],
      [PYTHON, "python3"],
      [TIME_BIN, "time"],
      ["getconf", "libc-bin"],
      ...(opts.tools.includes("ss") ? ([["ss", "iproute2"]] as [string, string][]) : []),
    ],
    optional: [],
    usageHint: "bun bench/watch.ts",
  });
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  let opts: WatchOptions;
  try {
    opts = parseWatchOptions(args);
  } catch (e) {
    process.stderr.write(`[bench:watch] ${e instanceof Error ? e.message : String(e)}\n`);
    process.stderr.write(WATCH_USAGE);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(WATCH_USAGE);
    return 0;
  }
  if (opts.inner) return runWatchInner(opts, process.env.SW_BENCH_NETNS ?? "(unknown)");
  return runWatchSuite(opts, args.filter((a) => a !== "--inner"));
}

if (import.meta.main) process.exitCode = await main();
