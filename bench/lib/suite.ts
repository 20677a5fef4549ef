// `bun bench/run.ts --suite list|watch|all`: which suites run, and which options go to which.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { LIST_ARG_CONFIG } from "./options.ts";
import { WATCH_ARG_CONFIG } from "./watch-options.ts";

export const SUITES = ["list", "watch", "all"] as const;
export type Suite = (typeof SUITES)[number];

/** Options both suites understand; with --suite all each suite gets them. */
const SHARED = new Set(["sockwarden", "timeout", "max-minutes", "out", "no-save"]);

export interface SuitePlan {
  suite: Suite;
  help: boolean;
  /** Arguments for the list suite (bench/run.ts's own options), or null when it does not run. */
  listArgs: string[] | null;
  /** Arguments for bench/watch.ts, or null when it does not run. */
  watchArgs: string[] | null;
}

const has = (config: object, name: string): boolean => Object.prototype.hasOwnProperty.call(config, name);

/**
 * Split run.ts's command line. With --suite all, list options go to the list suite, watch options
 * (--sockets, --seconds, --warmup, --interval, --watch-cmd, and --watch-tools for the watch
 * suite's --tools) to the watch suite, and shared ones to both. With --suite list or watch, only
 * that suite's options are accepted (--watch-tools is then the same as --tools).
 */
export function planSuites(argv: string[]): SuitePlan {
  const options = {
    ...LIST_ARG_CONFIG,
    ...WATCH_ARG_CONFIG,
    // The merged defaults are not used: each suite applies its own.
    sizes: { type: "string" },
    sockets: { type: "string" },
    tools: { type: "string" },
    timeout: { type: "string" },
    "max-minutes": { type: "string" },
    "watch-tools": { type: "string" },
    suite: { type: "string" },
  } satisfies ParseArgsConfig["options"];
  const { values, tokens } = parseArgs({ args: argv, options, strict: true, allowPositionals: false, tokens: true });

  const suite = (values.suite ?? "all") as Suite;
  if (!(SUITES as readonly string[]).includes(suite)) {
    throw new Error(`--suite must be one of ${SUITES.join(", ")} (got "${values.suite}")`);
  }
  const listArgs: string[] = [];
  const watchArgs: string[] = [];
  for (const t of tokens) {
    if (t.kind !== "option") continue;
    const name = t.name;
    if (name === "suite" || name === "help") continue;
    if (name === "inner" || name === "deadline") throw new Error(`--${name} is internal`);
    const word = t.value === undefined ? `--${name}` : `--${name}=${t.value}`;
    const inList = has(LIST_ARG_CONFIG, name);
    const inWatch = has(WATCH_ARG_CONFIG, name) || name === "watch-tools";
    const toWatch = name === "watch-tools" ? `--tools=${t.value}` : word;
    if (suite === "list") {
      if (!inList) throw new Error(`--${name} is an option of the watch suite (use --suite watch or all)`);
      listArgs.push(word);
    } else if (suite === "watch") {
      if (!inWatch) throw new Error(`--${name} is an option of the list suite (use --suite list or all)`);
      watchArgs.push(toWatch);
    } else if (SHARED.has(name)) {
      listArgs.push(word);
      watchArgs.push(word);
    } else if (name === "watch-tools" || !inList) {
      watchArgs.push(toWatch);
    } else {
      listArgs.push(word);
    }
  }
  return {
    suite,
    help: values.help === true,
    listArgs: suite === "watch" ? null : listArgs,
    watchArgs: suite === "list" ? null : watchArgs,
  };
}
