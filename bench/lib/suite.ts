// `bun bench/run.ts --suite NAME|all`: which suites run, and which options go to which.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { LIST_ARG_CONFIG } from "./options.ts";
import { WATCH_ARG_CONFIG } from "./watch-options.ts";
import { COMMON_ARG_CONFIG } from "./suite-options.ts";

export const SUITES = ["list", "watch", "rules", "daemon", "namespaces", "soak", "all"] as const;
export type Suite = (typeof SUITES)[number];

/** Options every suite understands; with --suite all each suite gets them. */
const COMMON = new Set(["sockwarden", "timeout", "max-minutes", "out", "no-save", "quick"]);
/** With --suite all, what the daemon suite takes besides the common options. */
const DAEMON_FROM_ALL = new Set([...COMMON, "sensors", "resync"]);

export interface SuitePlan {
  suite: Suite;
  help: boolean;
  /** Arguments for the list suite, or null when it does not run. */
  listArgs: string[] | null;
  /** Arguments for the watch suite, or null when it does not run. */
  watchArgs: string[] | null;
  /** Arguments for the rules and daemon suites with --suite all. */
  rulesArgs: string[] | null;
  daemonArgs: string[] | null;
}

const has = (config: object, name: string): boolean => Object.prototype.hasOwnProperty.call(config, name);

/** `--suite NAME` taken out of argv: the suite (all when not given) and the rest, in order. */
export function splitSuite(argv: readonly string[]): { suite: Suite; rest: string[] } {
  const rest: string[] = [];
  let suite = "all";
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--suite") suite = argv[++i] ?? "";
    else if (a.startsWith("--suite=")) suite = a.slice("--suite=".length);
    else rest.push(a);
  }
  if (!(SUITES as readonly string[]).includes(suite)) throw new Error(`--suite must be one of ${SUITES.join(", ")} (got "${suite}")`);
  return { suite: suite as Suite, rest };
}

/**
 * Split the command line of --suite all: list options go to the list suite, watch options
 * (--sockets, --seconds, --warmup, --interval, --watch-cmd, --sensors, --resync, --short,
 * --cpu-prof, and --watch-tools for the watch suite's --tools) to the watch suite; the common ones
 * (--sockwarden, --timeout, --max-minutes, --out, --no-save, --quick) to every suite; --sensors
 * and --resync to the daemon suite too.
 */
export function planAll(argv: string[]): SuitePlan {
  const options = {
    ...COMMON_ARG_CONFIG,
    ...LIST_ARG_CONFIG,
    ...WATCH_ARG_CONFIG,
    "watch-tools": { type: "string" },
  } satisfies ParseArgsConfig["options"];
  const { values, tokens } = parseArgs({ args: argv, options, strict: true, allowPositionals: false, tokens: true });
  const plan: SuitePlan = { suite: "all", help: values.help === true, listArgs: [], watchArgs: [], rulesArgs: [], daemonArgs: [] };
  for (const t of tokens) {
    if (t.kind !== "option" || t.name === "help") continue;
    const name = t.name;
    if (name === "inner" || name === "deadline") throw new Error(`--${name} is internal`);
    const word = t.value === undefined ? `--${name}` : `--${name}=${t.value}`;
    if (COMMON.has(name)) plan.listArgs!.push(word), plan.watchArgs!.push(word), plan.rulesArgs!.push(word);
    else if (name === "watch-tools") plan.watchArgs!.push(`--tools=${t.value}`);
    else if (has(LIST_ARG_CONFIG, name)) plan.listArgs!.push(word);
    else plan.watchArgs!.push(word);
    if (DAEMON_FROM_ALL.has(name) && name !== "timeout") plan.daemonArgs!.push(word);
  }
  // The daemon and rules suites have no --timeout; it is the list and watch suites' limit per command.
  plan.rulesArgs = plan.rulesArgs!.filter((w) => !w.startsWith("--timeout="));
  return plan;
}

/** --watch-tools is the watch suite's --tools (the name --suite all gives it). */
export const watchToolsAsTools = (args: string[]): string[] =>
  args.map((a) => a.replace(/^--watch-tools(?==|$)/, "--tools"));
