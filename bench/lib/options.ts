// Command-line options of bench/run.ts.
import { COMMON_USAGE, parseSuiteArgs, standIn, type CommonOptions, type OptionConfig, type SuiteDefaults } from "./suite-options.ts";

export { BENCH_DIR, REPO_ROOT, splitCommand } from "./suite-options.ts";

export const TOOL_KEYS = ["sockwarden", "ss", "netstat", "lsof"] as const;
export type ToolKey = (typeof TOOL_KEYS)[number];

export type StdoutMode = "null" | "pipe";

export interface Options extends CommonOptions {
  sizes: number[];
  runs: number;
  tools: ToolKey[];
  /** Full command line measured as the sockwarden row. */
  sockwardenCmd: string[];
  /** True when --sockwarden-cmd replaced the real executable (a stand-in for testing). */
  placeholder: boolean;
  timeoutMs: number;
  stdout: StdoutMode;
}

export const USAGE = `Usage: bun bench/run.ts [options]      (as root)

Times \`sockwarden list -a --json\` against \`ss -tanp\`, \`netstat -tanp\` and
\`lsof -nP -i\` over N established loopback TCP connections held in a private
network namespace.

Options:
  --sizes LIST          connection counts, e.g. 1000,10000 or 1k,10k   [1k,10k,30k]
  --runs N              runs per tool and size; the first is a warm-up    [7]
  --tools LIST          subset of sockwarden,ss,netstat,lsof             [all]
  --sockwarden-cmd CMD  measure CMD instead of "PATH list -a --json"
                        (quoted words allowed, no shell), e.g. 'cat /proc/net/tcp'
  --timeout S           limit for each measured command, seconds          [60]
  --stdout null|pipe    measured runs write to /dev/null, or to a pipe the
                        harness drains                                  [null]
${COMMON_USAGE}  (--max-minutes: 30; --quick: --sizes 1k --runs 3)
`;

export const LIST_ARG_CONFIG = {
  sizes: { type: "string" },
  runs: { type: "string" },
  tools: { type: "string" },
  "sockwarden-cmd": { type: "string" },
  timeout: { type: "string" },
  stdout: { type: "string" },
} as const satisfies OptionConfig;

const DEFAULTS: SuiteDefaults = {
  normal: { sizes: "1k,10k,30k", runs: "7", tools: TOOL_KEYS.join(","), timeout: "60", stdout: "null", "max-minutes": "30" },
  quick: { sizes: "1k", runs: "3", "max-minutes": "5" },
};

export function parseOptions(argv: string[]): Options {
  const a = parseSuiteArgs(argv, LIST_ARG_CONFIG, DEFAULTS);
  const runs = a.count("runs", 2, 100);
  const standin = standIn(a, "sockwarden-cmd");
  return {
    ...a.common,
    sizes: a.counts("sizes", 1, 200_000),
    runs,
    tools: a.subset("tools", TOOL_KEYS),
    sockwardenCmd: standin ?? [a.common.exe, "list", "-a", "--json"],
    placeholder: standin !== null,
    timeoutMs: a.number("timeout", 0.1, 3600) * 1000,
    stdout: a.oneOf("stdout", ["null", "pipe"] as const),
  };
}
