// Command-line options of bench/rules.ts (also `bun bench/run.ts --suite rules`).
import { COMMON_USAGE, parseSuiteArgs, type CommonOptions, type OptionConfig, type SuiteDefaults } from "./suite-options.ts";

export { BENCH_DIR, REPO_ROOT } from "./suite-options.ts";

export interface RulesOptions extends CommonOptions {
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
} satisfies OptionConfig;

const DEFAULTS: SuiteDefaults = {
  normal: {
    events: "1m",
    runs: "5",
    "batch-sizes": "20,1000",
    "sweep-runs": "3",
    chunk: "10k",
    copies: "20",
    "profile-events": "200k",
    seed: "25",
    "max-minutes": "15",
  },
  quick: { events: "20k", runs: "2", "batch-sizes": "none", copies: "3", "profile-events": "0", "max-minutes": "3" },
};

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
${COMMON_USAGE}  (--max-minutes: 15, what does not fit is skipped and marked; --quick:
   --events 20k --runs 2 --batch-sizes none --copies 3 --profile-events 0)
`;

export function parseRulesOptions(argv: string[]): RulesOptions {
  const a = parseSuiteArgs(argv, RULES_ARG_CONFIG, DEFAULTS);
  const sizes = a.str("batch-sizes").trim();
  const batchSizes = sizes === "none" || sizes === "" ? [] : [...new Set(a.list("batch-sizes").map((s) => a.count("batch-sizes", 1, 1e9, s)))];
  return {
    ...a.common,
    events: a.count("events", 1000, 1e10),
    runs: a.count("runs", 1, 1e6),
    batchSizes,
    sweepRuns: a.count("sweep-runs", 1, 1e6),
    chunk: a.count("chunk", 1, 1e9),
    copies: a.count("copies", 1, 200),
    profileEvents: a.count("profile-events", 0, 1e10),
    profileAlways: a.flag("profile"),
    seed: a.count("seed", 0, 2 ** 31),
  };
}
