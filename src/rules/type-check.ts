/**
 * Type-checks a rule against the shipped declarations (sockwarden.d.ts) with the TypeScript
 * checker, for `rules check` and `rules test`. The compiler that runs rules only strips types,
 * so without this a rule that reads a number as a string, or alerts with a severity that does
 * not exist, passes every check and fails at run time.
 *
 * Only the commands that check load this module (by dynamic import): the checker is several
 * megabytes of JavaScript that the daemon and the listing commands never need.
 *
 * The compiler sees three things, all in memory: the rule, the declarations, and the ES2023
 * library (type-check-lib.ts). Its host answers nothing else: an import of another module, a
 * `/// <reference path>` or a `reference lib="dom"` finds nothing and is an error, and no file of
 * the machine is read. The checker does not run any of the rule's code.
 */
import ts from "typescript";
import { RuleError } from "../errors.ts";
import { RULE_API_DECLARATIONS } from "./api-declarations.ts";
import { esLibrary } from "./type-check-lib.ts" with { type: "macro" };
import type { EsLibrary } from "./type-check-lib.ts";

const LIB_DIR = "/lib/";
const DECLARATIONS = "/sockwarden.d.ts";
const RULE = "/rule.ts";
/** As the compiler's bound: `rules test` checks types before it compiles. */
const MAX_SOURCE_CHARS = 1 << 20;
/** A rule with more errors than this gets a count of the rest: the first ones are what to fix. */
const MAX_REPORTED = 50;
/**
 * Errors that end with advice for a project (install @types/node, Bun's, jQuery's or a test
 * runner's types; change the lib): a rule can take none of it. What it is told instead, by code.
 */
const NO_HOST_OBJECTS = "A rule has the ECMAScript built-ins and the sockwarden API only.";
const NOT_IN_ES2023 = "Rules are checked against ES2023.";
const PROJECT_ADVICE = new Map([
  ...[2580, 2581, 2582, 2584, 2591, 2592, 2593, 2867, 2868].map((code) => [code, NO_HOST_OBJECTS] as const),
  ...[2550, 2583].map((code) => [code, NOT_IN_ES2023] as const),
]);

const LIB: EsLibrary = esLibrary();
const LIB_TEXTS = LIB.files;

/**
 * What `rules init` writes into tsconfig.json, so that an editor reports what `rules check` does.
 * libReplacement off: no lookup of @typescript/lib-* packages.
 */
const OPTIONS: ts.CompilerOptions = {
  strict: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: [LIB.root],
  types: [],
  skipLibCheck: true,
  libReplacement: false,
};

/** Parsed once per process: the library is 61 files, ~12k lines, and every rule shares it. */
const shared = new Map<string, ts.SourceFile>();

function sharedFile(name: string): ts.SourceFile | undefined {
  let file = shared.get(name);
  if (file) return file;
  const text = name === DECLARATIONS ? RULE_API_DECLARATIONS
    : name.startsWith(LIB_DIR) && Object.hasOwn(LIB_TEXTS, name.slice(LIB_DIR.length)) ? LIB_TEXTS[name.slice(LIB_DIR.length)]
    : undefined;
  if (text === undefined) return undefined;
  file = ts.createSourceFile(name, text, ts.ScriptTarget.ES2022, false);
  shared.set(name, file);
  return file;
}

function host(rule: ts.SourceFile): ts.CompilerHost {
  const textOf = (name: string): string | undefined => (name === RULE ? rule.text : sharedFile(name)?.text);
  return {
    getSourceFile: (name) => (name === RULE ? rule : sharedFile(name)),
    getDefaultLibFileName: () => LIB_DIR + LIB.root,
    getDefaultLibLocation: () => LIB_DIR.slice(0, -1),
    writeFile: () => {},
    getCurrentDirectory: () => "/",
    getCanonicalFileName: (name) => name,
    useCaseSensitiveFileNames: () => true,
    getNewLine: () => "\n",
    fileExists: (name) => textOf(name) !== undefined,
    readFile: textOf,
    directoryExists: (dir) => dir === "/" || dir === LIB_DIR.slice(0, -1),
    getDirectories: () => [],
  };
}

/**
 * The rule's type errors as RuleErrors at its 1-based line and column (empty when it checks),
 * in the order of the source; `file` names the rule in them.
 */
export function typeCheckRule(source: string, file: string): RuleError[] {
  if (source.length > MAX_SOURCE_CHARS) return [new RuleError(file, null, null, `a rule may be at most ${MAX_SOURCE_CHARS} bytes`)];
  const rule = ts.createSourceFile(RULE, source, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const program = ts.createProgram({ rootNames: [DECLARATIONS, RULE], options: OPTIONS, host: host(rule) });
  const syntax = program.getSyntacticDiagnostics(rule);
  // As tsc does: types are checked once the syntax is right, or every slip reads as many errors.
  const diagnostics = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...(syntax.length > 0 ? syntax : program.getSemanticDiagnostics(rule)),
  ].filter((d) => d.category === ts.DiagnosticCategory.Error);
  const errors = diagnostics.slice(0, MAX_REPORTED).map((d) => toRuleError(d, file));
  if (diagnostics.length > MAX_REPORTED) {
    errors.push(new RuleError(file, null, null, `and ${diagnostics.length - MAX_REPORTED} more type errors`));
  }
  return errors;
}

function toRuleError(d: ts.Diagnostic, file: string): RuleError {
  // Chained messages (a reason under a reason) come one per line, indented: one line here.
  let message = ts.flattenDiagnosticMessageText(d.messageText, "\n").split("\n").map((l) => l.trim()).filter(Boolean).join(" ");
  const instead = PROJECT_ADVICE.get(d.code);
  if (instead !== undefined && message.includes(". ")) message = `${message.slice(0, message.indexOf(". ") + 1)} ${instead}`;
  // Module names and the like are quoted back from the rule's text as they are.
  if (d.file?.fileName === RULE && d.start !== undefined) {
    const at = d.file.getLineAndCharacterOfPosition(d.start);
    return new RuleError(file, at.line + 1, at.character + 1, message);
  }
  // Not in the rule: a problem of the declarations or the library, which should not happen.
  const where = d.file ? ` (in ${d.file.fileName})` : "";
  return new RuleError(file, null, null, `${message}${where}`);
}
