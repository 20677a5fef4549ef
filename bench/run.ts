// Every benchmark suite from one command. Each suite is a set of hooks on one skeleton
// (bench/lib/skeleton.ts: options, a measuring half in a private network namespace, a report):
//
//   sudo bun bench/run.ts [--suite list|watch|rules|daemon|namespaces|soak|all] [--quick] [options]
//
// --suite all (the default; `npm run bench`) runs list, watch, rules and daemon in turn, each with
// the options that are its own (see bench/lib/suite.ts); namespaces and soak run only when named.
// See bench/README.md.
import { runSuite } from "./lib/skeleton.ts";
import { planAll, splitSuite, watchToolsAsTools, type Suite } from "./lib/suite.ts";
import { USAGE } from "./lib/options.ts";
import { WATCH_USAGE } from "./lib/watch-options.ts";
import { RULES_USAGE } from "./lib/rules-options.ts";
import { DAEMON_USAGE } from "./lib/daemon-options.ts";

const log = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};

const SUITE_USAGE = `
Suites (--suite NAME, default all: list, watch, rules, daemon in turn):
  list        the options above
  watch       the watch suite's options (below)
  rules       the rules suite's options (below)
  daemon      the daemon suite's options (below)
  namespaces  bun bench/namespaces.ts --help (not part of all)
  soak        bun bench/soak.ts --help (not part of all)
With --suite all: --sockets, --seconds, --warmup, --interval, --watch-cmd, --short,
--cpu-prof and --watch-tools (the watch suite's --tools) go to the watch suite;
--sensors and --resync to the watch and daemon suites; --sockwarden, --timeout,
--max-minutes (a budget for each suite), --out, --no-save and --quick to every
suite; the rest to the list suite.

`;

type Runner = (args: string[], invocation: string) => Promise<number>;

/** Each suite on the skeleton, its module loaded only when it runs. */
const SUITE_RUNNERS: Record<Exclude<Suite, "all">, Runner> = {
  list: async (a, i) => runSuite((await import("./list.ts")).LIST_SUITE, a, i),
  watch: async (a, i) => runSuite((await import("./watch.ts")).WATCH_SUITE, watchToolsAsTools(a), i),
  rules: async (a, i) => runSuite((await import("./rules.ts")).RULES_SUITE, a, i),
  daemon: async (a, i) => runSuite((await import("./daemon.ts")).DAEMON_SUITE, a, i),
  namespaces: async (a, i) => runSuite((await import("./namespaces.ts")).NAMESPACES_SUITE, a, i),
  soak: async (a, i) => runSuite((await import("./soak.ts")).SOAK_SUITE, a, i),
};

/** Combined status: interrupted beats usage/prerequisite errors beats failures. */
function worst(a: number, b: number): number {
  for (const code of [130, 2, 1]) if (a === code || b === code) return code;
  return a || b;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const invocation = ["bun", "bench/run.ts", ...argv].join(" ");
  let suite: Suite;
  let rest: string[];
  try {
    ({ suite, rest } = splitSuite(argv));
  } catch (e) {
    log(e instanceof Error ? e.message : String(e));
    return 2;
  }
  if (suite !== "all") return SUITE_RUNNERS[suite](rest, invocation);

  let plan;
  try {
    plan = planAll(rest);
  } catch (e) {
    log(e instanceof Error ? e.message : String(e));
    process.stderr.write(USAGE + SUITE_USAGE);
    return 2;
  }
  if (plan.help) {
    process.stdout.write(USAGE + SUITE_USAGE + WATCH_USAGE + "\n" + RULES_USAGE + "\n" + DAEMON_USAGE);
    return 0;
  }
  const order: [Exclude<Suite, "all">, string[]][] = [
    ["list", plan.listArgs!],
    ["watch", plan.watchArgs!],
    ["rules", plan.rulesArgs!],
    ["daemon", plan.daemonArgs!],
  ];
  let code = 0;
  for (const [name, args] of order) {
    log(`starting the ${name} suite (bench/${name}.ts ${args.join(" ")})`);
    code = worst(code, await SUITE_RUNNERS[name](args, invocation));
    // Interrupted, or cannot run at all (not root, missing programs): do not go on.
    if (code === 130 || code === 2) return code;
  }
  return code;
}

process.exitCode = await main();
