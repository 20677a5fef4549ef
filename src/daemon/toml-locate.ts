/**
 * Where things are written in a TOML text: the line of each table header, key and list element.
 * Bun.TOML parses without positions (and the line in its syntax errors is not the line), so a
 * message that must name the line of `[rules.options.smtp-guard]` or of a `port` in it comes from
 * this scan. It reads the same grammar (bare, quoted and dotted keys, tables, arrays of tables,
 * inline tables, lists over several lines, every kind of string and comment) and stops at the
 * first thing that is not TOML, which it reports with its own line.
 */

/** A path into the parsed document: table and key names, and list or array-of-tables indices. */
export type TomlPath = readonly (string | number)[];

export interface TomlLocations {
  /** The line (1-based) a path is written on, or else that of its nearest written ancestor. */
  lineOf(path: TomlPath): number | null;
  /** The first thing that is not TOML, or a key or table defined twice. */
  readonly error: { line: number; message: string } | null;
}

class TomlSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

type Kind = "value" | "table" | "implicit" | "inline" | "array-of-tables";

const BARE_KEY = /[A-Za-z0-9_-]/;
const SCALAR_CHAR = /[A-Za-z0-9_+\-.:]/;
const SCALAR =
  /^(?:true|false|[+-]?(?:inf|nan)|[+-]?(?:0|[1-9](?:_?[0-9])*)(?:\.[0-9](?:_?[0-9])*)?(?:[eE][+-]?[0-9](?:_?[0-9])*)?|0x[0-9A-Fa-f](?:_?[0-9A-Fa-f])*|0o[0-7](?:_?[0-7])*|0b[01](?:_?[01])*|\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:\d{2})?)?|\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$/;

export function locateToml(text: string): TomlLocations {
  const scan = new Scanner(text);
  let error: TomlLocations["error"] = null;
  try {
    scan.document();
  } catch (err) {
    if (!(err instanceof TomlSyntaxError)) throw err;
    error = { line: err.line, message: err.message };
  }
  const lines = scan.lines;
  return {
    error,
    lineOf(path) {
      for (let n = path.length; n > 0; n--) {
        const line = lines.get(keyOf(path.slice(0, n)));
        if (line !== undefined) return line;
      }
      return null;
    },
  };
}

/** A path as it would be written in the file: `rules.options."my rule".ports[2]`. */
export function formatTomlPath(path: TomlPath): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += (out ? "." : "") + (/^[A-Za-z0-9_-]+$/.test(part) ? part : quoteKey(part));
  }
  return out;
}

