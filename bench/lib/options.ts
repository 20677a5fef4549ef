// Command-line options of bench/run.ts.
import { parseArgs, type ParseArgsConfig } from "node:util";
import path from "node:path";

export const TOOL_KEYS = ["sockwarden", "ss", "netstat", "lsof"] as const;
export type ToolKey = (typeof TOOL_KEYS)[number];

export type StdoutMode = "null" | "pipe";

export interface Options {
  sizes: number[];
  runs: number;
  tools: ToolKey[];
  /** Full command line measured as the sockwarden row. */
  sockwardenCmd: string[];
  /** True when --sockwarden-cmd replaced the real executable (a stand-in for testing). */
  placeholder: boolean;
  timeoutMs: number;
  maxMinutes: number;
  stdout: StdoutMode;
  outDir: string;
  save: boolean;
  /** Set by the outer process: absolute end of the whole run (epoch ms). */
  deadline: number;
  inner: boolean;
  help: boolean;
}

export const REPO_ROOT = path.resolve(import.meta.dir, "..", "..");
export const BENCH_DIR = path.resolve(import.meta.dir, "..");

export const USAGE = `Usage: bun bench/run.ts [options]      (as root)

Times \`sockwarden list -a --json\` against \`ss -tanp\`, \`netstat -tanp\` and
\`lsof -nP -i\` over N established loopback TCP connections held in a private
network namespace.

Options:
  --sizes LIST          connection counts, e.g. 1000,10000 or 1k,10k   [1k,10k,30k]
  --runs N              runs per tool and size; the first is a warm-up    [7]
  --tools LIST          subset of sockwarden,ss,netstat,lsof             [all]
  --sockwarden PATH     sockwarden executable                [dist/sockwarden]
  --sockwarden-cmd CMD  measure CMD instead of "PATH list -a --json"
                        (quoted words allowed, no shell), e.g. 'cat /proc/net/tcp'
  --timeout S           limit for each measured command, seconds          [60]
  --max-minutes M       limit for the whole run                           [30]
  --stdout null|pipe    measured runs write to /dev/null, or to a pipe the
                        harness drains                                  [null]
  --out DIR             where list-<date>.md/.json go          [bench/results]
  --no-save             print the table only
  -h, --help            this text
`;

/** Split a command string into words: whitespace separates, quotes group, backslash escapes. */
export function splitCommand(text: string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === "\\" && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += ch;
      continue;
    }
    if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === "\\" && i + 1 < text.length) {
      cur += text[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated ${quote} in command: ${text}`);
  if (inWord) words.push(cur);
  return words;
}

function parseSize(word: string): number {
  const m = /^(\d+(?:\.\d+)?)([kK]?)$/.exec(word.trim());
  if (!m) throw new Error(`bad size "${word}" (use e.g. 1000 or 10k)`);
  const n = Math.round(Number(m[1]) * (m[2] ? 1000 : 1));
  if (!Number.isInteger(n) || n < 1 || n > 200_000) {
    throw new Error(`size ${word} out of range (1..200000 connections)`);
  }
  return n;
}

function positiveNumber(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new Error(`--${name} must be a number between ${min} and ${max} (got "${text}")`);
  }
  return n;
}

export const LIST_ARG_CONFIG = {
  sizes: { type: "string", default: "1k,10k,30k" },
  runs: { type: "string", default: "7" },
  tools: { type: "string", default: TOOL_KEYS.join(",") },
  sockwarden: { type: "string" },
  "sockwarden-cmd": { type: "string" },
  timeout: { type: "string", default: "60" },
  "max-minutes": { type: "string", default: "30" },
  stdout: { type: "string", default: "null" },
  out: { type: "string" },
  "no-save": { type: "boolean", default: false },
  inner: { type: "boolean", default: false },
  deadline: { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const satisfies ParseArgsConfig["options"];

export function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: LIST_ARG_CONFIG });

  const sizes = values.sizes.split(",").filter((w) => w.trim() !== "").map(parseSize);
  if (sizes.length === 0) throw new Error("--sizes is empty");

  const runs = positiveNumber("runs", values.runs, 2, 100);
  if (!Number.isInteger(runs)) throw new Error("--runs must be an integer");

  const tools: ToolKey[] = [];
  for (const w of values.tools.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!(TOOL_KEYS as readonly string[]).includes(w)) {
      throw new Error(`unknown tool "${w}" (choose from ${TOOL_KEYS.join(", ")})`);
    }
    if (!tools.includes(w as ToolKey)) tools.push(w as ToolKey);
  }
  if (tools.length === 0) throw new Error("--tools is empty");

  if (values.stdout !== "null" && values.stdout !== "pipe") {
    throw new Error(`--stdout must be "null" or "pipe" (got "${values.stdout}")`);
  }

  let sockwardenCmd: string[];
  let placeholder = false;
  if (values["sockwarden-cmd"] !== undefined) {
    sockwardenCmd = splitCommand(values["sockwarden-cmd"]);
    if (sockwardenCmd.length === 0) throw new Error("--sockwarden-cmd is empty");
    placeholder = true;
  } else {
    const exe = path.resolve(values.sockwarden ?? path.join(REPO_ROOT, "dist", "sockwarden"));
    sockwardenCmd = [exe, "list", "-a", "--json"];
  }

  const maxMinutes = positiveNumber("max-minutes", values["max-minutes"], 0.1, 24 * 60);
  const deadline =
    values.deadline !== undefined ? Number(values.deadline) : Date.now() + maxMinutes * 60_000;
  if (!Number.isFinite(deadline)) throw new Error("bad --deadline");

  return {
    sizes,
    runs,
    tools,
    sockwardenCmd,
    placeholder,
    timeoutMs: positiveNumber("timeout", values.timeout, 0.1, 3600) * 1000,
    maxMinutes,
    stdout: values.stdout,
    outDir: path.resolve(values.out ?? path.join(BENCH_DIR, "results")),
    save: !values["no-save"],
    deadline,
    inner: values.inner,
    help: values.help,
  };
}
