/**
 * The layer rule of docs/ARCHITECTURE.md, checked on every import in src/: static imports,
 * `export … from`, dynamic `import()`, `import("…")` types and `require()`. A module may import
 * its own folder and any layer below its own; never a layer above, nor another folder of its
 * own layer. A file in a folder the rule does not place fails too, so a new folder is placed
 * on purpose rather than by accident.
 */
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * Top to bottom. Entries are the folders of src/ and the files at its top; a folder's subfolders
 * (view/live, rules/runner, engine/linux) belong to it.
 */
const LAYERS: readonly (readonly string[])[] = [
  ["main.ts"],
  ["cli"],
  ["daemon", "view"],
  ["rules", "actions", "outputs"],
  ["format", "filter"],
  ["monitor"],
  ["engine"],
  ["net"],
  ["model", "text", "errors.ts", "timers.ts", "trace.ts", "version.ts"],
];

/** Packages only one folder may load: the OS bindings stay in the engine, the parser in the CLI. */
const PACKAGE_OWNERS: Readonly<Record<string, string>> = { koffi: "engine", yargs: "cli" };

const ROOT = path.resolve(import.meta.dirname, "../..");
const SRC = path.join(ROOT, "src");

interface Import {
  file: string;
  line: number;
  specifier: string;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) return sourceFiles(p);
    return /\.(ts|tsx|mts|cts)$/.test(d.name) ? [p] : [];
  });
}

/** Every module specifier a file names, found by walking its syntax tree (comments and strings ignored). */
function importsOf(file: string, text: string): Import[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: Import[] = [];
  const add = (node: ts.Node, spec: ts.Node | undefined) => {
    if (spec && ts.isStringLiteralLike(spec)) {
      found.push({ file, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1, specifier: spec.text });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node, node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node, node.moduleReference.expression);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node, node.argument.literal);
    else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === "require")) add(node, node.arguments[0]);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** The layer entry a path under src/ belongs to: its first folder, or the file itself at the top. */
function unitOf(absolute: string): string | null {
  const rel = path.relative(SRC, absolute);
  if (rel.startsWith("..") || path.isAbsolute(rel)) return null;
  return rel.split(path.sep)[0]!;
}

const tierOf = new Map<string, number>(LAYERS.flatMap((units, tier) => units.map((u) => [u, tier] as const)));

/** Why an import breaks the rule, or null when it keeps it. */
function violation(imp: Import): string | null {
  const from = unitOf(imp.file)!;
  const where = `${path.relative(ROOT, imp.file)}:${imp.line} imports "${imp.specifier}"`;
  const fromTier = tierOf.get(from);
  if (fromTier === undefined) return `${where}: src/${from} is in no layer of the rule`;
  if (!imp.specifier.startsWith(".")) {
    const pkg = imp.specifier.split("/")[0]!;
    const owner = PACKAGE_OWNERS[pkg];
    return owner && owner !== from ? `${where}: only src/${owner} may load ${pkg}` : null;
  }
  const target = path.resolve(path.dirname(imp.file), imp.specifier);
  const to = unitOf(target);
  if (to === null) return `${where}: outside src/`;
  if (to === from) return null;
  const toTier = tierOf.get(to);
  if (toTier === undefined) return `${where}: src/${to} is in no layer of the rule`;
  if (toTier < fromTier) return `${where}: up, from ${from} to ${to}`;
  if (toTier === fromTier) return `${where}: sideways, from ${from} to ${to} (same layer)`;
  return null;
}

describe("layers", () => {
  const files = sourceFiles(SRC);
  const imports = files.flatMap((f) => importsOf(f, fs.readFileSync(f, "utf8")));

  it("finds the imports of src/ (static, re-export, dynamic, type-level)", () => {
    expect(files.length).toBeGreaterThan(100);
    const all = new Set(imports.map((i) => `${path.relative(SRC, i.file)} ${i.specifier}`));
    // main.ts starts its two halves through dynamic import(); a parser that missed them would pass anything.
    expect(all).toContain("main.ts ./cli/main.ts");
    expect(all).toContain("main.ts ./rules/runner/runner-child.ts");
  });

  it("places every folder and top-level file of src/ in one layer", () => {
    const units = [...new Set(files.map((f) => unitOf(f)!))].sort();
    expect(units.filter((u) => !tierOf.has(u))).toEqual([]);
    expect([...tierOf.keys()].filter((u) => !units.includes(u))).toEqual([]);
  });

  it("has no import that goes up or sideways", () => {
    expect(imports.map(violation).filter((v) => v !== null)).toEqual([]);
  });

  it("tells each kind of breach", () => {
    const at = (rel: string, specifier: string) => violation({ file: path.join(SRC, rel), line: 1, specifier });
    expect(at("monitor/x.ts", "../view/y.ts")).toMatch(/: up, from monitor to view$/);
    expect(at("actions/x.ts", "../rules/y.ts")).toMatch(/: sideways, from actions to rules/);
    expect(at("net/x.ts", "../../test/y.ts")).toMatch(/: outside src\/$/);
    expect(at("view/x.ts", "koffi")).toMatch(/only src\/engine may load koffi$/);
    expect(at("view/live/x.ts", "../../actions/y.ts")).toBeNull();
    expect(at("engine/linux/x.ts", "../../model/y.ts")).toBeNull();
    expect(at("cli/x.ts", "yargs")).toBeNull();
  });
});
