/**
 * The first look at a rule's source, before any compiler parses it: a small tokenizer that knows
 * comments, strings, template literals (nested `${}` included) and regular expressions apart from
 * division, and a reader of what the tokens ask the compiler for.
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

const enum Kind {
  Name,
  Punct,
  String,
  Template,
  Regex,
  Number,
  Private,
}

// Per-token flags.
const REGEX_AFTER = 1; // a `/` right after this token starts a regular expression
const ESCAPED = 2; // a name spelled with \u escapes
const SUBSTITUTIONS = 4; // a template literal with `${}` parts

/** Keywords after which an expression starts, so a `/` begins a regular expression. */
const EXPRESSION_KEYWORDS = new Set([
  "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else", "yield", "await",
  "extends",
]);
/** Keywords after which `{` opens an object literal rather than a block. */
const OBJECT_KEYWORDS = new Set([
  "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "yield", "await", "extends", "default",
]);
/** `(` after these holds a condition; the `)` that closes it is followed by a statement. */
const CONTROL_KEYWORDS = new Set(["if", "while", "for", "with"]);

const PUNCTUATORS = [
  ">>>=", "...", "===", "!==", "**=", "<<=", ">>=", ">>>", "&&=", "||=", "??=",
  "=>", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "++", "--", "+=", "-=", "*=", "%=", "&=", "|=", "^=", "**", "<<", ">>",
];
const MULTI_START = ">.=!*<&|?+-%^";
const SINGLE_PUNCTUATORS = "{}()[];,<>+-*%&|^!~?:=.@";

const ID_START = /[\p{ID_Start}$_]/u;
const ID_CONTINUE = /[\p{ID_Continue}$_\u200c\u200d]/u;
const NUMBER = /(?:0[xXoObB][\da-fA-F_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)n?/y;

function isLineTerminator(c: number): boolean {
  return c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029;
}

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0b || c === 0x0c || c === 0xa0 || c === 0xfeff || (c > 0x7f && /\s/.test(String.fromCharCode(c)));
}

/** Tokens in parallel arrays: a 1 MiB source of one-character tokens stays a few MiB. */
class Tokens {
  kind: Uint8Array;
  start: Int32Array;
  end: Int32Array;
  flags: Uint8Array;
  length = 0;

  constructor(capacity: number) {
    this.kind = new Uint8Array(capacity);
    this.start = new Int32Array(capacity);
    this.end = new Int32Array(capacity);
    this.flags = new Uint8Array(capacity);
  }

  push(kind: Kind, start: number, end: number, flags: number): void {
    if (this.length === this.kind.length) this.grow();
    this.kind[this.length] = kind;
    this.start[this.length] = start;
    this.end[this.length] = end;
    this.flags[this.length] = flags;
    this.length++;
  }

  private grow(): void {
    const n = this.kind.length * 2;
    const kind = new Uint8Array(n);
    kind.set(this.kind);
    const start = new Int32Array(n);
    start.set(this.start);
    const end = new Int32Array(n);
    end.set(this.end);
    const flags = new Uint8Array(n);
    flags.set(this.flags);
    Object.assign(this, { kind, start, end, flags });
  }
}

interface Unreadable {
  at: number;
  message: string;
}

/** What a `{` opened: a block, an object literal (or type), or a template's `${`. */
const enum Brace {
  Block,
  Expression,
  Substitution,
}

class Lexer {
  readonly tokens: Tokens;
  unreadable: Unreadable | null = null;
  /** Offsets of `/// <...>` comments. */
  readonly directives: number[] = [];
  private pos = 0;
  private readonly braces: Brace[] = [];
  /** Per open `(`: whether it holds the condition of if/while/for/with. */
  private readonly parens: boolean[] = [];

  constructor(private readonly src: string) {
    this.tokens = new Tokens(Math.max(64, src.length >> 2));
  }

  run(): void {
    const src = this.src;
    if (src.startsWith("#!")) this.skipLine();
    while (this.unreadable === null) {
      this.skipTrivia();
      if (this.unreadable !== null || this.pos >= src.length) break;
      const c = src.charCodeAt(this.pos);
      const start = this.pos;
      if (c === 0x22 || c === 0x27) this.string(c);
      else if (c === 0x60) {
        this.pos++;
        this.template(start, 0);
      } else if (c === 0x2f) this.slash(start);
      else if (c === 0x7d) this.closeBrace(start);
      else if (c === 0x23) this.privateName(start);
      else if ((c >= 0x30 && c <= 0x39) || (c === 0x2e && isDigit(src.charCodeAt(start + 1)))) this.number(start);
      else if (isAsciiNameStart(c) || c === 0x5c || (c > 0x7f && ID_START.test(String.fromCodePoint(src.codePointAt(start)!)))) this.name(start);
      else this.punct(start);
    }
    if (this.unreadable === null && this.braces.includes(Brace.Substitution)) this.fail(this.src.length, "a template literal is not closed");
  }

