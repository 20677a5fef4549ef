/**
 * The first look at a rule's source, before any compiler parses it: a reader of what its tokens
 * (rule-tokenizer.ts, which tells comments, strings, templates and regular expressions apart
 * from code) ask the compiler for.
 *
 * Bun's bundler acts on some syntax in the host while it compiles: an import with
 * `with { type: "macro" }` (or `assert`) runs the imported function at bundle time, as the
 * daemon's user, and inlines what it returns (a command's output, a host file). So the only
 * module a rule may name is "sockwarden", and this refuses, wherever they appear:
 *   - import attributes, static or as the options of `import()`;
 *   - any module name but "sockwarden" (type-only imports and `import("...")` types included);
 *   - `export * from`, `require`, `import.meta`, names spelled with `\u` escapes and
 *     triple-slash directives (which make a type checker read files of the host).
 * A name the tokens cannot show (`import(name)`) is left to the sandbox's module loader, which
 * knows only "sockwarden"; nothing about it happens at compile time.
 */
import { ESCAPED, isLineTerminator, Kind, Lexer, SUBSTITUTIONS } from "./rule-tokenizer.ts";

export interface SourcePosition {
  /** 1-based. */
  line: number;
  /** 1-based, in UTF-16 code units. */
  column: number;
}

export interface ImportProblem extends SourcePosition {
  message: string;
}

export interface ModuleReference extends SourcePosition {
  /** The module name as written between the quotes. */
  specifier: string;
  /** `import type` / `export type`: removed by the compiler, never loaded. */
  typeOnly: boolean;
}

export interface ImportScan {
  /** What is refused, in source order. */
  problems: ImportProblem[];
  /** Every module named by a literal in an import, re-export or `import()`, in source order. */
  references: ModuleReference[];
  /** Each `import(...)` whose name is computed, left to the sandbox's loader. */
  computed: SourcePosition[];
  /**
   * Where the tokenizer stopped before the end (an unclosed string, template or comment, or a
   * character it does not know): nothing after it was checked. Usually a syntax error too.
   */
  unreadable: ImportProblem | null;
}

export const API_MODULE = "sockwarden";
/** Only the first is shown; the rest are kept for tests, up to a bound a hostile file cannot raise. */
const MAX_PROBLEMS = 100;

