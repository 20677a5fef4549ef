/**
 * Options from the configuration, checked against what the rule declared. A rule's `options`
 * defaults are the only statement of what it takes, so a configured value must have the type of
 * its default: a typo, or "twenty-five" for a port, would otherwise reach the rule and quietly
 * stop it from doing its job.
 *
 * The rules, per default value:
 *   number, string, boolean   the same type (numbers finite)
 *   list                      a list whose every element has the type of one of the default's
 *                             elements; an empty default list takes any list
 *   table with keys           a table of those keys only, each checked in turn. At the top
 *                             (the rule's options themselves) keys left out keep their defaults;
 *                             a table given deeper replaces the default's whole, so it must have
 *                             every key
 *   empty table {}            a table of any keys and values: the way a rule asks for a map
 *   null or undefined         any value (JSON: text, numbers, true/false, lists, tables); an
 *                             option without a default is declared this way, `extra: undefined`
 *   anything else             (a function, a RegExp...) cannot be set from the configuration
 * Dates and times from TOML are never options: the rule gets JSON, so they are to be quoted.
 *
 * The description of the defaults (OptionType) is made inside the rule's sandbox, from the
 * defaults themselves. It is the rule's own statement about itself, used only to check the
 * user's values for that rule, so a rule that lies can only hurt itself; the host still reads it
 * as untrusted input, bounded in depth, size and lengths.
 */
import path from "node:path";
import type { RuleSource } from "./rule-locations.ts";

/** The shape of a rule's option defaults, as its sandbox describes them (JSON). */
export type OptionType =
  | { t: "number" | "string" | "boolean" | "any" | "fixed"; d?: string }
  | { t: "array"; of: OptionType[]; d?: string }
  | { t: "table"; keys: [string, OptionType][] | null; d?: string };

/** A problem with one configured value; `path` runs from the document's root. */
export interface OptionProblem {
  path: (string | number)[];
  message: string;
}

/** Bounds on a description: above what the sandbox itself makes (16 levels, 10,000 values). */
const MAX_DEPTH = 18;
const MAX_NODES = 10_001;
const MAX_KEY = 1024;
const MAX_SHOWN = 200;
/** Problems told for one configuration: the first ones are what a user fixes first. */
const MAX_PROBLEMS = 20;

type Shape =
  | { t: "number" | "string" | "boolean" | "any" | "fixed"; d: string | null }
  | { t: "array"; of: Shape[]; d: string | null }
  | { t: "table"; keys: Map<string, Shape> | null; d: string | null };

export class OptionTypesError extends Error {}

/**
 * A checked copy of a sandbox's description of a rule's defaults; throws OptionTypesError when
 * it is not one.
 */
export function readOptionTypes(raw: unknown): Shape {
  let nodes = 0;
  const read = (v: unknown, depth: number): Shape => {
    if (depth > MAX_DEPTH) throw new OptionTypesError(`nested deeper than ${MAX_DEPTH} levels`);
    if (++nodes > MAX_NODES) throw new OptionTypesError(`more than ${MAX_NODES} values`);
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new OptionTypesError("a value's type is not an object");
    const o = v as Record<string, unknown>;
    const d = o.d === undefined ? null : o.d;
    if (d !== null && (typeof d !== "string" || d.length > MAX_SHOWN)) throw new OptionTypesError("a default's text is not a short string");
    const shown = d === null ? null : visible(d);
    switch (o.t) {
      case "number":
      case "string":
      case "boolean":
      case "any":
      case "fixed":
        return { t: o.t, d: shown };
      case "array": {
        if (!Array.isArray(o.of)) throw new OptionTypesError("a list's element types are not a list");
        return { t: "array", of: o.of.map((e) => read(e, depth + 1)), d: shown };
      }
      case "table": {
        if (o.keys === null) return { t: "table", keys: null, d: shown };
        if (!Array.isArray(o.keys)) throw new OptionTypesError("a table's keys are not a list");
        const keys = new Map<string, Shape>();
        for (const entry of o.keys) {
          if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== "string" || entry[0].length > MAX_KEY) {
            throw new OptionTypesError("a table's key is not a [name, type] pair with a short name");
          }
          if (keys.has(entry[0])) throw new OptionTypesError(`the key ${quote(entry[0])} is described twice`);
          keys.set(entry[0], read(entry[1], depth + 1));
        }
        return { t: "table", keys, d: shown };
      }
      default:
        throw new OptionTypesError("a value's type is none of number, string, boolean, any, fixed, array, table");
    }
  };
  return read(raw, 0);
}

/**
 * What is wrong with the options configured for one rule, each with its path (`where` followed
 * by the keys and list indices inside the options). `types` is the rule's description of its
 * defaults as it came from the sandbox.
 */