  private fail(at: number, message: string): void {
    this.unreadable ??= { at, message };
  }

  private get previous(): number {
    return this.tokens.length - 1;
  }

  private regexAllowed(): boolean {
    const p = this.previous;
    return p < 0 || (this.tokens.flags[p]! & REGEX_AFTER) !== 0;
  }

  private text(i: number): string {
    return this.src.slice(this.tokens.start[i], this.tokens.end[i]);
  }

  private afterDot(i: number): boolean {
    if (i < 0 || this.tokens.kind[i] !== Kind.Punct) return false;
    const t = this.text(i);
    return t === "." || t === "?.";
  }

  private skipLine(): void {
    while (this.pos < this.src.length && !isLineTerminator(this.src.charCodeAt(this.pos))) this.pos++;
  }

  private skipTrivia(): void {
    const src = this.src;
    while (this.pos < src.length) {
      const c = src.charCodeAt(this.pos);
      if (isLineTerminator(c) || isWhitespace(c)) {
        this.pos++;
      } else if (c === 0x2f && src.charCodeAt(this.pos + 1) === 0x2f) {
        if (src.startsWith("///", this.pos) && /^\/\/\/\s*<\s*[a-z-]/i.test(src.slice(this.pos, this.pos + 64))) this.directives.push(this.pos);
        this.skipLine();
      } else if (c === 0x2f && src.charCodeAt(this.pos + 1) === 0x2a) {
        const end = src.indexOf("*/", this.pos + 2);
        if (end < 0) return this.fail(this.pos, "a comment is not closed");
        this.pos = end + 2;
      } else {
        return;
      }
    }
  }

  private string(quote: number): void {
    const src = this.src;
    const start = this.pos++;
    while (this.pos < src.length) {
      const c = src.charCodeAt(this.pos);
      if (c === quote) {
        this.pos++;
        this.tokens.push(Kind.String, start, this.pos, 0);
        return;
      }
      if (c === 0x5c) {
        // An escape; `\` before CR LF continues the string over both.
        this.pos += src.charCodeAt(this.pos + 1) === 0x0d && src.charCodeAt(this.pos + 2) === 0x0a ? 3 : 2;
        continue;
      }
      if (c === 0x0a || c === 0x0d) break;
      this.pos++;
    }
    this.fail(start, "a string is not closed");
  }

  /** From just after "`" or the `}` that ends a substitution, to "`" or the next "${". */
  private template(start: number, flags: number): void {
    const src = this.src;
    while (this.pos < src.length) {
      const c = src.charCodeAt(this.pos);
      if (c === 0x5c) {
        this.pos += 2;
      } else if (c === 0x60) {
        this.pos++;
        this.tokens.push(Kind.Template, start, this.pos, flags);
        return;
      } else if (c === 0x24 && src.charCodeAt(this.pos + 1) === 0x7b) {
        this.pos += 2;
        this.braces.push(Brace.Substitution);
        // An expression follows the `${`.
        this.tokens.push(Kind.Template, start, this.pos, flags | SUBSTITUTIONS | REGEX_AFTER);
        return;
      } else {
        this.pos++;
      }
    }
    this.fail(start, "a template literal is not closed");
  }

  private closeBrace(start: number): void {
    const open = this.braces.pop();
    this.pos++;
    if (open === undefined) return this.fail(start, "a `}` closes nothing");
    if (open === Brace.Substitution) return this.template(start, SUBSTITUTIONS);
    // After a block a statement starts (so a regular expression may); after an object, an operator.
    this.tokens.push(Kind.Punct, start, this.pos, open === Brace.Block ? REGEX_AFTER : 0);
  }

  private slash(start: number): void {
    if (!this.regexAllowed() || !this.regex(start)) this.punct(start);
  }

