/**
 * `rules check` and `rules test` type-check a rule against the shipped declarations
 * (src/rules/type-check.ts): a rule that misreads the model or passes a severity that does not
 * exist is refused at file:line:col, while every bundled plugin and example rule passes. The
 * checker sees only the rule, the declarations and the ES2023 library: nothing of the machine.
 */
import { describe, expect, it } from "vitest";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { typeCheckRule } from "../../src/rules/type-check.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");

/** The messages as `rules check` prints them. */
const check = (source: string, file = "rule.ts") => typeCheckRule(source, file).map((e) => e.message);

/** A rule whose handle body is `body`. */
const rule = (body: string, head = 'import { defineRule } from "sockwarden";') =>
  `${head}\nexport default defineRule({\n  name: "r",\n  handle(event, act, ctx) {\n${body}\n  },\n});\n`;

function ruleFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir))
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.endsWith(".d.ts"))
    .sort()
    .map((f) => path.join(dir, f));
}

describe("type errors are refused at their line and column", () => {
  it("a number read as a string, and a severity that does not exist", () => {
    const source = rule('    const port: string = event.endpoint.remotePort;\n    act.alert(port.toUpperCase(), "urgent");');
    expect(check(source, "rules/port.ts")).toEqual([
      "rules/port.ts:5:11: Type 'number' is not assignable to type 'string'.",
      `rules/port.ts:6:35: Argument of type '"urgent"' is not assignable to parameter of type 'Severity | undefined'.`,
    ]);
  });

  it('"urgent" alone is an error; the three severities are not', () => {
    expect(check(rule('    act.alert("x", "urgent");'))).toEqual([
      `rule.ts:5:20: Argument of type '"urgent"' is not assignable to parameter of type 'Severity | undefined'.`,
    ]);
    expect(check(rule('    act.alert("a", "info"); act.alert("b", "warning"); act.alert("c", "critical"); act.alert("d");'))).toEqual([]);
  });

  it("strict mode: implicit any and possibly null are errors", () => {
    expect(check(`${rule("    act.log(event.endpoint.process.name);")}function f(x) { return x; }\n`)).toEqual([
      "rule.ts:5:13: 'event.endpoint.process' is possibly 'null'.",
      "rule.ts:8:12: Parameter 'x' implicitly has an 'any' type.",
    ]);
  });

  it("the fields every endpoint carries are typed: unit, container, namespace, queues, rtt", () => {
    const good = rule(
      [
        "    const ep = event.endpoint;",
        '    const unit: string | null = ep.process?.unit ?? null;',
        '    const inPod: boolean = ep.process?.container?.pod != null || ep.namespace?.container?.runtime === "kubernetes";',
        "    const waiting: number = (ep.receiveQueue ?? 0) + (ep.sendQueue ?? 0) + ep.interfaceIndex + (ep.rttMs ?? 0);",
        '    act.log(`${unit} ${inPod} ${waiting} ${ep.namespace?.name ?? ""} ${ep.createdAt ?? ""}`);',
      ].join("\n"),
    );
    expect(check(good)).toEqual([]);
    expect(check(rule('    const u: string = event.endpoint.process!.unit;'))).toEqual([
      "rule.ts:5:11: Type 'string | null' is not assignable to type 'string'. Type 'null' is not assignable to type 'string'.",
    ]);
    expect(check(rule('    if (event.endpoint.namespace?.container?.runtime === "rkt") act.log("x");'))).toHaveLength(1);
  });

  it("a long list of errors is cut, with a count of the rest", () => {
    const errors = check(rule(Array.from({ length: 60 }, (_, i) => `    const v${i}: string = ${i};`).join("\n")));
    expect(errors).toHaveLength(51);
    expect(errors[50]).toBe("rule.ts: and 10 more type errors");
  });

  it("a syntax error is reported at its place, without the type errors it would cause", () => {
    expect(check(rule("    act.log((;\n    const n: number = 'x';"))).toEqual(["rule.ts:5:14: Expression expected."]);
  });

  it("text of the rule quoted in a message is kept as it is (whatever prints it escapes it)", () => {
    expect(check('import x from "\u001b[2J\u0007";\nexport default x;\n')).toEqual([
      "rule.ts:1:15: Cannot find module '\u001b[2J\u0007' or its corresponding type declarations.",
    ]);
  });
});

describe("the checker sees nothing of the machine", () => {
  it("no Node types, no DOM, no library beyond ES2023", () => {
    expect(check(rule("    act.log(String(process.env.HOME));"))).toEqual([
      "rule.ts:5:20: Cannot find name 'process'. A rule has the ECMAScript built-ins and the sockwarden API only.",
    ]);
    expect(check(rule("    act.log(document.title);"))).toEqual([
      "rule.ts:5:13: Cannot find name 'document'. A rule has the ECMAScript built-ins and the sockwarden API only.",
    ]);
    // ES2023 is there (findLast, toSorted); ES2024's groupBy is not declared.
    expect(check(rule("    act.log(String([3, 1].toSorted().findLast((x) => x > 0)));"))).toEqual([]);
    expect(check(rule("    act.log(String(Object.groupBy([1], (x: number) => x)));"))).toEqual([
      "rule.ts:5:27: Property 'groupBy' does not exist on type 'ObjectConstructor'. Rules are checked against ES2023.",
    ]);
  });

  it("imports, references and lib directives find nothing", () => {
    const errors = check(
      [
        '/// <reference path="/etc/passwd" />',
        '/// <reference types="node" />',
        '/// <reference lib="dom" />',
        'import fs from "node:fs";',
        'import other from "./other.ts";',
        'import { defineRule } from "sockwarden";',
        'export default defineRule({ name: String(fs) + String(other) });',
        "",
      ].join("\n"),
    );
    expect(errors).toEqual([
      "rule.ts:1:22: Could not resolve the path '/etc/passwd' with the extensions: '.ts', '.tsx', '.d.ts', '.cts', '.d.cts', '.mts', '.d.mts'.",
      "rule.ts:2:23: Cannot find type definition file for 'node'.",
      "rule.ts:3:21: File '/lib/lib.dom.d.ts' not found.",
      "rule.ts:4:16: Cannot find module 'node:fs' or its corresponding type declarations.",
      "rule.ts:5:19: Cannot find module './other.ts' or its corresponding type declarations.",
    ]);
  });
});

describe("the rules that ship pass", () => {
  const files = [...ruleFiles("plugins"), ...ruleFiles("examples/rules")];

  it("there are bundled plugins and examples to check", () => {
    expect(files.filter((f) => f.startsWith("plugins/")).length).toBeGreaterThanOrEqual(4);
    expect(files.filter((f) => f.startsWith("examples/")).length).toBeGreaterThanOrEqual(1);
  });

  it.each(files)("%s", (file) => {
    expect(check(readFileSync(path.join(ROOT, file), "utf8"), file)).toEqual([]);
  });
});
