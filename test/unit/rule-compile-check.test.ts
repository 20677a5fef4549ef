/**
 * The checks in front of the rule compiler (src/rules/import-check.ts, src/rules/compile-rule.ts):
 * what is refused and where (file:line:col at the offending token), text that only looks like an
 * import, a real import after syntax that trips readers of text, and that each of the three
 * checks holds on its own against a macro, shown with a marker file that the macro would create.
 * Generated programs check the tokenizer against Bun's own parser.
 */
import { afterAll, describe, expect, test } from "vitest";
import fc from "fast-check";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { scanRuleImports, type ImportScan } from "../../src/rules/import-check.ts";
import { bundle, compileRule, crossCheck } from "../../src/rules/compile-rule.ts";
import { RuleError } from "../../src/errors.ts";

const dir = mkdtempSync(path.join(tmpdir(), "sw-compile-check-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RULE = `export default defineRule({ name: "r", handle() {} });\n`;
const first = (source: string) => {
  const p = scanRuleImports(source).problems[0];
  return p ? `${p.line}:${p.column} ${p.message}` : null;
};
/** 1-based line and column of the first `needle` (after `from`, if given), counted here by hand. */
function where(source: string, needle: string, after = 0): string {
  const at = source.indexOf(needle, after);
  if (at < 0) throw new Error(`no ${needle}`);
  const before = source.slice(0, at).split(/\r\n|\r|\n|\u2028|\u2029/);
  return `${before.length}:${before[before.length - 1]!.length + 1}`;
}
const compileError = async (source: string, file = "r.ts") => {
  try {
    await compileRule(source, file);
  } catch (err) {
    expect(err).toBeInstanceOf(RuleError);
    return (err as Error).message;
  }
  return null;
};

describe("refused, at the offending token", () => {
  const cases: [string, string, string, string][] = [
    // what, source, token it points at, message
    ["a macro import", `import { execSync } from "node:child_process" with { type: "macro" };`, `"node:child_process"`, `not "node:child_process"`],
    ["attributes on sockwarden", `import { defineRule } from "sockwarden" with { type: "macro" };`, "with", `import attributes ("with { ... }")`],
    ["assert on sockwarden", `import { defineRule } from "sockwarden" assert { type: "macro" };`, "assert", `import attributes ("assert { ... }")`],
    ["attributes on a bare import", `import "sockwarden" with { type: "json" };`, "with", "import attributes"],
    ["attributes on a line of their own", `import { defineRule } from "sockwarden"\n  with { type: "macro" };`, "with", "import attributes"],
    ["another module", `import { readFileSync } from "fs";`, `"fs"`, `rules can import only "sockwarden", not "fs"`],
    ["a bare import", `import "./other.ts";`, `"./other.ts"`, `not "./other.ts"`],
    ["a namespace import", `import * as os from 'os';`, `'os'`, `not "os"`],
    ["a default and named import", `import fs, { readFileSync as r } from "node:fs";`, `"node:fs"`, `not "node:fs"`],
    ["a type-only import of another module", `import type { Stats } from "node:fs";`, `"node:fs"`, `not "node:fs"`],
    ["an import type in a type", `let s: import("node:fs").Stats;`, `"node:fs"`, `not "node:fs"`],
    ["a re-export", `export { execSync } from "node:child_process";`, `"node:child_process"`, `not "node:child_process"`],
    ["a type re-export", `export type { Stats } from "node:fs";`, `"node:fs"`, `not "node:fs"`],
    ["attributes on a re-export of sockwarden", `export { defineRule } from "sockwarden" with { type: "macro" };`, "with", "import attributes"],
    ["export * from sockwarden", `export * from "sockwarden";`, "*", `"export * from" is refused`],
    ["export * as", `export * as api from "sockwarden";`, "*", `"export * from" is refused`],
    ["export type *", `export type * from "sockwarden";`, "*", `"export * from" is refused`],
    ["a dynamic import of another module", `void import("fs");`, `"fs"`, `not "fs"`],
    ["a dynamic import as a template", "void import(`fs`);", "`fs`", `not "fs"`],
    ["dynamic import options", `void import("sockwarden", { with: { type: "macro" } });`, "{ with", "import() with options"],
    ["dynamic import options (assert)", `void import("sockwarden", { assert: { type: "macro" } });`, "{ assert", "import() with options"],
    ["dynamic import options on a computed name", `void import(name, opts);`, "opts", "import() with options"],
    ["require", `const fs = require("fs");`, "require", "rules cannot use require()"],
    ["require of sockwarden", `const api = require("sockwarden");`, "require", "rules cannot use require()"],
    ["require.resolve", `const p = require.resolve("fs");`, "require", "rules cannot use require()"],
    ["module.require", `const fs = module.require("fs");`, "require", "rules cannot use require()"],
    ["import-equals", `import fs = require("fs");`, "require", "rules cannot use require()"],
    ["import.meta", `const u = import.meta.url;`, "import", "rules cannot use import.meta"],
    ["an escaped keyword", `\\u0069mport { x } from "fs";`, "\\u0069mport", "names spelled with \\u escapes"],
    ["a triple-slash directive", `/// <reference path="/etc/passwd" />\nimport { defineRule } from "sockwarden";`, "///", "triple-slash directives"],
    ["an import it cannot read", `import 42 from "sockwarden";`, "42", "cannot read this import"],
  ];

  test.each(cases)("%s", (_what, source, token, message) => {
    expect(first(source)).toBe(`${where(source, token)} ${scanRuleImports(source).problems[0]?.message}`);
    expect(scanRuleImports(source).problems[0]?.message).toContain(message);
  });

  test("every problem is reported, in source order", () => {
    const source = `import { a } from "sockwarden" with { type: "macro" };\nimport b from "fs";\nconst c = require("x");\n`;
    const scan = scanRuleImports(source);
    expect(scan.problems.map((p) => `${p.line}:${p.column}`)).toEqual([where(source, "with"), where(source, `"fs"`), where(source, "require")]);
  });

  test("a module name with control characters is shown escaped, on one line", () => {
    const source = `import x from "a\\u001b[2J\u2028b";`;
    const message = scanRuleImports(source).problems[0]!.message;
    expect(message).not.toMatch(/[\u0000-\u001f\u007f\u2028\u2029]/);
    expect(message).toContain(`not "a\\\\u001b[2J\\u2028b"`);
  });

  test("a hostile file cannot make the list of problems grow without bound", () => {
    const scan = scanRuleImports(`const a = require("x");\n`.repeat(5000));
    expect(scan.problems).toHaveLength(100);
    expect(scan.problems[0]!.line).toBe(1);
  });

  test.each([
    ["unclosed import( at every step", "import(".repeat(1 << 17), 100],
    ["import after import", "import ".repeat(1 << 17), 100],
    // Unclosed braces are the parser's to report, as a syntax error.
    ["unclosed export {", "export {".repeat(1 << 17), 0],
  ])("a 1 MiB file of %s is read in one pass (brackets matched once)", (_what, source, problems) => {
    // Matching each `import(` by searching forward took minutes at this size.
    expect(scanRuleImports(source).problems).toHaveLength(problems);
  });
});

describe("allowed", () => {
  test.each([
    ["the API", `import { defineRule, inCidr } from "sockwarden";\n${RULE}`],
    ["type-only imports of the API", `import type { RuleDefinition } from "sockwarden";\nimport { type Endpoint, defineRule } from "sockwarden";\n${RULE}`],
    ["a re-export of the API", `export { isPrivate } from "sockwarden";`],
    ["import types of the API", `let e: import("sockwarden").Endpoint;`],
    ["a dynamic import of the API", `void import("sockwarden");`],
    ["names that are only properties", `const o = { import: 1, export: 2, require: 3, with: 4, assert: 5 };\nvoid [o.import, o.require, o?.export];\nconst v = [1, 2].with(0, 3);\nx.require("fs");`],
    ["a method named import", `class A { import() {} require = 1; }\ninterface I { import?: string; import(x: string): void }`],
    ["an assert() call after a string", `const s = "sockwarden"\nassert(s)`],
  ])("%s", (_what, source) => {
    const scan = scanRuleImports(source);
    expect(scan.problems).toEqual([]);
    expect(scan.unreadable).toBeNull();
  });

  test("a computed dynamic import is left to the sandbox's loader, and noted", () => {
    const source = `const name = ["node", "fs"].join(":");\nvoid import(name);\nvoid import(\`sock\${"warden"}\`);\n`;
    const scan = scanRuleImports(source);
    expect(scan.problems).toEqual([]);
    expect(scan.computed.map((p) => `${p.line}:${p.column}`)).toEqual([where(source, "import("), where(source, "import(", source.indexOf("import(") + 1)]);
  });

  test("references: what each import names, type-only ones marked", () => {
    const source = `import { defineRule } from "sockwarden";\nimport type { Endpoint } from "sockwarden";\nvoid import("sockwarden");\n`;
    expect(scanRuleImports(source).references.map((r) => [r.specifier, r.typeOnly, `${r.line}:${r.column}`])).toEqual([
      ["sockwarden", false, "1:28"],
      ["sockwarden", true, "2:31"],
      ["sockwarden", false, "3:13"],
    ]);
  });
});

describe("text that only looks like an import, and a real one after tricky syntax", () => {
  const REAL = `import { x } from "sockwarden" with { type: "macro" };`;

  test.each([
    ["a string", `const s = "import { y } from 'fs' with { type: 'macro' }";`],
    ["a single-quoted string with escapes", `const s = 'it\\'s \\' import("fs") \\\\';`],
    ["a line comment", `// import { y } from "fs" with { type: "macro" };`],
    ["a block comment", `/* import("fs", { with: { type: "macro" } })\n   export * from "x" */`],
    ["a template literal", "const t = `import y from \"fs\" ${'`'} with {}`;"],
    ["nested templates", "const t = `a${`b${`c${\"`\"}`}import(\"fs\")`}d${{ k: '}' }.k}`;"],
    ["a regular expression with quotes", "const r = /[\"'`]import\\/(fs)/g;"],
    ["a slash inside a class", "const r = /[/]import\"/;"],
    ["a regular expression after return", "function f() { return /'/.test(\"'\"); }"],
    ["a regular expression after a condition", "if (a) /`/.test(b);"],
    ["a regular expression after a block", "if (a) { b(); } /`/.test(c);"],
    ["division after an object", "const q = { a: 1 }.a / 2 / 1; const w = '`';"],
    ["division after a call and an index", "const q = f(1) / 2 / g[0] / 1; const w = \"`\";"],
    ["division after ++", "let i = 0; const q = i++ / 2 / 1; const w = '`';"],
    ["division after a non-null assertion", "const q = a! / 2 / 1; const w = '`';"],
    ["division after a template", "const q = `1` / 2 / 1; const w = '`';"],
    ["a string continued over a line", "const s = 'a\\\n`b';"],
    ["a hashbang", "#!/usr/bin/env sockwarden\nconst s = '`';"],
  ])("%s", (_what, tricky) => {
    const quiet = scanRuleImports(tricky);
    expect(quiet.problems).toEqual([]);
    expect(quiet.unreadable).toBeNull();
    const source = `${tricky}\n${REAL}\n`;
    expect(first(source)?.split(" ")[0]).toBe(where(source, "with", tricky.length));
  });

  test("positions: CR LF, lone CR and U+2028 end lines (as in Bun's messages); columns in UTF-16 units", () => {
    for (const nl of ["\r\n", "\r", "\u2028", "\n"]) {
      const source = `// one${nl}const s = "😀é"; ${REAL}`;
      expect(first(source)?.split(" ")[0], JSON.stringify(nl)).toBe(`2:${`const s = "😀é"; `.length + REAL.indexOf("with") + 1}`);
    }
  });

  test("unclosed strings, templates and comments leave the file unread (and unchecked) from there", () => {
    for (const source of [`const s = "open\n${REAL}`, "const t = `open ${a}\n" + REAL, `/* open\n${REAL}`, "const t = `${`}\n" + REAL, `}\n${REAL}`]) {
      const scan = scanRuleImports(source);
      expect(scan.unreadable, source).not.toBeNull();
      expect(scan.unreadable!.line).toBe(1);
    }
  });
});

describe("generated programs: the tokenizer agrees with Bun's parser", () => {
  const parser = new Bun.Transpiler({ loader: "ts", target: "browser" });
  const NASTY = ["import x from 'fs'", 'with { type: "macro" }', "*/", "/*", "//", "`", "${", "}", "'", '"', "\\", "/", "import(", "require("];
  const text = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom(...NASTY)).map((s) => s);
  const doubleQuoted = fc.array(text, { maxLength: 3 }).map((a) => JSON.stringify(a.join("")));
  const singleQuoted = fc.array(text, { maxLength: 3 }).map((a) => `'${a.join("").replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`);
  const templateText = fc.array(text, { maxLength: 3 }).map((a) => a.join("").replace(/\\/g, "\\\\").replace(/`/g, "\\`").replace(/\$/g, "\\$"));
  const regexAtom = fc.constantFrom("a", "\\/", "[/]", "['\"`]", "\\d+", "\"", "'", "`", "(?:x|y)", "[^\\]/]", "\\\\", "b");
  const regex = fc.tuple(fc.array(regexAtom, { minLength: 1, maxLength: 5 }), fc.constantFrom("", "g", "gi")).map(([atoms, flags]) => `/${atoms.join("")}/${flags}`);
  const comment = fc.oneof(
    fc.array(text, { maxLength: 3 }).map((a) => `/*${a.join("").replace(/\*\//g, "* /")}*/`),
    fc.array(text, { maxLength: 3 }).map((a) => `//${a.join("").replace(/[\r\n\u2028\u2029]/g, " ")}\n`),
  );
  const { expr } = fc.letrec<{ expr: string; template: string }>((tie) => ({
    expr: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      doubleQuoted,
      singleQuoted,
      regex,
      fc.constantFrom("a", "b", "1", "a / b / 2", "(a + 1) / 2", "[a][0] / b", "a! / 2", "f(a) / 2", "({ k: a }).k / 2"),
      tie("template"),
      fc.tuple(tie("expr"), tie("expr")).map(([x, y]) => `a ? ${x} : ${y}`),
      fc.tuple(tie("expr"), tie("expr")).map(([x, y]) => `[${x}, ${y}]`),
      fc.tuple(tie("expr"), comment).map(([x, c]) => `f(${c}${x}\n)`),
      tie("expr").map((x) => `({ k: ${x} })`),
    ),
    template: fc
      .tuple(templateText, fc.array(fc.tuple(tie("expr"), templateText), { maxLength: 2 }))
      .map(([head, parts]) => `\`${head}${parts.map(([x, t]) => `\${${x}}${t}`).join("")}\``),
  }));
  const statement = fc.oneof(
    expr.map((x) => `v = ${x};`),
    comment,
    regex.map((r) => `if (a) ${r}.test("z");`),
    regex.map((r) => `if (a) { b = 1 } ${r}.test("z");`),
    expr.map((x) => `void (${x});`),
  );
  const PRELUDE = "let a = 1, b = 2, v: unknown;\nconst f = (x: unknown) => x;";
  const HOSTILE = `import { isPrivate } from "sockwarden" with { type: "macro" };`;

  test("a macro import anywhere between statements is found at its place; without it nothing is", () => {
    fc.assert(
      fc.property(fc.array(statement, { maxLength: 8 }), fc.nat(), (statements, k) => {
        const clean = [PRELUDE, ...statements].join("\n");
        expect(() => parser.scanImports(clean), clean).not.toThrow();
        const quiet = scanRuleImports(clean);
        expect(quiet.unreadable, clean).toBeNull();
        expect(quiet.problems, clean).toEqual([]);
        expect(quiet.references, clean).toEqual([]);

        const at = 1 + (k % (statements.length + 1));
        const lines = [PRELUDE, ...statements];
        lines.splice(at, 0, HOSTILE);
        const source = lines.join("\n");
        const offset = lines.slice(0, at).join("\n").length + 1;
        expect(parser.scanImports(source).map((i) => i.path)).toEqual(["sockwarden"]);
        const scan = scanRuleImports(source);
        expect(scan.unreadable, source).toBeNull();
        expect(scan.problems.map((p) => `${p.line}:${p.column}`), source).toEqual([where(source, "with", offset)]);
        expect(scan.references.map((r) => r.specifier)).toEqual(["sockwarden"]);
      }),
      { numRuns: 300 },
    );
  });

  test("any text at all: the tokenizer ends, and every position it gives is inside the file", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 300 }), (source) => {
        const scan = scanRuleImports(source);
        const lines = source.split(/\r\n|\r|\n|\u2028|\u2029/);
        for (const p of [...scan.problems, ...scan.references, ...(scan.unreadable ? [scan.unreadable] : [])]) {
          expect(p.line).toBeGreaterThanOrEqual(1);
          expect(p.line).toBeLessThanOrEqual(lines.length);
          expect(p.column).toBeGreaterThanOrEqual(1);
          expect(p.column).toBeLessThanOrEqual(lines[p.line - 1]!.length + 1);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("the compile step: three checks, each enough on its own", () => {
  /** A rule whose macro, if it ever ran, would leave `marker` behind. */
  const macroRule = (marker: string, module = "node:child_process") =>
    `import { defineRule } from "sockwarden";\nimport { execSync } from "${module}" with { type: "macro" };\nconst out = execSync("touch ${marker}");\n${RULE}`;

  test("compileRule refuses a macro at the import, and the macro never runs", async () => {
    const marker = path.join(dir, "compile");
    const source = macroRule(marker);
    expect(await compileError(source, "m.ts")).toBe(`m.ts:${where(source, `"node:child_process"`)}: rules can import only "sockwarden", not "node:child_process"`);
    expect(existsSync(marker)).toBe(false);
  });

  test("compileRule refuses an import() the bundler folds into a constant, at the import(", async () => {
    const source = `const p = import("node:" + "fs");\n${RULE}`;
    expect(await compileError(source, "f.ts")).toBe(`f.ts:${where(source, "import(")}: rules can import only "sockwarden", not "node:fs"`);
  });

  test("a syntax error is Bun's message at its place (1-based column)", async () => {
    expect(await compileError(`let x = ;\n`, "s.ts")).toBe(`s.ts:1:9: Unexpected ;`);
  });

  test("a file the tokenizer cannot read but Bun can is refused, not passed", async () => {
    // `of` reads as a keyword to the tokenizer, so `/ 2; const s = "/` looks like a regular
    // expression and the rest of the line like an unclosed string. Bun divides.
    const source = `let of = 4;\nconst half = of / 2; const s = "/";\n${RULE}`;
    expect(scanRuleImports(source).unreadable).not.toBeNull();
    expect(await compileError(source, "u.ts")).toMatch(/^u\.ts:2:\d+: cannot check this rule's imports: a string is not closed$/);
  });

  test("check 2 alone: an import the tokenizer was led past is caught by Bun's parser", async () => {
    // Same trick, with quotes that pair up: the tokenizer reads the macro import as strings.
    const marker = path.join(dir, "check2");
    const source = `let of = 4;\nconst half = of / 2; const s = "/"; import { isPrivate } from "sockwarden" with { type: "macro" }; // "\n${RULE}`;
    const scan = scanRuleImports(source);
    expect(scan.problems).toEqual([]);
    expect(scan.unreadable).toBeNull();
    expect(() => crossCheck(source, "h.ts", scan)).toThrow(/^h\.ts:2:\d+: an import of "sockwarden" in this rule could not be checked/);
    expect(await compileError(source, "h.ts")).toMatch(/could not be checked/);
    // And Bun's import scan itself runs no macro, whatever the file asks for.
    const fooled: ImportScan = { problems: [], references: [], computed: [], unreadable: null };
    const macroOnly = `import { execSync } from "node:child_process" with { type: "macro" };\nexecSync("touch ${marker}");\n`;
    expect(() => crossCheck(macroOnly, "h.ts", fooled)).toThrow(/^h\.ts:1:\d+: rules can import only "sockwarden", not "node:child_process"$/);
    expect(existsSync(marker)).toBe(false);
  });

  test("check 3 alone: the bundler runs with macros off", async () => {
    for (const module of ["node:child_process", "sockwarden"]) {
      const marker = path.join(dir, `check3-${module.replace(/\W/g, "")}`);
      const source = module === "sockwarden" ? `import { defineRule } from "sockwarden" with { type: "macro" };\n${RULE}` : macroRule(marker, module);
      const err = await bundle(source, "b.ts").then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, module).toBeInstanceOf(RuleError);
      expect((err as Error).message).toMatch(/^b\.ts:\d+:\d+: (Macros are disabled|rules can import only)/);
      expect(existsSync(marker)).toBe(false);
    }
  });

  test("a well-behaved rule still compiles, with a source map", async () => {
    const compiled = await compileRule(`import { defineRule, type Endpoint } from "sockwarden";\nconst seen: Endpoint[] = [];\n${RULE}`, "ok.ts");
    expect(compiled.code).toContain(`from "sockwarden"`);
    expect(compiled.exportAt).toEqual({ line: 3, column: 1 });
  });
});