  /** A regular expression literal from `start`, if one closes on this line. */
  private regex(start: number): boolean {
    const src = this.src;
    let i = start + 1;
    let inClass = false;
    for (;;) {
      if (i >= src.length) return false;
      const c = src.charCodeAt(i);
      if (isLineTerminator(c)) return false;
      if (c === 0x5c) {
        if (isLineTerminator(src.charCodeAt(i + 1))) return false;
        i += 2;
        continue;
      }
      if (c === 0x5b) inClass = true;
      else if (c === 0x5d) inClass = false;
      else if (c === 0x2f && !inClass) break;
      i++;
    }
    i++;
    while (i < src.length && ID_CONTINUE.test(src[i]!)) i++;
    this.pos = i;
    this.tokens.push(Kind.Regex, start, i, 0);
    return true;
  }

  private privateName(start: number): void {
    this.pos++;
    while (this.pos < this.src.length && ID_CONTINUE.test(this.src[this.pos]!)) this.pos++;
    if (this.pos === start + 1) return this.fail(start, `unexpected character "#"`);
    this.tokens.push(Kind.Private, start, this.pos, 0);
  }

  private number(start: number): void {
    NUMBER.lastIndex = start;
    const m = NUMBER.exec(this.src);
    this.pos = start + (m ? m[0].length : 1);
    // A number runs into letters only in a mistake; the letters are a name of their own here.
    this.tokens.push(Kind.Number, start, this.pos, 0);
  }

  private name(start: number): void {
    const src = this.src;
    let flags = 0;
    while (this.pos < src.length) {
      if (src.charCodeAt(this.pos) === 0x5c) {
        // \uXXXX or \u{X...}
        const m = /^\\u(?:[\da-fA-F]{4}|\{[\da-fA-F]{1,6}\})/.exec(src.slice(this.pos, this.pos + 10));
        if (!m) return this.fail(this.pos, "unexpected character \"\\\"");
        flags |= ESCAPED;
        this.pos += m[0].length;
        continue;
      }
      const c = src.charCodeAt(this.pos);
      if (isAsciiNameStart(c) || isDigit(c)) {
        this.pos++;
        continue;
      }
      if (c <= 0x7f) break;
      const ch = String.fromCodePoint(src.codePointAt(this.pos)!);
      if (!ID_CONTINUE.test(ch)) break;
      this.pos += ch.length;
    }
    const word = src.slice(start, this.pos);
    const property = this.afterDot(this.previous);
    if (!property && EXPRESSION_KEYWORDS.has(word)) flags |= REGEX_AFTER;
    this.tokens.push(Kind.Name, start, this.pos, flags);
  }

  private punct(start: number): void {
    const src = this.src;
    let text = MULTI_START.includes(src[start]!) ? PUNCTUATORS.find((p) => src.startsWith(p, start)) : undefined;
    // `?.` before a digit is `?` and a number (`a?.5:1`).
    if (text === "?." && isDigit(src.charCodeAt(start + 2))) text = "?";
    if (text === undefined) {
      const ch = src[start]!;
      if (ch === "/") text = src[start + 1] === "=" ? "/=" : "/";
      else if (SINGLE_PUNCTUATORS.includes(ch)) text = ch;
      else return this.fail(start, `unexpected character ${JSON.stringify(ch)}`);
    }
    const p = this.previous;
    let flags = REGEX_AFTER;
    if (text === "(") {
      this.parens.push(p >= 0 && this.tokens.kind[p] === Kind.Name && !this.afterDot(p - 1) && CONTROL_KEYWORDS.has(this.text(p)));
    } else if (text === ")") {
      const control = this.parens.pop();
      if (control === undefined) return this.fail(start, "a `)` closes nothing");
      if (!control) flags = 0;
    } else if (text === "]" || text === "++" || text === "--") {
      flags = 0;
    } else if (text === "!" && p >= 0 && (this.tokens.flags[p]! & REGEX_AFTER) === 0) {
      // TypeScript's non-null assertion (`x!`) ends an expression: `x! / 2` divides.
      flags = 0;
    } else if (text === "{") {
      this.braces.push(this.opensObject(p) ? Brace.Expression : Brace.Block);
    }
    this.pos = start + text.length;
    this.tokens.push(Kind.Punct, start, this.pos, flags);
  }

  /** Whether a `{` after token `p` opens an object literal (or a type) rather than a block. */
  private opensObject(p: number): boolean {
    if (p < 0) return false;
    const kind = this.tokens.kind[p];
    if (kind === Kind.Name) return !this.afterDot(p - 1) && OBJECT_KEYWORDS.has(this.text(p));
    if (kind === Kind.Template) return true;
    if (kind !== Kind.Punct) return false;
    const t = this.text(p);
    return !(t === ")" || t === "=>" || t === ";" || t === "{" || t === "}");
  }
}

function isAsciiNameStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x24 || c === 0x5f;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

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
