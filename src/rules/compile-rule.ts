/**
 * Turns a rule's TypeScript into JavaScript for the sandbox, inside the executable: Bun's
 * bundler strips types and writes a source map, which later maps errors back to the user's
 * lines. The only import a rule may make is "sockwarden".
 *
 * Nothing of the rule may run on the host while it compiles, yet the bundler evaluates macros
 * (`import ... with { type: "macro" }`) in this process. So three independent checks stand in
 * front of it, each enough on its own against a macro:
 *   1. our own tokenizer (import-check.ts) refuses import attributes, every module but
 *      "sockwarden", `require`, `export * from` and `import.meta`, with the place of each;
 *   2. Bun's parser in its scan-only mode (parses, never visits, so never calls a macro) lists
 *      the imports it sees; one the tokenizer did not account for is refused;
 *   3. the bundler runs with macros switched off, and its resolver refuses any other module.
 */
import path from "node:path";
import { RuleError } from "../errors.ts";
import { API_MODULE, displayText, scanRuleImports, type ImportScan, type SourcePosition } from "./import-check.ts";
import { LineMap } from "./source-map.ts";

export interface CompiledRule {
  /** Where the rule came from: a file path, or "plugin:NAME" for a bundled one. */
  file: string;
  code: string;
  lines: LineMap;
  /** Where the source says `export default`: the place to report what the definition gets wrong. */
  exportAt?: { line: number; column: number } | null;
}

const MAX_SOURCE_BYTES = 1 << 20;

export async function compileRule(source: string, file: string): Promise<CompiledRule> {
  if (source.length > MAX_SOURCE_BYTES) throw new RuleError(file, null, null, `a rule may be at most ${MAX_SOURCE_BYTES} bytes`);
  const scan = checkImports(source, file);
  return bundle(source, file, scan.computed[0]);
}

/**
 * Checks 1 and 2 alone: for anything else that reads a rule before it is compiled (the type
 * checker), so that it never sees a file this would refuse.
 */
export function checkImports(source: string, file: string): ImportScan {
  const scan = scanRuleImports(source);
  const refused = scan.problems[0];
  if (refused) throw new RuleError(file, refused.line, refused.column, refused.message);
  crossCheck(source, file, scan);
  return scan;
}

/** Check 3 and the compile itself; exported so that tests can show it holds without 1 and 2. */
export async function bundle(source: string, file: string, computedImport?: SourcePosition): Promise<CompiledRule> {
  // The entry point only needs a name the bundler can resolve from an existing directory;
  // the plugin below supplies the text, so bundled rules need no file on disk.
  // An absolute path on every OS (on Windows "/" alone is not: it would resolve against nothing).
  const entry = path.resolve(path.sep, `sockwarden-rule-${path.basename(file).replace(/[^\w.-]/g, "_")}`);
  const resolved: string[] = [];
  // `macros` is read by Bun.build but missing from its type declarations.
  const options: Bun.BuildConfig & { macros: false } = {
    macros: false,
    entrypoints: [entry],
    root: path.dirname(entry),
    format: "esm",
    target: "browser",
    sourcemap: "external",
    minify: false,
    external: [API_MODULE],
    throw: false,
    plugins: [
      {
        name: "sockwarden-rule",
        setup(build) {
          build.onResolve({ filter: /.*/ }, (args) => {
            if (args.path === entry) return { path: entry, namespace: "rule" };
            if (args.path === API_MODULE) return { path: API_MODULE, external: true };
            resolved.push(args.path);
            return { path: args.path, namespace: "refused" };
          });
          build.onLoad({ filter: /.*/, namespace: "rule" }, () => ({ contents: source, loader: "ts" }));
          build.onLoad({ filter: /.*/, namespace: "refused" }, () => ({ contents: "", loader: "js" }));
        },
      },
    ],
  };
  let result: Awaited<ReturnType<typeof Bun.build>>;
  try {
    result = await Bun.build(options);
  } catch (err) {
    throw fromBuildError(file, err);
  }
  // A refused import first: the build then also fails, on names the empty stand-in lacks.
  // One not written out as such is a computed import(...) the bundler folded into a constant.
  if (resolved.length > 0) throw notTheApi(source, file, resolved[0]!, computedImport);
  if (!result.success) {
    const first = result.logs.find((l) => l.level === "error") ?? result.logs[0];
    throw fromBuildLog(file, first);
  }
  const js = result.outputs.find((o) => o.kind === "entry-point");
  const map = result.outputs.find((o) => o.kind === "sourcemap");
  if (!js) throw new RuleError(file, null, null, "the transpiler produced no code");
  const code = await js.text();
  const mappings = map ? (JSON.parse(await map.text()).mappings as string) : "";
  return { file, code, lines: new LineMap(mappings), exportAt: exportPosition(source) };
}

