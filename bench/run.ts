// Benchmarks against ss, netstat and lsof, each in a private network namespace.
//
//   sudo bun bench/run.ts [--suite list|watch|all] [options]
//
// The list suite (the default options below) times `sockwarden list -a --json` against `ss -tanp`,
// `netstat -tanp` and `lsof -nP -i` over the same N established loopback TCP connections. The
// watch suite (bench/watch.ts) measures the CPU of `sockwarden watch` refreshing once per second
// against `ss -tanpi` run once per second. --suite all (the default) runs the list suite, then the
// watch suite.
//
// Each suite creates its namespace (sw-bench-<pid>, sw-bench-<pid>-watch), re-runs its script
// inside it with `nsenter --net=/run/netns/<ns>` (the measuring half, whose children are the
// measured tools themselves), and deletes the namespace afterwards: on success, on error, on
// SIGINT/SIGTERM/SIGHUP and when the time budget runs out. See bench/README.md.
import { parseOptions, USAGE, type Options } from "./lib/options.ts";
import { NS_PREFIX } from "./lib/netns.ts";
import { runOuter } from "./lib/outer.ts";
import { runInner } from "./lib/inner.ts";
import { PYTHON } from "./lib/helper.ts";
import { TIME_BIN } from "./lib/proc.ts";
import { planSuites, type SuitePlan } from "./lib/suite.ts";
import { parseWatchOptions, WATCH_USAGE, type WatchOptions } from "./lib/watch-options.ts";
import { runWatchSuite } from "./watch.ts";
import { RULES_USAGE, rulesArgsFromShared, rulesSuiteArgs } from "./lib/rules-options.ts";
import { namespacesSuiteArgs } from "./lib/namespaces-options.ts";
import { DAEMON_USAGE, daemonArgsFromShared, daemonSuiteArgs } from "./lib/daemon-options.ts";

// The rules suite (bench/rules.ts) needs no namespace and runs in this process; loaded on demand.
const runRulesSuite = async (args: string[]): Promise<number> => (await import("./rules.ts")).runRulesSuite(args);
// The namespaces suite (bench/namespaces.ts): only with --suite namespaces, not part of --suite all.
const runNamespacesSuite = async (args: string[]): Promise<number> =>
  (await import("./namespaces.ts")).runNamespacesSuite(args);
// The daemon suite (bench/daemon.ts): its own namespace; --suite daemon, or last with --suite all.
const runDaemonSuite = async (args: string[]): Promise<number> =>
  (await import("./daemon.ts")).runDaemonSuite(args, ["bun", "bench/run.ts", ...process.argv.slice(2)].join(" "));

const log = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};

const SUITE_USAGE = `
Suites (--suite list|watch|all, default all: the list suite, then the watch suite):
  list   the options above
  watch  bun bench/watch.ts's options (below); with --suite all, --sockets, --seconds,
         --warmup, --interval, --watch-cmd and --watch-tools (the watch suite's --tools)
         go to the watch suite, --sockwarden, --timeout, --max-minutes (a budget for
         each suite), --out and --no-save to both, the rest to the list suite.
         --sensors and --resync go to the watch suite and to the daemon suite
         (both sensors side by side; see bench/README.md).

`;

function runListSuite(opts: Options, args: string[]): Promise<number> {
  return runOuter({
    netns: `${NS_PREFIX}${process.pid}`,
    script: import.meta.path,
    args,
    deadline: opts.deadline,
    required: [
      ["ip", "iproute2"],
      ["nsenter", "util-linux"],
      [PYTHON, "python3"],
      [TIME_BIN, "time"],
    ],
    optional: (
      [
        ["ss", "iproute2"],
        ["netstat", "net-tools"],
        ["lsof", "lsof"],
      ] as [string, string][]
    ).filter(([tool]) => (opts.tools as string[]).includes(tool)),
    usageHint: "bun bench/run.ts",
  });
}

/** Combined status: interrupted beats usage/prerequisite errors beats failures. */
function worst(a: number, b: number): number {
  for (const code of [130, 2, 1]) if (a === code || b === code) return code;
  return a || b;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  // The list suite's measuring half (started by runListSuite inside the namespace).
  if (argv.includes("--inner")) {
    let opts: Options;
    try {
      opts = parseOptions(argv);
    } catch (e) {
      log(e instanceof Error ? e.message : String(e));
      return 2;
    }
    return runInner(opts, process.env.SW_BENCH_NETNS ?? "(unknown)");
  }
  // --suite rules: only bench/rules.ts's options.
  const rulesArgs = rulesSuiteArgs(argv);
  if (rulesArgs) return runRulesSuite(rulesArgs);
  const namespacesArgs = namespacesSuiteArgs(argv);
  if (namespacesArgs) return runNamespacesSuite(namespacesArgs);
  const daemonArgs = daemonSuiteArgs(argv);
  if (daemonArgs) return runDaemonSuite(daemonArgs);

  let plan: SuitePlan;
  let listOpts: Options | null = null;
  try {
    plan = planSuites(argv);
    if (plan.help) {
      process.stdout.write(USAGE + SUITE_USAGE + WATCH_USAGE + "\n" + RULES_USAGE + "\n" + DAEMON_USAGE);
      return 0;
    }
    if (plan.listArgs) listOpts = parseOptions(plan.listArgs);
    // Checked now; parsed again when the suite starts, so its time budget starts then.
    if (plan.watchArgs) parseWatchOptions(plan.watchArgs);
  } catch (e) {
    log(e instanceof Error ? e.message : String(e));
    process.stderr.write(USAGE + SUITE_USAGE);
    return 2;
  }

  let code = 0;
  if (listOpts && plan.listArgs) {
    code = await runListSuite(listOpts, plan.listArgs);
    // Interrupted, or cannot run at all (not root, missing programs): do not go on.
    if (code === 130 || code === 2) return code;
  }
  if (plan.watchArgs) {
    if (plan.suite === "all") log("list suite done; starting the watch suite (bench/watch.ts)");
    let watchOpts: WatchOptions;
    try {
      watchOpts = parseWatchOptions(plan.watchArgs);
    } catch (e) {
      log(e instanceof Error ? e.message : String(e));
      return 2;
    }
    code = worst(code, await runWatchSuite(watchOpts, plan.watchArgs));
  }
  if (plan.suite === "all" && code !== 130) {
    log("starting the rules suite (bench/rules.ts)");
    code = worst(code, await runRulesSuite(rulesArgsFromShared(argv)));
  }
  if (plan.suite === "all" && code !== 130) {
    log("starting the daemon suite (bench/daemon.ts)");
    code = worst(code, await runDaemonSuite(daemonArgsFromShared(argv)));
  }
  return code;
}

process.exitCode = await main();
