// Command-line options of bench/namespaces.ts (also `bun bench/run.ts --suite namespaces`).
import { COMMON_USAGE, parseSuiteArgs, standIn, type CommonOptions, type OptionConfig, type SuiteDefaults } from "./suite-options.ts";

export interface NamespacesOptions extends CommonOptions {
  /** Benchmark namespaces holding connections. */
  namespaces: number;
  /** Established loopback connections held in each (2 sockets each, plus one listener). */
  connections: number;
  /** Rounds with the connections held; the first is a warm-up. */
  runs: number;
  /** Rounds before the holders start (namespaces up but empty); 0 for none. The first is a warm-up. */
  emptyRuns: number;
  /** Full command line measured as the sockwarden side. */
  sockwardenCmd: string[];
  /** True when --sockwarden-cmd replaced the real command (a stand-in, for testing the harness). */
  placeholder: boolean;
  /** Limit for each measured command (the whole ss loop is one command), ms. */
  timeoutMs: number;
}

export const NAMESPACES_ARG_CONFIG = {
  namespaces: { type: "string" },
  connections: { type: "string" },
  runs: { type: "string" },
  "empty-runs": { type: "string" },
  "sockwarden-cmd": { type: "string" },
  timeout: { type: "string" },
} satisfies OptionConfig;

const DEFAULTS: SuiteDefaults = {
  normal: { namespaces: "20", connections: "500", runs: "7", "empty-runs": "4", timeout: "60", "max-minutes": "10" },
  quick: { namespaces: "3", connections: "50", runs: "3", "empty-runs": "0", "max-minutes": "3" },
};

export const NAMESPACES_USAGE = `Usage: bun bench/namespaces.ts [options]      (as root; or bun bench/run.ts --suite namespaces)

Times \`sockwarden list -a --all-namespaces --json\` (one process, every namespace) against a
loop running \`ip netns exec NS ss -tanp > /dev/null\` for each benchmark namespace in turn, with
N established loopback connections held in each of K namespaces created for the run.

Options:
  --namespaces K        benchmark namespaces                               [20]
  --connections N       connections held in each (2N sockets + 1 listener)  [500]
  --runs N              rounds with the connections held; the first is a
                        warm-up                                               [7]
  --empty-runs N        rounds before the holders start (empty namespaces),
                        to show fixed costs; 0 for none                       [4]
  --sockwarden-cmd CMD  measure CMD instead of "PATH list -a --all-namespaces --json"
                        (quoted words allowed, no shell); a stand-in for testing
  --timeout S           limit for each measured command (the ss loop is one)  [60]
${COMMON_USAGE}  (--max-minutes: 10; --quick: --namespaces 3 --connections 50 --runs 3
   --empty-runs 0)
`;

export function parseNamespacesOptions(argv: string[]): NamespacesOptions {
  const a = parseSuiteArgs(argv, NAMESPACES_ARG_CONFIG, DEFAULTS);
  const standin = standIn(a, "sockwarden-cmd");
  if (standin && a.given("sockwarden")) throw new Error("--sockwarden and --sockwarden-cmd exclude each other");
  const emptyRuns = a.count("empty-runs", 0, 100);
  if (emptyRuns === 1) throw new Error("--empty-runs must be 0 or at least 2 (the first is a warm-up)");
  return {
    ...a.common,
    namespaces: a.count("namespaces", 1, 200),
    connections: a.count("connections", 1, 8000),
    runs: a.count("runs", 2, 100),
    emptyRuns,
    sockwardenCmd: standin ?? [a.common.exe, "list", "-a", "--all-namespaces", "--json"],
    placeholder: standin !== null,
    timeoutMs: a.number("timeout", 0.1, 3600) * 1000,
  };
}