let parser: Bun.Transpiler | null = null;

/**
 * Check 2: Bun's own reading of the imports. `scanImports` runs the parser's first pass only
 * (statements and import records, no visiting pass), and macros are called from the visiting
 * pass, so it evaluates nothing; `scan` and `transformSync` do visit, and would run a macro. A
 * syntax error surfaces here too, at its place, before the bundler sees the file.
 */
export function crossCheck(source: string, file: string, scan: ImportScan): void {
  let imports: { path: string }[];
  try {
    parser ??= new Bun.Transpiler({ loader: "ts", target: "browser" });
    imports = parser.scanImports(source);
  } catch (err) {
    throw fromBuildError(file, err);
  }
  // The file parses, yet the tokenizer lost its way: what it did not read was not checked.
  if (scan.unreadable) {
    const u = scan.unreadable;
    throw new RuleError(file, u.line, u.column, `cannot check this rule's imports: ${u.message}`);
  }
  // Type-only imports are gone from Bun's list, so it may hold fewer than the tokenizer saw, never more.
  let unmatched = scan.references.filter((r) => r.specifier === API_MODULE).length;
  for (const i of imports) {
    if (i.path === API_MODULE && unmatched-- > 0) continue;
    if (i.path !== API_MODULE) throw notTheApi(source, file, i.path, scan.computed[0]);
    const at = lineOf(source, API_MODULE);
    throw new RuleError(file, at?.line ?? null, at?.column ?? null, `an import of "${API_MODULE}" in this rule could not be checked; write each import as a plain statement`);
  }
}

function notTheApi(source: string, file: string, what: string, otherwise?: SourcePosition): RuleError {
  const at = lineOf(source, what) ?? otherwise;
  return new RuleError(file, at?.line ?? null, at?.column ?? null, `rules can import only "${API_MODULE}", not "${displayText(what)}"`);
}

interface BuildLogLike {
  message?: string;
  position?: { line?: number; column?: number; lineText?: string } | null;
}

function fromBuildLog(file: string, log: unknown): RuleError {
  const l = (log ?? {}) as BuildLogLike;
  const message = (l.message ?? String(log)).split("\n")[0]!;
  const pos = l.position;
  // Bun reports 1-based lines and columns (columns in UTF-16 code units).
  return new RuleError(file, pos?.line ?? null, pos?.column ?? null, message);
}

function fromBuildError(file: string, err: unknown): RuleError {
  const e = err as { errors?: unknown[]; message?: string } | undefined;
  if (e?.errors?.length) return fromBuildLog(file, e.errors[0]);
  if (err instanceof AggregateError && err.errors.length) return fromBuildLog(file, err.errors[0]);
  // One message alone is thrown as itself (a BuildMessage), position included.
  if (err && typeof err === "object" && "position" in err) return fromBuildLog(file, err);
  return new RuleError(file, null, null, (e?.message ?? String(err)).split("\n")[0]!);
}

function lineOf(source: string, needle: string): { line: number; column: number } | null {
  const lines = source.split("\n");
  // The quoted name after `from`, `import` or `import(` first: a comment may name it earlier.
  const quoted = `["'\`]${needle.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}["'\`]`;
  for (const re of [new RegExp(`(?:\\bfrom|\\bimport)\\s*\\(?\\s*(${quoted})`), new RegExp(`(${quoted})`)]) {
    for (let i = 0; i < lines.length; i++) {
      const m = re.exec(lines[i]!);
      if (m) return { line: i + 1, column: m.index + m[0].length - m[1]!.length + 1 };
    }
  }
  return null;
}

function exportPosition(source: string): { line: number; column: number } | null {
  const lines = source.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)export\s+default\b/.exec(lines[i]!);
    if (m) return { line: i + 1, column: m[1]!.length + 1 };
  }
  return null;
}