/** A quoted key, with what JSON leaves raw but would steer a terminal (C1, bidi) escaped too. */
function quoteKey(key: string): string {
  return JSON.stringify(key).replace(/[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function keyOf(path: TomlPath): string {
  return JSON.stringify(path);
}

/** A character as a message shows it. */
function show(c: string | undefined): string {
  if (c === undefined) return "the end of the file";
  if (c === "\n" || c === "\r") return "the end of the line";
  return JSON.stringify(c);
}

class Scanner {
  pos = 0;
  line = 1;
  readonly lines = new Map<string, number>();
  private readonly kinds = new Map<string, Kind>();
  /** The index of the last [[table]] of each array of tables. */
  private readonly arrays = new Map<string, number>();

  constructor(private readonly text: string) {
    if (text.charCodeAt(0) === 0xfeff) this.pos = 1;
  }

  private peek(offset = 0): string | undefined {
    return this.text[this.pos + offset];
  }

  private fail(message: string, line = this.line): never {
    throw new TomlSyntaxError(line, message);
  }

  private spaces(): void {
    while (this.peek() === " " || this.peek() === "\t") this.pos++;
  }

  private comment(): void {
    if (this.peek() !== "#") return;
    while (this.pos < this.text.length && this.peek() !== "\n") this.pos++;
  }

  private newline(): boolean {
    if (this.peek() === "\n") {
      this.pos++;
      this.line++;
      return true;
    }
    if (this.peek() === "\r" && this.peek(1) === "\n") {
      this.pos += 2;
      this.line++;
      return true;
    }
    return false;
  }

  /** Spaces, comments and line breaks, as allowed between the items of a list. */
  private blank(): void {
    for (;;) {
      this.spaces();
      this.comment();
      if (!this.newline()) return;
    }
  }

  document(): void {
    let table: (string | number)[] = [];
    while (this.pos < this.text.length) {
      this.spaces();
      this.comment();
      if (this.newline()) continue;
      if (this.pos >= this.text.length) break;
      const what = this.peek() === "[" ? "the table header" : "the value";
      if (this.peek() === "[") table = this.header();
      else this.keyValue(table);
      this.spaces();
      this.comment();
      if (this.pos < this.text.length && !this.newline()) this.fail(`expected the end of the line after ${what}, found ${show(this.peek())}`);
    }
  }

  private key(): string[] {
    const parts: string[] = [];
    for (;;) {
      this.spaces();
      parts.push(this.simpleKey());
      this.spaces();
      if (this.peek() !== ".") return parts;
      this.pos++;
    }
  }

  private simpleKey(): string {
    const c = this.peek();
    if (c === '"') return this.basicString();
    if (c === "'") return this.literalString();
    const start = this.pos;
    while (this.pos < this.text.length && BARE_KEY.test(this.peek()!)) this.pos++;
    if (this.pos === start) this.fail(`expected a key, found ${show(c)}`);
    return this.text.slice(start, this.pos);
  }

  /** Marks the tables a key or header passes through, refusing to pass through a value. */
  private through(path: (string | number)[], line: number): void {
    const k = keyOf(path);
    const kind = this.kinds.get(k);
    if (kind === "value") this.fail(`${formatTomlPath(path)} is a value (line ${this.lines.get(k)}), not a table`);
    if (kind === undefined) {
      this.kinds.set(k, "implicit");
      this.lines.set(k, line);
    }
  }

  private header(): (string | number)[] {
    const line = this.line;
    const array = this.peek(1) === "[";
    this.pos += array ? 2 : 1;
    const key = this.key();
    if (this.peek() !== "]" || (array && this.peek(1) !== "]")) this.fail(`expected ${array ? "']]'" : "']'"} to close the table header, found ${show(this.peek())}`);
    this.pos += array ? 2 : 1;
    const path: (string | number)[] = [];
    for (let i = 0; i < key.length; i++) {
      path.push(key[i]!);
      const k = keyOf(path);
      if (i < key.length - 1) {
        this.through(path, line);
        const index = this.arrays.get(k);
        if (index !== undefined) path.push(index);
        continue;
      }
      const kind = this.kinds.get(k);
      if (array) {
        if (kind !== undefined && kind !== "array-of-tables") this.fail(`[[${formatTomlPath(key)}]] names a ${kind === "value" ? "value" : "table"} already defined on line ${this.lines.get(k)}`);
        const index = (this.arrays.get(k) ?? -1) + 1;
        this.arrays.set(k, index);
        this.kinds.set(k, "array-of-tables");
        if (index === 0) this.lines.set(k, line);
        path.push(index);
        this.kinds.set(keyOf(path), "table");
        this.lines.set(keyOf(path), line);
      } else {
        if (kind !== undefined && kind !== "implicit") this.fail(`[${formatTomlPath(key)}] is defined twice (first on line ${this.lines.get(k)})`);
        this.kinds.set(k, "table");
        this.lines.set(k, line);
      }
    }
    return path;
  }

  private keyValue(table: (string | number)[]): void {
    const line = this.line;
    const key = this.key();
    if (this.peek() !== "=") this.fail(`expected '=' after the key ${formatTomlPath(key)}, found ${show(this.peek())}`);
    this.pos++;
    this.spaces();
    const path = [...table];
    for (let i = 0; i < key.length; i++) {
      path.push(key[i]!);
      if (i < key.length - 1) this.through(path, line);
    }
    const k = keyOf(path);
    if (this.kinds.has(k)) this.fail(`${formatTomlPath(path)} is defined twice (first on line ${this.lines.get(k)})`);
    this.kinds.set(k, "value");
    this.lines.set(k, line);
    this.value(path);
  }

  private value(path: (string | number)[]): void {
    const c = this.peek();
    if (c === '"') {
      if (this.text.startsWith('"""', this.pos)) this.multiline('"');
      else this.basicString();
    } else if (c === "'") {
      if (this.text.startsWith("'''", this.pos)) this.multiline("'");
      else this.literalString();
    } else if (c === "[") this.array(path);
    else if (c === "{") this.inlineTable(path);
    else this.scalar();
  }

  private array(path: (string | number)[]): void {
    const open = this.line;
    this.pos++;
    for (let i = 0; ; i++) {
      this.blank();
      if (this.pos >= this.text.length) this.fail(`the list opened on line ${open} is not closed with ']'`, open);
      if (this.peek() === "]") break;
      const element = [...path, i];
      this.lines.set(keyOf(element), this.line);
      this.value(element);
      this.blank();
      if (this.peek() === ",") {
        this.pos++;
        continue;
      }
      if (this.peek() === "]") break;
      if (this.pos >= this.text.length) this.fail(`the list opened on line ${open} is not closed with ']'`, open);
      this.fail(`expected ',' or ']' in the list opened on line ${open}, found ${show(this.peek())}`);
    }
    this.pos++;
  }

  private inlineTable(path: (string | number)[]): void {
    const open = this.line;
    this.kinds.set(keyOf(path), "inline");
    this.pos++;
    this.blank();
    if (this.peek() === "}") {
      this.pos++;
      return;
    }
    for (;;) {
      this.blank();
      if (this.pos >= this.text.length) this.fail(`the table opened on line ${open} is not closed with '}'`, open);
      this.keyValue(path);
      this.blank();
      if (this.peek() === ",") {
        this.pos++;
        continue;
      }
      if (this.peek() === "}") {
        this.pos++;
        return;
      }
      if (this.pos >= this.text.length) this.fail(`the table opened on line ${open} is not closed with '}'`, open);
      this.fail(`expected ',' or '}' in the table opened on line ${open}, found ${show(this.peek())}`);
    }
  }

  private scalar(): void {
    const start = this.pos;
    while (this.pos < this.text.length && SCALAR_CHAR.test(this.peek()!)) this.pos++;
    // A date and a time may be separated by a space.
    if (/^\d{4}-\d{2}-\d{2}$/.test(this.text.slice(start, this.pos)) && this.peek() === " " && /\d/.test(this.peek(1) ?? "")) {
      this.pos++;
      while (this.pos < this.text.length && SCALAR_CHAR.test(this.peek()!)) this.pos++;
    }
    const token = this.text.slice(start, this.pos);
    if (token === "") this.fail(`expected a value, found ${show(this.peek())}`);
    if (!SCALAR.test(token)) this.fail(`${JSON.stringify(token)} is not a value (text needs quotes)`);
  }

  private basicString(): string {
    const line = this.line;
    this.pos++;
    let out = "";
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === "\n" || c === "\r") this.fail("the string is not closed on its line", line);
      this.pos++;
      if (c === '"') return out;
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = this.peek();
      this.pos++;
      const simple: Record<string, string> = { b: "\b", t: "\t", n: "\n", f: "\f", r: "\r", e: "\x1b", '"': '"', "\\": "\\" };
      if (e !== undefined && Object.hasOwn(simple, e)) out += simple[e];
      else if (e === "u" || e === "U" || e === "x") {
        const n = e === "u" ? 4 : e === "U" ? 8 : 2;
        const hex = this.text.slice(this.pos, this.pos + n);
        const code = /^[0-9A-Fa-f]+$/.test(hex) && hex.length === n ? parseInt(hex, 16) : NaN;
        if (!(code <= 0x10ffff)) this.fail(`\\${e}${hex} is not a character`);
        out += String.fromCodePoint(code);
        this.pos += n;
      } else this.fail(`\\${e ?? ""} is not an escape in a string`);
    }
  }

  private literalString(): string {
    const line = this.line;
    const start = ++this.pos;
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === "\n" || c === "\r") this.fail("the string is not closed on its line", line);
      this.pos++;
      if (c === "'") return this.text.slice(start, this.pos - 1);
    }
  }

  private multiline(quote: '"' | "'"): void {
    const open = this.line;
    const fence = quote.repeat(3);
    this.pos += 3;
    for (;;) {
      if (this.pos >= this.text.length) this.fail(`the multi-line string opened on line ${open} is not closed`, open);
      if (this.text.startsWith(fence, this.pos)) {
        this.pos += 3;
        // Up to two more quotes belong to the string: """a"""" ends in a quote.
        for (let i = 0; i < 2 && this.peek() === quote; i++) this.pos++;
        return;
      }
      if (this.newline()) continue;
      // An escape never hides a line break from the count.
      if (quote === '"' && this.peek() === "\\" && this.peek(1) !== "\n" && this.peek(1) !== "\r") this.pos++;
      this.pos++;
    }
  }
}
