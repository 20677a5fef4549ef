// The skeleton every suite runs on: options (one parser, bench/lib/suite-options.ts), the outer
// half (checks, a private network namespace, the measuring half re-run inside it), the measuring
// half, and the report (bench/lib/results.ts). A suite is its hooks.
import { inNetns, NS_PREFIX } from "./netns.ts";
import { runOuter } from "./outer.ts";
import type { CommonOptions } from "./suite-options.ts";

export type Program = [program: string, pkg: string];

export interface SuiteHooks<O extends CommonOptions> {
  /** Names the log prefix, the namespace (sw-bench-<pid>-<name>) and the result files. */
  name: string;
  /** The suite's entry script: re-run inside the namespace with --inner. */
  script: string;
  usage: string;
  parse(argv: string[]): O;
  /**
   * Programs the measuring half needs (with the Debian package of each); `optional` ones only
   * fail their own rows. Null: the suite needs no namespace and measures in this process.
   */
  needs: ((o: O) => { required: Program[]; optional?: Program[] }) | null;
  /** An outer half of the suite's own (the namespaces suite makes one namespace per target). */
  outer?: (o: O, args: string[]) => Promise<number>;
  /** Measures, prints and saves the report; returns the suite's exit status. */
  measure(o: O, run: MeasureContext): Promise<number>;
}

export interface MeasureContext {
  /** The namespace the measuring half runs in, or "(none)". */
  netns: string;
  /** The command line as the user typed it, for the report. */
  invocation: string;
  log: (msg: string) => void;
}

export const suiteLog =
  (name: string) =>
  (msg: string): void => {
    process.stderr.write(`[bench:${name}] ${msg}\n`);
  };

/**
 * Runs one suite from its own arguments: bad options → one line and the usage, exit 2; --help;
 * the measuring half (--inner); or the outer half. `invocation` is how the user started it when
 * that was not this suite's script (bun bench/run.ts --suite …).
 */
export async function runSuite<O extends CommonOptions>(hooks: SuiteHooks<O>, argv: string[], invocation?: string): Promise<number> {
  const log = suiteLog(hooks.name);
  let opts: O;
  try {
    opts = hooks.parse(argv);
  } catch (e) {
    log(e instanceof Error ? e.message : String(e));
    process.stderr.write(hooks.usage);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(hooks.usage);
    return 0;
  }
  const netns = process.env.SW_BENCH_NETNS ?? "(none)";
  if (opts.inner) {
    if (hooks.needs !== null && !inNetns(netns)) {
      log(`--inner must run inside the suite's own network namespace (start bench/${hooks.name}.ts without --inner)`);
      return 2;
    }
    return hooks.measure(opts, { netns, invocation: process.env.SW_BENCH_INVOCATION ?? `bun bench/${hooks.name}.ts`, log });
  }
  if (argv.some((a) => a === "--deadline" || a.startsWith("--deadline="))) {
    log("--deadline is internal");
    return 2;
  }
  // Read back by the measuring half: the environment is passed on to it.
  process.env.SW_BENCH_INVOCATION = invocation ?? ["bun", `bench/${hooks.name}.ts`, ...argv].join(" ");
  if (hooks.needs === null) return hooks.measure(opts, { netns, invocation: process.env.SW_BENCH_INVOCATION, log });
  if (hooks.outer) return hooks.outer(opts, argv);
  const needs = hooks.needs(opts);
  return runOuter({
    netns: `${NS_PREFIX}${process.pid}-${hooks.name}`,
    script: hooks.script,
    args: argv,
    deadline: opts.deadline,
    required: needs.required,
    optional: needs.optional ?? [],
    usageHint: `bun bench/${hooks.name}.ts`,
  });
}

/** Common prerequisites of a suite that holds connections in its namespace. */
export const NAMESPACE_TOOLS: Program[] = [
  ["ip", "iproute2"],
  ["nsenter", "util-linux"],
  ["/usr/bin/python3", "python3"],
];
