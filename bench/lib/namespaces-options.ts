// Command-line options of bench/namespaces.ts (also `bun bench/run.ts --suite namespaces`).
import { parseArgs, type ParseArgsConfig } from "node:util";
import path from "node:path";
import { splitCommand } from "./options.ts";

export interface NamespacesOptions {
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
  maxMinutes: number;
  outDir: string;
  save: boolean;
  /** Absolute end of the whole run (epoch ms); set by the outer half for the inner one. */
  deadline: number;
  inner: boolean;
  help: boolean;
}

export const NS_BENCH_DIR = path.resolve(import.meta.dir, "..");
export const NS_REPO_ROOT = path.resolve(NS_BENCH_DIR, "..");

export const NAMESPACES_ARG_CONFIG = {
  namespaces: { type: "string" },
  connections: { type: "string" },
  runs: { type: "string" },
  "empty-runs": { type: "string" },
  sockwarden: { type: "string" },
  "sockwarden-cmd": { type: "string" },
  timeout: { type: "string" },
  "max-minutes": { type: "string" },
  out: { type: "string" },
  "no-save": { type: "boolean" },
  inner: { type: "boolean" },
  deadline: { type: "string" },
  help: { type: "boolean", short: "h" },
} satisfies ParseArgsConfig["options"];

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
  --sockwarden PATH     sockwarden executable                  [dist/sockwarden]
  --sockwarden-cmd CMD  measure CMD instead of "PATH list -a --all-namespaces --json"
                        (quoted words allowed, no shell); a stand-in for testing
  --timeout S           limit for each measured command (the ss loop is one)  [60]
  --max-minutes M       limit for the whole run                               [10]
  --out DIR             where namespaces-<date>.md/.json go      [bench/results]
  --no-save             print only
  -h, --help            this text
`;

function integer(name: string, text: string, min: number, max: number): number {
  const m = /^(\d+(?:\.\d+)?)([kK]?)$/.exec(text.trim());
  const n = m ? Math.round(Number(m[1]) * (m[2] ? 1000 : 1)) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`--${name} must be a whole number from ${min} to ${max} (got "${text}")`);
  }
  return n;
}

function seconds(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new Error(`--${name} must be a number from ${min} to ${max} (got "${text}")`);
  }
  return n;
}

export function parseNamespacesOptions(argv: string[]): NamespacesOptions {
  const { values } = parseArgs({ args: argv, options: NAMESPACES_ARG_CONFIG, strict: true, allowPositionals: false });

  let sockwardenCmd: string[];
  let placeholder = false;
  if (values["sockwarden-cmd"] !== undefined) {
    if (values.sockwarden !== undefined) throw new Error("--sockwarden and --sockwarden-cmd exclude each other");
    sockwardenCmd = splitCommand(values["sockwarden-cmd"]);
    if (sockwardenCmd.length === 0) throw new Error("--sockwarden-cmd is empty");
    placeholder = true;
  } else {
    const exe = path.resolve(values.sockwarden ?? path.join(NS_REPO_ROOT, "dist", "sockwarden"));
    sockwardenCmd = [exe, "list", "-a", "--all-namespaces", "--json"];
  }

  const maxMinutes = seconds("max-minutes", values["max-minutes"] ?? "10", 0.1, 24 * 60);
  const deadline = values.deadline !== undefined ? Number(values.deadline) : Date.now() + maxMinutes * 60_000;
  if (!Number.isFinite(deadline)) throw new Error("bad --deadline");

  return {
    namespaces: integer("namespaces", values.namespaces ?? "20", 1, 200),
    connections: integer("connections", values.connections ?? "500", 1, 8000),
    runs: integer("runs", values.runs ?? "7", 2, 100),
    emptyRuns: (() => {
      const n = integer("empty-runs", values["empty-runs"] ?? "4", 0, 100);
      if (n === 1) throw new Error("--empty-runs must be 0 or at least 2 (the first is a warm-up)");
      return n;
    })(),
    sockwardenCmd,
    placeholder,
    timeoutMs: seconds("timeout", values.timeout ?? "60", 0.1, 3600) * 1000,
    maxMinutes,
    outDir: path.resolve(values.out ?? path.join(NS_BENCH_DIR, "results")),
    save: values["no-save"] !== true,
    deadline,
    inner: values.inner === true,
    help: values.help === true,
  };
}

/** `bun bench/run.ts --suite namespaces ...`: this suite's own arguments, or null for another suite. */
export function namespacesSuiteArgs(argv: readonly string[]): string[] | null {
  const out: string[] = [];
  let mine = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--suite" && argv[i + 1] === "namespaces") {
      mine = true;
      i++;
    } else if (a === "--suite=namespaces") mine = true;
    else out.push(a);
  }
  return mine ? out : null;
}