export function validateRuleOptions(ruleName: string, types: unknown, given: unknown, where: readonly (string | number)[]): OptionProblem[] {
  const problems: OptionProblem[] = [];
  let shape: Shape;
  try {
    if (types === undefined) throw new OptionTypesError("the rule did not describe them");
    shape = readOptionTypes(types);
  } catch (err) {
    if (!(err instanceof OptionTypesError)) throw err;
    return [{ path: [...where], message: `cannot be checked against the rule's defaults: ${err.message}` }];
  }
  if (shape.t !== "table" || shape.keys === null) return [{ path: [...where], message: "cannot be checked against the rule's defaults: they are not a table of keys" }];
  if (!isTable(given)) return [{ path: [...where], message: `expected a table of options for ${ruleName}, not ${describeValue(given)}` }];
  checkTable(ruleName, shape.keys, given, [...where], problems, true);
  return problems;
}

function checkTable(ruleName: string, keys: Map<string, Shape>, given: Record<string, unknown>, at: (string | number)[], problems: OptionProblem[], top: boolean): void {
  for (const [k, v] of Object.entries(given)) {
    if (problems.length >= MAX_PROBLEMS) return;
    const shape = keys.get(k);
    if (shape === undefined) {
      const known = [...keys.keys()].map((n) => formatKey(n));
      const owner = top ? ruleName : `this table of ${ruleName}`;
      problems.push({ path: [...at, k], message: `unknown option (${known.length ? `${owner} takes: ${known.join(", ")}` : `${owner} takes no options`})` });
      continue;
    }
    check(ruleName, shape, v, [...at, k], problems);
  }
  if (top) return;
  // Configured options are laid over the defaults key by key at the top only: a table given
  // deeper replaces the default's table whole, so a key left out would reach the rule missing.
  for (const k of keys.keys()) {
    if (problems.length >= MAX_PROBLEMS) return;
    if (!Object.hasOwn(given, k)) {
      problems.push({ path: [...at], message: `missing ${formatKey(k)}: a table given here replaces the rule's default table whole, so it needs all of ${[...keys.keys()].map(formatKey).join(", ")}` });
    }
  }
}

function check(ruleName: string, shape: Shape, value: unknown, at: (string | number)[], problems: OptionProblem[], elementOf?: Shape): void {
  if (problems.length >= MAX_PROBLEMS) return;
  const fail = (message: string) => problems.push({ path: at, message });
  const defaultIs = elementOf ? (elementOf.d !== null ? ` (as in the rule's default ${elementOf.d})` : "") : shape.d !== null ? ` (the rule's default is ${shape.d})` : "";
  switch (shape.t) {
    case "number":
    case "string":
    case "boolean":
      if (typeof value !== shape.t || (typeof value === "number" && !Number.isFinite(value))) {
        fail(`expected ${kindName(shape)}${defaultIs}, not ${describeValue(value)}${hintFor(shape, value)}`);
      }
      return;
    case "fixed":
      fail(`cannot be set from the configuration (the rule's default is ${shape.d ?? "not a JSON value"})`);
      return;
    case "any": {
      const bad = notJson(value, at);
      if (bad) problems.push(bad);
      return;
    }
    case "array": {
      if (!Array.isArray(value)) {
        fail(`expected a list${defaultIs}, not ${describeValue(value)}`);
        return;
      }
      value.forEach((element, i) => {
        if (problems.length >= MAX_PROBLEMS) return;
        const here = [...at, i];
        if (shape.of.length === 0) {
          const bad = notJson(element, here);
          if (bad) problems.push(bad);
          return;
        }
        // The first element type it fits; else the problems it has as the closest one.
        let best: OptionProblem[] | null = null;
        for (const of of shape.of) {
          const attempt: OptionProblem[] = [];
          check(ruleName, of, element, here, attempt, shape);
          if (attempt.length === 0) return;
          if (best === null) best = attempt;
        }
        if (shape.of.length > 1) {
          const kinds = [...new Set(shape.of.map(kindName))].join(" or ");
          const d = shape.d !== null ? ` (as in the rule's default ${shape.d})` : "";
          problems.push({ path: here, message: `expected ${kinds}${d}, not ${describeValue(element)}` });
        } else problems.push(...best!.slice(0, MAX_PROBLEMS - problems.length));
      });
      return;
    }
    case "table": {
      if (!isTable(value)) {
        fail(`expected a table${defaultIs}, not ${describeValue(value)}`);
        return;
      }
      if (shape.keys === null) {
        const bad = notJson(value, at);
        if (bad) problems.push(bad);
        return;
      }
      checkTable(ruleName, shape.keys, value, at, problems, false);
    }
  }
}

/** A value the rule could not receive as it is (it gets JSON), or null. */
function notJson(value: unknown, at: (string | number)[]): OptionProblem | null {
  if (typeof value === "string" || typeof value === "boolean" || value === null) return null;
  if (typeof value === "number") return Number.isFinite(value) ? null : { path: at, message: `expected a finite number, not ${describeValue(value)}` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = notJson(value[i], [...at, i]);
      if (bad) return bad;
    }
    return null;
  }
  if (isTable(value)) {
    for (const [k, v] of Object.entries(value)) {
      const bad = notJson(v, [...at, k]);
      if (bad) return bad;
    }
    return null;
  }
  return { path: at, message: `a rule's options are JSON values, not ${describeValue(value)}${hintFor({ t: "string", d: null }, value)}` };
}