/** A module name or other source text, made safe to show in one line of a message. */
export function displayText(text: string, max = 80): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069"\\]/g, (ch) =>
    ch === '"' || ch === "\\" ? `\\${ch}` : `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * 1-based line and column of offsets. Lines end at LF, CR LF, CR, U+2028 and U+2029, as
 * JavaScript (and so Bun, in its own messages about the same file) counts them.
 */
export function positionFinder(source: string): (offset: number) => SourcePosition {
  const starts = [0];
  for (let i = 0; i < source.length; i++) {
    const c = source.charCodeAt(i);
    if (isLineTerminator(c) && !(c === 0x0d && source.charCodeAt(i + 1) === 0x0a)) starts.push(i + 1);
  }
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo]! + 1 };
  };
}

/** Reads `source` and says what it asks of the compiler that a rule may not. */
export function scanRuleImports(source: string): ImportScan {
  const lexer = new Lexer(source);
  lexer.run();
  const t = lexer.tokens;
  const n = t.length;
  const found: { at: number; message: string }[] = [];
  const refs: { at: number; specifier: string; typeOnly: boolean }[] = [];
  const computed: number[] = [];

  const text = (i: number) => (i >= 0 && i < n ? source.slice(t.start[i], t.end[i]) : "");
  const isPunct = (i: number, p: string) => i >= 0 && i < n && t.kind[i] === Kind.Punct && text(i) === p;
  const isName = (i: number, w: string) => i >= 0 && i < n && t.kind[i] === Kind.Name && text(i) === w;
  const isString = (i: number) => i >= 0 && i < n && t.kind[i] === Kind.String;
  const isPlainTemplate = (i: number) => i >= 0 && i < n && t.kind[i] === Kind.Template && (t.flags[i]! & SUBSTITUTIONS) === 0;
  const isProperty = (i: number) => isPunct(i - 1, ".") || isPunct(i - 1, "?.");
  const refuse = (i: number, message: string) => {
    if (found.length < MAX_PROBLEMS) found.push({ at: i < n ? t.start[i]! : source.length, message });
  };

  /** A module name at token `i`: recorded, and refused unless it is "sockwarden". */
  const specifier = (i: number, typeOnly: boolean) => {
    const name = source.slice(t.start[i]! + 1, t.end[i]! - 1);
    refs.push({ at: t.start[i]!, specifier: name, typeOnly });
    if (name !== API_MODULE) refuse(i, `rules can import only "${API_MODULE}", not "${displayText(name)}"`);
  };
  /** `with { ... }` or `assert { ... }` after the module name of a declaration. */
  const attributes = (i: number) => {
    if (isName(i, "with") || isName(i, "assert")) {
      refuse(i, `import attributes ("${text(i)} { ... }") are refused in rules: with type "macro" the compiler would run the import on the host`);
    }
  };
  // Each bracket's partner, found in one pass: a search per `import(` would be quadratic.
  const partner = new Int32Array(n).fill(-1);
  {
    const open: number[] = [];
    for (let j = 0; j < n; j++) {
      if (t.kind[j] !== Kind.Punct || t.end[j]! - t.start[j]! !== 1) continue;
      const c = source.charCodeAt(t.start[j]!);
      if (c === 0x28 || c === 0x5b || c === 0x7b) open.push(j);
      else if (c === 0x29 || c === 0x5d || c === 0x7d) {
        const o = open.pop();
        if (o !== undefined) {
          partner[o] = j;
          partner[j] = o;
        }
      }
    }
  }
  /** The index of the token that closes the bracket at `open`, or -1. */
  const closing = (open: number) => partner[open]!;

  const importAt = (i: number) => {
    const next = i + 1;
    if (isPunct(next, ".")) {
      return refuse(i, `rules cannot use import.${displayText(text(next + 1), 20)}`);
    }
    if (isPunct(next, "(")) return dynamicImport(i);
    // A property or member named `import` (`{ import: 1 }`, `import?: string` in a type).
    if (isPunct(next, ":") || isPunct(next, "?") || isPunct(next, "?.")) return;
    if (isString(next)) {
      specifier(next, false);
      return attributes(next + 1);
    }
    // import [type] x, { a as b, type C } / * as ns  from "m"   |   import x = require("m")
    const typeOnly = isName(next, "type") && !isName(next + 1, "from") && !isPunct(next + 1, "=") && !isPunct(next + 1, ",");
    for (let j = next; j < n; j++) {
      if (isName(j, "from") && isString(j + 1)) {
        specifier(j + 1, typeOnly);
        return attributes(j + 2);
      }
      if (isPunct(j, "=")) return; // TypeScript's import-equals; a `require` in it is refused on its own
      // Another declaration starts: this one was not one. Stopping here also keeps the work linear.
      if (j > next && (isName(j, "import") || isName(j, "export"))) break;
      const ok = t.kind[j] === Kind.Name || isPunct(j, "{") || isPunct(j, "}") || isPunct(j, ",") || isPunct(j, "*");
      if (!ok) break;
    }
    refuse(next, `cannot read this import; rules can import only "${API_MODULE}"`);
  };

  const dynamicImport = (i: number) => {
    const open = i + 1;
    const close = closing(open);
    if (close < 0) return refuse(i, `cannot read this import(); rules can import only "${API_MODULE}"`);
    let comma = -1;
    for (let j = open + 1; j < close; j++) {
      if (t.kind[j] !== Kind.Punct) continue;
      if (isPunct(j, ",")) {
        comma = j;
        break;
      }
      // Over a nested bracket at once, so each token is looked at once however deep the nesting.
      if (partner[j]! > j) j = partner[j]!;
    }
    const argEnd = comma < 0 ? close : comma;
    // A literal name is checked here; a computed one meets the sandbox's loader at run time.
    if (argEnd === open + 2 && (isString(open + 1) || isPlainTemplate(open + 1))) specifier(open + 1, false);
    else if (argEnd > open + 1) computed.push(t.start[i]!);
    if (comma >= 0 && comma + 1 < close) {
      refuse(comma + 1, `import() with options (import attributes) is refused in rules: with type "macro" the compiler would run the import on the host`);
    }
  };

  const exportAt = (i: number) => {
    let j = i + 1;
    const typeOnly = isName(j, "type") && (isPunct(j + 1, "{") || isPunct(j + 1, "*"));
    if (typeOnly) j++;
    if (isPunct(j, "*")) {
      refuse(j, `"export * from" is refused in rules: a rule exports only what it defines`);
      const from = isName(j + 1, "as") ? j + 3 : j + 1;
      if (isName(from, "from") && isString(from + 1)) refs.push({ at: t.start[from + 1]!, specifier: source.slice(t.start[from + 1]! + 1, t.end[from + 1]! - 1), typeOnly });
      return;
    }
    if (!isPunct(j, "{")) return;
    const close = closing(j);
    if (close < 0) return;
    if (!isName(close + 1, "from")) return;
    if (!isString(close + 2)) return refuse(close + 1, `cannot read this export; rules can import only "${API_MODULE}"`);
    specifier(close + 2, typeOnly);
    attributes(close + 3);
  };

  for (let i = 0; i < n; i++) {
    if (t.kind[i] !== Kind.Name) continue;
    if (t.flags[i]! & ESCAPED) {
      refuse(i, "names spelled with \\u escapes are refused in rules");
      continue;
    }
    const word = text(i);
    if (word === "import" && !isProperty(i)) importAt(i);
    else if (word === "export" && !isProperty(i)) exportAt(i);
    else if (word === "require") {
      // require(...), require.resolve(...), module.require(...): the bundler resolves each.
      const call = isPunct(i + 1, "(") || isPunct(i + 1, ".");
      if ((call && !isProperty(i)) || (isProperty(i) && isName(i - 2, "module") && isPunct(i + 1, "("))) {
        refuse(i, `rules cannot use require(); import from "${API_MODULE}"`);
      }
    }
  }
  for (const at of lexer.directives.slice(0, MAX_PROBLEMS)) found.push({ at, message: "triple-slash directives are refused in rules" });

  found.sort((a, b) => a.at - b.at).splice(MAX_PROBLEMS);
  const at = positionFinder(source);
  return {
    problems: found.map((f) => ({ ...at(f.at), message: f.message })),
    references: refs.map((r) => ({ ...at(r.at), specifier: r.specifier, typeOnly: r.typeOnly })),
    computed: computed.map(at),
    unreadable: lexer.unreadable ? { ...at(lexer.unreadable.at), message: lexer.unreadable.message } : null,
  };
}
