// The one option parser of every suite: the options all of them share (--sockwarden, --max-minutes,
// --out, --no-save, --quick, and the internal --inner/--deadline of the measuring half) plus each
// suite's own, with that suite's defaults and the smaller ones --quick picks.
import { parseArgs, type ParseArgsConfig } from "node:util";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
export const REPO_ROOT = path.resolve(BENCH_DIR, "..");
export const RESULTS_DIR = path.join(BENCH_DIR, "results");

export const COMMON_ARG_CONFIG = {
  sockwarden: { type: "string" },
  "max-minutes": { type: "string" },
  out: { type: "string" },
  "no-save": { type: "boolean" },
  quick: { type: "boolean" },
  inner: { type: "boolean" },
  deadline: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

export const COMMON_USAGE = `  --sockwarden PATH     sockwarden executable                [dist/sockwarden]
  --max-minutes M       limit for the whole suite
  --out DIR             where latest-<suite>.md/.json go       [bench/results]
  --no-save             print only
  --quick               a smoke run: small sizes, short windows (any option
                        given explicitly still wins)
  -h, --help            this text
`;

export type OptionConfig = ParseArgsConfig["options"];

/** Fields every suite's options have. */
export interface CommonOptions {
  exe: string;
  maxMinutes: number;
  outDir: string;
  save: boolean;
  quick: boolean;
  /** Absolute end of the whole suite (epoch ms): set by the outer half for the measuring half. */
  deadline: number;
  inner: boolean;
  help: boolean;
}

export interface SuiteDefaults {
  /** Defaults of the suite's own string options (and of --max-minutes). */
  normal: Record<string, string>;
  /** What --quick changes. */
  quick: Record<string, string>;
  /** --max-minutes when neither of the above sets it: a suite whose length is itself an option. */
  maxMinutes?: (args: SuiteArgs) => number;
}

/** One suite's parsed command line: typed getters that apply the defaults and say what is wrong. */
export class SuiteArgs {
  readonly common: CommonOptions;

  constructor(
    private readonly values: Record<string, string | boolean | undefined>,
    private readonly defaults: SuiteDefaults,
  ) {
    const quick = values.quick === true;
    const given = this.opt("max-minutes");
    const maxMinutes =
      given === undefined && defaults.maxMinutes ? defaults.maxMinutes(this) : this.number("max-minutes", 0.1, 24 * 60);
    const deadline = values.deadline !== undefined ? Number(values.deadline) : Date.now() + maxMinutes * 60_000;
    if (!Number.isFinite(deadline)) throw new Error("bad --deadline");
    this.common = {
      exe: path.resolve(this.opt("sockwarden") ?? path.join(REPO_ROOT, "dist", "sockwarden")),
      maxMinutes,
      outDir: path.resolve(this.opt("out") ?? RESULTS_DIR),
      save: values["no-save"] !== true,
      quick,
      deadline,
      inner: values.inner === true,
      help: values.help === true,
    };
  }

  /** The option as given, else its --quick default (with --quick), else its default, else undefined. */
  opt(name: string): string | undefined {
    const v = this.values[name];
    if (typeof v === "string") return v;
    if (this.values.quick === true && name in this.defaults.quick) return this.defaults.quick[name];
    return this.defaults.normal[name];
  }

  given(name: string): boolean {
    return this.values[name] !== undefined;
  }

  flag(name: string): boolean {
    return this.values[name] === true;
  }

  str(name: string): string {
    const v = this.opt(name);
    if (v === undefined) throw new Error(`--${name} has no default`);
    return v;
  }

  number(name: string, min: number, max: number, text = this.str(name)): number {
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
      throw new Error(`--${name} must be a number from ${min} to ${max} (got "${text}")`);
    }
    return n;
  }

  /** `--resync`: seconds, or "default" (null: the executable's own default is measured). */
  resync(name = "resync"): number | null {
    return this.str(name) === "default" ? null : this.number(name, 1, 3600);
  }

  /** A whole number, with k (thousand) or m (million) allowed: 10k, 1m. */
  count(name: string, min: number, max: number, text = this.str(name)): number {
    const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(text.trim());
    const mult = !m ? NaN : m[2]!.toLowerCase() === "k" ? 1e3 : m[2]!.toLowerCase() === "m" ? 1e6 : 1;
    const n = m ? Math.round(Number(m[1]) * mult) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new Error(`--${name} must be a whole number from ${min} to ${max}, such as 10000 or 10k (got "${text}")`);
    }
    return n;
  }

  /** Comma-separated words, empty ones dropped. */
  list(name: string): string[] {
    return this.str(name).split(",").map((s) => s.trim()).filter(Boolean);
  }

  counts(name: string, min: number, max: number): number[] {
    const out = this.list(name).map((w) => this.count(name, min, max, w));
    if (out.length === 0) throw new Error(`--${name} is empty`);
    return out;
  }

  /** A non-empty subset of `allowed`, in the order given, without repeats. */
  subset<T extends string>(name: string, allowed: readonly T[]): T[] {
    const out: T[] = [];
    for (const w of this.list(name)) {
      if (!(allowed as readonly string[]).includes(w)) throw new Error(`--${name}: unknown "${w}" (choose from ${allowed.join(", ")})`);
      if (!out.includes(w as T)) out.push(w as T);
    }
    if (out.length === 0) throw new Error(`--${name} is empty`);
    return out;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T {
    const v = this.str(name);
    if (!(allowed as readonly string[]).includes(v)) throw new Error(`--${name} must be one of ${allowed.join(", ")} (got "${v}")`);
    return v as T;
  }
}

/** Parses `argv` against the common options plus `own`; unknown options and positionals are errors. */
export function parseSuiteArgs(argv: string[], own: OptionConfig, defaults: SuiteDefaults): SuiteArgs {
  const { values } = parseArgs({ args: argv, options: { ...COMMON_ARG_CONFIG, ...own }, strict: true, allowPositionals: false });
  return new SuiteArgs(values as Record<string, string | boolean | undefined>, defaults);
}

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

/** A stand-in command (`--sockwarden-cmd`/`--watch-cmd`) split into words, or null when not given. */
export function standIn(args: SuiteArgs, name: string): string[] | null {
  const text = args.opt(name);
  if (text === undefined) return null;
  const words = splitCommand(text);
  if (words.length === 0) throw new Error(`--${name} is empty`);
  return words;
}