function isTable(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function kindName(shape: Shape): string {
  switch (shape.t) {
    case "number":
      return "a number";
    case "string":
      return "a string";
    case "boolean":
      return "true or false";
    case "array":
      return "a list";
    case "table":
      return "a table";
    default:
      return "a value";
  }
}

function hintFor(shape: Shape, value: unknown): string {
  if (shape.t === "string" && value !== null && typeof value === "object" && !Array.isArray(value) && !isTable(value)) return "; to pass it as text, put it in quotes";
  if (shape.t === "number" && typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return "; numbers are written without quotes";
  return "";
}

/** A configured value as a message shows it. */
function describeValue(v: unknown): string {
  if (typeof v === "string") return v.length > 60 ? `${quote(v.slice(0, 60))}…` : quote(v);
  if (typeof v === "number") return Number.isNaN(v) ? "nan" : v === Infinity ? "inf" : v === -Infinity ? "-inf" : String(v);
  if (typeof v === "boolean" || v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return "a list";
  if (isTable(v)) return "a table";
  return `a date or time (${visible(String(v)).slice(0, 40)})`;
}

const UNSEEN = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]/gu;

/** Text with the characters that would steer a terminal shown as \u escapes. */
function visible(s: string): string {
  return s.replace(UNSEEN, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function quote(s: string): string {
  return visible(JSON.stringify(s));
}

function formatKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : quote(k);
}

// ---- Which rule takes which options table ----

/** A rule's options table by what names its source: the bundled plugin's name or the file's base name. */
export function optionsTableOfSource(source: RuleSource, tables: Readonly<Record<string, unknown>>): string | null {
  const name = source.kind === "plugin" ? source.name : path.basename(source.label, ".ts");
  return Object.hasOwn(tables, name) ? name : null;
}

/**
 * The options table each source takes: its plugin's or file's name, else the rule's declared
 * name. A rule's declared name is known only once it has loaded, so `declaredName` loads it (once,
 * beforehand) only where that could find a table nothing else takes.
 */
export async function chooseOptionsTables(
  sources: readonly RuleSource[],
  tables: Readonly<Record<string, unknown>>,
  declaredName: (source: RuleSource) => Promise<string | null>,
): Promise<(string | null)[]> {
  const chosen = sources.map((s) => optionsTableOfSource(s, tables));
  const unclaimed = new Set(Object.keys(tables).filter((t) => !chosen.includes(t)));
  for (let i = 0; i < sources.length && unclaimed.size > 0; i++) {
    if (chosen[i] !== null) continue;
    const name = await declaredName(sources[i]!);
    if (name !== null && unclaimed.has(name)) chosen[i] = name;
  }
  return chosen;
}

export interface RuleWithOptions {
  /** The rule's declared name. */
  name: string;
  label: string;
  /** The table it was given, as chooseOptionsTables chose. */
  table: string | null;
  /** Its sandbox's description of its defaults (RuleInfo.optionTypes). */
  optionTypes: unknown;
}

/**
 * Every problem with the configured options tables (under `prefix`, e.g. rules.options): values
 * that do not fit the rule's defaults, and tables that no loaded rule takes.
 */
export function checkRuleOptions(tables: Readonly<Record<string, unknown>>, rules: readonly RuleWithOptions[], prefix: readonly (string | number)[]): OptionProblem[] {
  const problems: OptionProblem[] = [];
  const validated = new Set<string>();
  for (const r of rules) {
    if (r.table === null || !Object.hasOwn(tables, r.table)) continue;
    // Two files of one base name take the same table; each is checked against its own defaults.
    const key = `${r.table}\n${r.name}`;
    if (validated.has(key)) continue;
    validated.add(key);
    problems.push(...validateRuleOptions(r.name, r.optionTypes, tables[r.table], [...prefix, r.table]));
  }
  const taken = new Set(rules.map((r) => r.table));
  for (const table of Object.keys(tables)) {
    if (taken.has(table)) continue;
    const named = rules.find((r) => r.name === table);
    if (named && named.table !== null) {
      problems.push({
        path: [...prefix, table],
        message: `the rule ${formatKey(table)} (${visible(named.label)}) takes its options from the table named after its file, ${formatKey(named.table)}; keep one of the two`,
      });
      continue;
    }
    const names = [...new Set(rules.map((r) => r.name))];
    const near = names.filter((n) => distance(n, table) <= 2);
    const hint = near.length ? `; did you mean ${near.join(" or ")}?` : "";
    problems.push({
      path: [...prefix, table],
      message: `no loaded rule is named ${formatKey(table)} (loaded: ${names.length ? names.join(", ") : "none"})${hint}`,
    });
  }
  return problems.slice(0, MAX_PROBLEMS);
}

/** Edit distance, for "did you mean": short names only, so the cost stays small. */
function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || a.length > 100 || b.length > 100) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
