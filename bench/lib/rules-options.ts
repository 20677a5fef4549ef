// Command-line options of bench/rules.ts (also `bun bench/run.ts --suite rules`).
import { parseArgs, type ParseArgsConfig } from "node:util";
import path from "node:path";

export interface RulesOptions {
  /** Events fed per measured run. */
  events: number;
  /** Measured runs at the rule set's default batch size (after a warm-up). */
  runs: number;
  /** Other batch sizes measured to show the effect (0 = none). */
  batchSizes: number[];
  /** Measured runs at each of the other batch sizes. */
  sweepRuns: number;
  /** Events dispatched per RuleSet.dispatch call, as one refresh of the monitor would. */
  chunk: number;
  /** Copies of the rule loaded for the memory figures. */
  copies: number;
  /** Events in the profile (0 = no profile). */
  profileEvents: number;
  /** Profile even when the target is met. */
  profileAlways: boolean;
  seed: number;
  maxMinutes: number;
  outDir: string;
  save: boolean;
  help: boolean;
}

export const RULES_ARG_CONFIG = {
  events: { type: "string" },
  runs: { type: "string" },
  "batch-sizes": { type: "string" },
  "sweep-runs": { type: "string" },
  chunk: { type: "string" },
  copies: { type: "string" },
  "profile-events": { type: "string" },
  profile: { type: "boolean" },
  seed: { type: "string" },
  "max-minutes": { type: "string" },
  out: { type: "string" },
  "no-save": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} satisfies ParseArgsConfig["options"];

export const RULES_USAGE = `Usage: bun bench/rules.ts [options]      (or bun bench/run.ts --suite rules)

Events per second through the bundled rule smtp-guard in its QuickJS sandbox (RuleSet.dispatch:
encoding, sandbox, action checking), the same rule run as plain JavaScript in this process on
the same event objects, their ratio, and memory per loaded rule. Needs no root.

Options:
  --events N            events per measured run, e.g. 1000000 or 1m         [1m]
  --runs N              measured runs at the default batch size, after a
                        warm-up                                              [5]
  --batch-sizes LIST    other batch sizes to show the effect, or none  [20,1000]
  --sweep-runs N        measured runs at each of those                       [3]
  --chunk N             events per RuleSet.dispatch call (one refresh)    [10k]
  --copies N            copies of the rule loaded for the memory figures    [20]
  --profile-events N    events in the profile of where the time goes, 0 for
                        none; it runs when the target is not met        [200k]
  --profile             profile even when the target is met
  --seed N              seed of the synthetic event stream                  [25]
  --max-minutes M       limit for the whole suite; what does not fit is
                        skipped and marked                                  [15]
  --out DIR             where rules-<date>.md/.json go         [bench/results]
  --no-save             print only
  -h, --help            this text
`;

export const BENCH_DIR = path.resolve(import.meta.dir, "..");
export const REPO_ROOT = path.resolve(BENCH_DIR, "..");

function count(text: string, what: string, min: number): number {
  const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(text.trim());
  if (!m) throw new Error(`${what} must be a number like 200000, 200k or 1m (got "${text}")`);
  const mult = m[2]!.toLowerCase() === "k" ? 1e3 : m[2]!.toLowerCase() === "m" ? 1e6 : 1;
  const n = Math.round(Number(m[1]) * mult);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${what} must be at least ${min} (got "${text}")`);
  return n;
}

export function parseRulesOptions(argv: string[]): RulesOptions {
  const { values } = parseArgs({ args: argv, options: RULES_ARG_CONFIG, strict: true, allowPositionals: false });
  const sizes = values["batch-sizes"] ?? "20,1000";
  const batchSizes =
    sizes.trim() === "none" || sizes.trim() === ""
      ? []
      : [...new Set(sizes.split(",").map((s) => count(s, "--batch-sizes", 1)))];
  const maxMinutes = Number(values["max-minutes"] ?? "15");
  if (!(maxMinutes > 0)) throw new Error(`--max-minutes must be a positive number (got "${values["max-minutes"]}")`);
  const opts: RulesOptions = {
    events: count(values.events ?? "1m", "--events", 1000),
    runs: count(values.runs ?? "5", "--runs", 1),
    batchSizes,
    sweepRuns: count(values["sweep-runs"] ?? "3", "--sweep-runs", 1),
    chunk: count(values.chunk ?? "10k", "--chunk", 1),
    copies: count(values.copies ?? "20", "--copies", 1),
    profileEvents: count(values["profile-events"] ?? "200k", "--profile-events", 0),
    profileAlways: values.profile === true,
    seed: count(values.seed ?? "25", "--seed", 0),
    maxMinutes,
    outDir: path.resolve(values.out ?? path.join(BENCH_DIR, "results")),
    save: values["no-save"] !== true,
    help: values.help === true,
  };
  if (opts.copies > 200) throw new Error("--copies must be at most 200");
  return opts;
}

/**
 * For `bun bench/run.ts --suite all`: the options of the whole command line that the rules suite
 * shares with the others (--max-minutes, --out, --no-save); the rest belong to the other suites.
 */
export function rulesArgsFromShared(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.replace(/=.*$/, "");
    if (name === "--no-save") out.push(a);
    else if (name === "--max-minutes" || name === "--out") {
      if (a.includes("=")) out.push(a);
      else if (i + 1 < argv.length) out.push(a, argv[++i]!);
    }
  }
  return out;
}

/** `bun bench/run.ts --suite rules ...`: the rules suite's own arguments, or null for another suite. */
export function rulesSuiteArgs(argv: readonly string[]): string[] | null {
  const out: string[] = [];
  let rules = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--suite" && argv[i + 1] === "rules") {
      rules = true;
      i++;
    } else if (a === "--suite=rules") rules = true;
    else out.push(a);
  }
  return rules ? out : null;
}
