/**
 * One OS seam: outside src/engine no code asks which OS it runs on (`process.platform`) or names
 * a path under /proc; what they need comes from the platform object (src/engine/platform.ts).
 * Comments and text for people may mention /proc; the code is what is checked.
 */
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const SRC = path.resolve(import.meta.dirname, "../../src");

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [full] : [];
  });
}

/** Where `text` (a module's source) asks for the OS or names a /proc path: "line: code" each. */
function osQuestions(fileName: string, text: string): string[] {
  const file = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const at = (node: ts.Node) => `${file.getLineAndCharacterOfPosition(node.getStart()).line + 1}: ${node.getText().slice(0, 80)}`;
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) && node.name.text === "platform" && node.expression.getText() === "process") found.push(at(node));
    const literal = ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateHead(node);
    if (literal && /^\/proc(\/|$)/.test(node.text)) found.push(at(node));
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

describe("the OS seam", () => {
  it("finds what it looks for, and not in comments or text for people", () => {
    const text = [
      "// reads /proc/self/stat",
      'if (process.platform === "win32") x();',
      "const a = fs.readFileSync(`/proc/${pid}/stat`);",
      'const b = path.join("/proc", "self");',
      'const help = "proc: the /proc/net fallback";',
    ].join("\n");
    expect(osQuestions("x.ts", text).map((l) => l.split(":")[0])).toEqual(["2", "3", "4"]);
  });

  it("nothing outside src/engine asks which OS it runs on or reads /proc", () => {
    const offences = sourceFiles(SRC)
      .filter((f) => !path.relative(SRC, f).startsWith(`engine${path.sep}`))
      .flatMap((f) => osQuestions(f, fs.readFileSync(f, "utf8")).map((l) => `${path.relative(SRC, f)}:${l}`));
    expect(offences).toEqual([]);
  });
});
