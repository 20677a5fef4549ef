// Daemon benchmark: `sockwarden run` in a private network namespace.
//  - latency: how long after connect() a client that is not a mail server sees its connection to
//    port 25 aborted by smtp-guard, at each refresh interval (median, p95, p99, max);
//  - steady: CPU and RSS of the daemon with every bundled plugin loaded, over idle loopback
//    sockets and a steady stream of short connections.
//
//   sudo bun bench/daemon.ts [--intervals 1,0.1] [--samples 200] [--sockets 10k] [--seconds 60]
//
// Like the other suites, this process creates a network namespace (sw-bench-<pid>-daemon), re-runs
// itself inside it (the measuring half, bench/lib/daemon-inner.ts) and deletes it afterwards in
// every case. `bun bench/run.ts` runs it after the rules suite. See bench/README.md.
import path from "node:path";
import { NS_PREFIX } from "./lib/netns.ts";
import { runOuter } from "./lib/outer.ts";
import { PYTHON } from "./lib/helper.ts";
import { DAEMON_USAGE, parseDaemonOptions, type DaemonOptions } from "./lib/daemon-options.ts";
import { runDaemonInner } from "./lib/daemon-inner.ts";

const SCRIPT = path.join(import.meta.dir, "daemon.ts");

const log = (msg: string): void => {
  process.stderr.write(`[bench:daemon] ${msg}\n`);
};

/** The outer half: `args` are this suite's own options. */
export async function runDaemonOuter(opts: DaemonOptions, args: string[], invocation: string): Promise<number> {
  // Recorded in the report by the measuring half (the environment is passed on to it).
  process.env.SW_BENCH_DAEMON_INVOCATION = invocation;
  return runOuter({
    netns: `${NS_PREFIX}${process.pid}-daemon`,
    script: SCRIPT,
    args,
    deadline: opts.deadline,
    required: [
      ["ip", "iproute2"],
      ["nsenter", "util-linux"],
      [PYTHON, "python3"],
      ["getconf", "libc-bin"],
    ],
    optional: [],
    usageHint: "bun bench/daemon.ts",
  });
}

/** For bench/run.ts (`--suite daemon`, or after the other suites with `--suite all`). */
export async function runDaemonSuite(args: string[], invocation?: string): Promise<number> {
  let opts: DaemonOptions;
  try {
    opts = parseDaemonOptions(args);
  } catch (e) {
    log(e instanceof Error ? e.message : String(e));
    process.stderr.write(DAEMON_USAGE);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(DAEMON_USAGE);
    return 0;
  }
  return runDaemonOuter(opts, args, invocation ?? ["bun", "bench/daemon.ts", ...args].join(" "));
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  let opts: DaemonOptions;
  try {
    opts = parseDaemonOptions(args);
  } catch (e) {
    log(e instanceof Error ? e.message : String(e));
    process.stderr.write(DAEMON_USAGE);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(DAEMON_USAGE);
    return 0;
  }
  if (opts.inner) return runDaemonInner(opts, process.env.SW_BENCH_NETNS ?? "(unknown)");
  return runDaemonOuter(opts, args, ["bun", "bench/daemon.ts", ...args].join(" "));
}

if (import.meta.main) process.exitCode = await main();
