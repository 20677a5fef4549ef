/**
 * The daemon's loaded rules: built from a configuration's rule sources in one go (so that a set
 * that does not load replaces nothing), with the watcher of their files and directories.
 */
import fs from "node:fs";
import path from "node:path";
import { RuleSet, checkRule } from "../rules/rule-set.ts";
import type { RuleReport } from "../model/rule-action.ts";
import { checkRuleOptions, chooseOptionsTables, type OptionProblem, type RuleWithOptions } from "../rules/rule-options.ts";
import { resolveRuleSources, type RuleSource } from "../rules/rule-locations.ts";
import { RuleFileWatcher, type RuleFileChange } from "../rules/rule-watcher.ts";
import { RuleError } from "../errors.ts";
import { ConfigError, keyAt, type DaemonConfig } from "./config.ts";

export interface RuleState {
  rules: RuleSet;
  sources: RuleSource[];
  /** Rule sources that are directories, as the configuration names them. */
  dirs: string[];
  watcher: RuleFileWatcher | null;
}

export interface RuleStateOptions {
  onReport: (r: RuleReport) => void;
  /** Told about a watched file once its burst of notices is over; null: nothing is watched. */
  onFileChange: RuleFileChange | null;
  warn: (message: string) => void;
}

/** Loads every rule of the configuration; throws (and leaves nothing running) when one does not load. */
export async function loadRuleState(config: DaemonConfig, o: RuleStateOptions): Promise<RuleState> {
  const limits = {
    memoryBytes: config.sandbox.memoryMb << 20,
    wasmMemoryBytes: config.sandbox.wasmMemoryMb << 20,
    callBudgetMs: config.sandbox.timeBudgetMs,
  };
  const rules = new RuleSet({ limits, maxFailures: config.sandbox.maxFailures, isolation: config.sandbox.isolation, onReport: o.onReport });
  const dirs = config.rules.sources.filter(isDirectory);
  let sources: RuleSource[] = [];
  try {
    sources = resolveRuleSources(config.rules.sources);
    const tables = config.rules.options;
    // A rule takes the options under its plugin's or file's name, else under its declared name.
    const declaredName = (s: RuleSource) => checkRule(s, limits).then((info) => info.name, () => null);
    const chosen = await chooseOptionsTables(sources, tables, declaredName);
    const loaded: RuleWithOptions[] = [];
    for (const [i, source] of sources.entries()) {
      const table = chosen[i]!;
      const { info } = await rules.add(source, table === null ? {} : tables[table]);
      loaded.push({ name: info.name, label: source.label, table, optionTypes: (info as { optionTypes?: unknown }).optionTypes });
    }
    // Before any hook runs: a rule never sees options it was not written for.
    const problems = checkRuleOptions(tables, loaded, ["rules", "options"]);
    if (problems.length > 0) throw optionsError(config, problems);
  } catch (err) {
    rules.dispose();
    throw err;
  }
  const files = sources.filter((s) => s.kind === "file").map((s) => s.label);
  const watched = o.onFileChange !== null && (files.length > 0 || dirs.length > 0);
  const watcher = watched ? new RuleFileWatcher(files, dirs, o.onFileChange!, () => rules.loaded.map((r) => r.label), 150, o.warn) : null;
  return { rules, sources, dirs, watcher };
}

/**
 * Reports about rules: the rule set's own, and the daemon's about files of a rule directory
 * (loaded, unloaded, or a new one that does not load).
 */
export type DaemonRuleReport = Omit<RuleReport, "kind"> & { kind: RuleReport["kind"] | "loaded" | "unloaded" | "load-failed" };

/** Report kinds that are news, not failures. */
export const GOOD_NEWS: ReadonlySet<string> = new Set(["reloaded", "loaded", "unloaded"]);

/**
 * Whether a rule subscribes to counters events: then TCP is dumped every interval for them, as
 * the sensor tells state changes only.
 */
export function wantsCounters(rules: RuleSet): boolean {
  return rules.loaded.some((r) => r.info.on.includes("counters"));
}

/** A new rule state when files appeared in or went from the rule directories, and what to tell once it runs. */
export interface Rescan {
  next: RuleState | null;
  reports: DaemonRuleReport[];
}

/**
 * The rules of `config` loaded again, when the rule directories' files are not those `before`
 * loaded. A set that does not load replaces nothing: its failure is the one report.
 */
export async function rescanRuleDirectories(before: RuleState, config: DaemonConfig, load: (c: DaemonConfig) => Promise<RuleState>): Promise<Rescan> {
  let next: RuleState;
  let changes: { added: string[]; removed: string[] };
  try {
    changes = directoryChanges(before, config);
    if (changes.added.length === 0 && changes.removed.length === 0) return { next: null, reports: [] };
    next = await load(config);
  } catch (err) {
    const e = err instanceof RuleError ? err : null;
    const file = e?.file ?? before.dirs.join(", ");
    const report: DaemonRuleReport = {
      rule: path.basename(file, ".ts"), file, kind: "load-failed", line: e?.line ?? null, column: e?.column ?? null,
      message: `${e?.detail ?? (err as Error).message}; the rules running go on as they were`,
    };
    return { next: null, reports: [report] };
  }
  const names = new Map(before.rules.loaded.map((r) => [r.label, r.name]));
  const reports: DaemonRuleReport[] = [];
  for (const r of next.rules.loaded) {
    if (changes.added.includes(r.label)) reports.push({ rule: r.name, file: r.label, kind: "loaded", message: "a new file of a rule directory; the rules were started again with it", line: null, column: null });
  }
  for (const label of changes.removed) {
    reports.push({ rule: names.get(label) ?? path.basename(label, ".ts"), file: label, kind: "unloaded", message: "its file is gone from the rule directory; the rules were started again without it", line: null, column: null });
  }
  return { next, reports };
}

/** Whether a label is a file of one of the rule directories (so that its removal unloads it). */
export function inRuleDirectory(state: RuleState, label: string): boolean {
  const dir = path.resolve(path.dirname(label));
  return state.dirs.some((d) => path.resolve(d) === dir);
}

/** The files of the rule directories that appeared and went since `state` was loaded. */
function directoryChanges(state: RuleState, config: DaemonConfig): { added: string[]; removed: string[] } {
  const now = new Set(resolveRuleSources(config.rules.sources).map((s) => s.label));
  const before = new Set(state.sources.map((s) => s.label));
  return { added: [...now].filter((l) => !before.has(l)), removed: [...before].filter((l) => !now.has(l)) };
}

export function disposeRuleState(state: RuleState): void {
  state.watcher?.close();
  state.rules.dispose();
}

function isDirectory(source: string): boolean {
  try {
    return fs.statSync(source).isDirectory();
  } catch {
    return false;
  }
}

/** One line: the first problem with file, line and key, and how many more there are. */
function optionsError(config: DaemonConfig, problems: OptionProblem[]): ConfigError {
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : "";
  return new ConfigError(`${keyAt(config, problems[0]!.path)}: ${problems[0]!.message}${more}`);
}
