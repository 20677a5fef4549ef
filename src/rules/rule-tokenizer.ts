/**
 * The tokenizer under the rule import check (import-check.ts): enough of JavaScript's and
 * TypeScript's lexical grammar to tell comments, strings, template literals (nested `${}`
 * included) and regular expressions apart from division, so that what looks like an import
 * inside any of them is not taken for one, and one that is cannot hide in them. It only splits:
 * what the tokens mean is for the reader.
 */
export const enum Kind {
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
export const ESCAPED = 2; // a name spelled with \u escapes
export const SUBSTITUTIONS = 4; // a template literal with `${}` parts

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

export function isLineTerminator(c: number): boolean {
  return c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029;
}

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0b || c === 0x0c || c === 0xa0 || c === 0xfeff || (c > 0x7f && /\s/.test(String.fromCharCode(c)));
}

/** Tokens in parallel arrays: a 1 MiB source of one-character tokens stays a few MiB. */
export class Tokens {
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

export interface Unreadable {
  at: number;
  message: string;
}

/** What a `{` opened: a block, an object literal (or type), or a template's `${`. */
const enum Brace {
  Block,
  Expression,
  Substitution,
}

/** Splits a source into tokens; stops at the first thing it cannot read (`unreadable`). */
export class Lexer {
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
