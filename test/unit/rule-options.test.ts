/**
 * Rule options checked against the rule's declared defaults (rule-options.ts), the description of
 * those defaults made inside the real sandbox (guest-prelude.ts), and the TOML line locator that
 * lets a refusal name the line (toml-locate.ts).
 */
import { afterEach, describe, expect, it } from "vitest";
import path from "node:path";
import { formatTomlPath, locateToml } from "../../src/daemon/toml-locate.ts";
import { ConfigError, keyAt, parseConfig } from "../../src/daemon/config.ts";
import {
  checkRuleOptions,
  chooseOptionsTables,
  readOptionTypes,
  validateRuleOptions,
  type OptionType,
  type RuleWithOptions,
} from "../../src/rules/rule-options.ts";
import { RuleSet } from "../../src/rules/rule-set.ts";
import type { RuleSource } from "../../src/rules/rule-locations.ts";
import { RuleError } from "../../src/errors.ts";

const FIXTURES = path.resolve(import.meta.dirname, "../fixtures/rules");

describe("TOML line locator", () => {
  const text = [
    "# sockwarden", //                                  1
    "interval = 2", //                                  2
    "[rules]", //                                       3
    'sources = ["smtp-guard",', //                      4
    '  "/etc/rules"]  # two', //                        5
    "", //                                              6
    "[rules.options.smtp-guard]", //                    7
    'port = "twenty-five"', //                          8
    "mailServers = [", //                               9
    '  "master",', //                                   10
    "  5,", //                                          11
    "]", //                                             12
    'note = """', //                                    13
    "[not.a.table]", //                                 14
    'port = 1"""', //                                   15
    '[rules.options."my rule"]', //                     16
    "limits.tcp = 10", //                               17
    "inline = { a = 1, b = { c = 2 } }", //             18
    "[[hooks]]", //                                     19
    "name = 'first'", //                                20
    "[[hooks]]", //                                     21
    "name = 'second'", //                               22
    "[hooks.more]", //                                  23
    "x = 1", //                                         24
  ].join("\n");
  const at = locateToml(text);

  it("finds headers, keys, list elements, dotted keys and inline tables", () => {
    expect(at.error).toBeNull();
    expect(at.lineOf(["interval"])).toBe(2);
    expect(at.lineOf(["rules"])).toBe(3);
    expect(at.lineOf(["rules", "sources"])).toBe(4);
    expect(at.lineOf(["rules", "sources", 1])).toBe(5);
    expect(at.lineOf(["rules", "options", "smtp-guard"])).toBe(7);
    expect(at.lineOf(["rules", "options", "smtp-guard", "port"])).toBe(8);
    expect(at.lineOf(["rules", "options", "smtp-guard", "mailServers"])).toBe(9);
    expect(at.lineOf(["rules", "options", "smtp-guard", "mailServers", 1])).toBe(11);
    expect(at.lineOf(["rules", "options", "smtp-guard", "note"])).toBe(13);
    expect(at.lineOf(["rules", "options", "my rule"])).toBe(16);
    expect(at.lineOf(["rules", "options", "my rule", "limits"])).toBe(17);
    expect(at.lineOf(["rules", "options", "my rule", "limits", "tcp"])).toBe(17);
    expect(at.lineOf(["rules", "options", "my rule", "inline", "b", "c"])).toBe(18);
    expect(at.lineOf(["hooks", 0, "name"])).toBe(20);
    expect(at.lineOf(["hooks", 1, "name"])).toBe(22);
    expect(at.lineOf(["hooks", 1, "more", "x"])).toBe(24);
  });

  it("does not take a multi-line string's text for a table or a key", () => {
    expect(at.lineOf(["not", "a", "table"])).toBeNull();
    expect(at.lineOf(["rules", "options", "smtp-guard", "port"])).toBe(8);
  });

  it("falls back to the nearest written ancestor", () => {
    expect(at.lineOf(["rules", "options", "smtp-guard", "absent"])).toBe(7);
    expect(at.lineOf(["rules", "options", "my rule", "inline", "b", "zzz"])).toBe(18);
    expect(at.lineOf(["nowhere"])).toBeNull();
  });

  it("counts CRLF line ends and a byte-order mark like any other", () => {
    const crlf = locateToml("\ufeffa = 1\r\n[t]\r\nb = 'x'\r\n");
    expect(crlf.error).toBeNull();
    expect(crlf.lineOf(["t", "b"])).toBe(3);
  });

  it.each([
    ['interval = 1.0\nsinks = ["stdout"\n', 2, "the list opened on line 2 is not closed with ']'"],
    ['sinks = ["stdout"\ninterval = 2\n', 2, "expected ',' or ']' in the list opened on line 1"],
    ["[rules\nsources = []\n", 1, "expected ']' to close the table header"],
    ["root:x:0:0:root:/root:/bin/bash\n", 1, "expected '=' after the key root"],
    ["a = 1\n\ninterval = \n", 3, "expected a value, found the end of the line"],
    ["a = 1\nb = twenty-five\n", 2, '"twenty-five" is not a value (text needs quotes)'],
    ["a = 1\na = 2\n", 2, "a is defined twice (first on line 1)"],
    ["[t]\nx = 1\n[t]\n", 3, "[t] is defined twice (first on line 1)"],
    ['x = """\nnever closed\n', 1, "the multi-line string opened on line 1 is not closed"],
    ['x = "half\n', 1, "the string is not closed on its line"],
    ["t = { a = 1\n", 1, "the table opened on line 1 is not closed with '}'"],
    ["a = 1\na.b = 2\n", 2, "a is a value (line 1), not a table"],
  ])("reports %j at line %d", (bad, line, message) => {
    expect(locateToml(bad).error).toEqual({ line, message: expect.stringContaining(message) });
  });

  it("names a path as it is written", () => {
    expect(formatTomlPath(["rules", "options", "smtp-guard", "port"])).toBe("rules.options.smtp-guard.port");
    expect(formatTomlPath(["rules", "options", "my rule", "names", 2])).toBe('rules.options."my rule".names[2]');
    expect(formatTomlPath(["a", "x.y"])).toBe('a."x.y"');
    expect(formatTomlPath(["rules", "options", "\u001b]0;x\u0007\u009b\u202e"])).toBe('rules.options."\\u001b]0;x\\u0007\\u009b\\u202e"');
  });
});

describe("configuration syntax errors", () => {
  it.each([
    ['interval = 1.0\nsinks = ["stdout"\n', "f.toml:2: the list opened on line 2 is not closed"],
    ["interval = 1\n[protect\nports = [22]\n", "f.toml:2: expected ']' to close the table header"],
    ["root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/usr/sbin/nologin\n", "f.toml:1: expected '=' after the key root"],
  ])("%j names the line the error is on", (text, expected) => {
    expect(() => parseConfig(text, "f.toml")).toThrow(ConfigError);
    expect(() => parseConfig(text, "f.toml")).toThrow(expected);
  });

  it("keyAt names file, line and key of a configured option", () => {
    const c = parseConfig('interval = 1\n\n[rules.options.smtp-guard]\nport = "twenty-five"\n', "/etc/sockwarden.toml");
    expect(keyAt(c, ["rules", "options", "smtp-guard", "port"])).toBe("/etc/sockwarden.toml:4: rules.options.smtp-guard.port");
    expect(keyAt(c, ["rules", "options", "smtp-guard"])).toBe("/etc/sockwarden.toml:3: rules.options.smtp-guard");
  });
});

// What the sandbox makes of smtp-guard's defaults, { mailServers: MAIL, port: 25 }.
const SMTP_GUARD: OptionType = {
  t: "table",
  keys: [
    ["mailServers", { t: "array", of: [{ t: "string" }], d: '["master", "smtpd", "smtp", …]' }],
    ["port", { t: "number", d: "25" }],
  ],
};
const WHERE = ["rules", "options", "smtp-guard"];
const messages = (problems: { path: (string | number)[]; message: string }[]) => problems.map((p) => `${formatTomlPath(p.path)}: ${p.message}`);

describe("validateRuleOptions", () => {
  it("accepts values of the defaults' types, and no options at all", () => {
    expect(validateRuleOptions("smtp-guard", SMTP_GUARD, { port: 587, mailServers: ["postfix"] }, WHERE)).toEqual([]);
    expect(validateRuleOptions("smtp-guard", SMTP_GUARD, {}, WHERE)).toEqual([]);
  });

  it("refuses a value of another type, naming the key, the default and the value", () => {
    expect(messages(validateRuleOptions("smtp-guard", SMTP_GUARD, { port: "twenty-five" }, WHERE))).toEqual([
      `rules.options.smtp-guard.port: expected a number (the rule's default is 25), not "twenty-five"`,
    ]);
    expect(messages(validateRuleOptions("smtp-guard", SMTP_GUARD, { port: "25" }, WHERE))).toEqual([
      `rules.options.smtp-guard.port: expected a number (the rule's default is 25), not "25"; numbers are written without quotes`,
    ]);
  });

  it("checks lists element by element", () => {
    expect(messages(validateRuleOptions("smtp-guard", SMTP_GUARD, { mailServers: ["master", 5, true] }, WHERE))).toEqual([
      `rules.options.smtp-guard.mailServers[1]: expected a string (as in the rule's default ["master", "smtpd", "smtp", …]), not 5`,
      `rules.options.smtp-guard.mailServers[2]: expected a string (as in the rule's default ["master", "smtpd", "smtp", …]), not true`,
    ]);
    expect(messages(validateRuleOptions("smtp-guard", SMTP_GUARD, { mailServers: "postfix" }, WHERE))).toEqual([
      `rules.options.smtp-guard.mailServers: expected a list (the rule's default is ["master", "smtpd", "smtp", …]), not "postfix"`,
    ]);
  });

  it("refuses keys the rule does not have, saying which it has", () => {
    expect(messages(validateRuleOptions("smtp-guard", SMTP_GUARD, { prot: 25 }, WHERE))).toEqual([
      "rules.options.smtp-guard.prot: unknown option (smtp-guard takes: mailServers, port)",
    ]);
    expect(messages(validateRuleOptions("quiet", { t: "table", keys: [] }, { x: 1 }, ["rules", "options", "quiet"]))).toEqual([
      "rules.options.quiet.x: unknown option (quiet takes no options)",
    ]);
  });

  it("refuses numbers TOML can write but JSON cannot carry, and dates", () => {
    const c = parseConfig("[rules.options.smtp-guard]\nport = inf\nmailServers = [1979-05-27]\n", "f.toml");
    expect(messages(validateRuleOptions("smtp-guard", SMTP_GUARD, c.rules.options["smtp-guard"], WHERE))).toEqual([
      "rules.options.smtp-guard.port: expected a number (the rule's default is 25), not inf",
      expect.stringMatching(/^rules\.options\.smtp-guard\.mailServers\[0\]: expected a string .*, not a date or time \(1979-05-27.*\); to pass it as text, put it in quotes$/),
    ]);
  });

  it("cannot check, and so refuses, with a description that is missing, malformed or too large", () => {
    const deep = (n: number): unknown => (n === 0 ? { t: "number" } : { t: "table", keys: [["x", deep(n - 1)]] });
    const wide = { t: "table", keys: Array.from({ length: 10_001 }, (_, i) => [`k${i}`, { t: "number" }]) };
    for (const bad of [undefined, null, { t: "any" }, { t: "table", keys: [["a", { t: "bogus" }]] }, { t: "table", keys: [["a", { t: "number" }], ["a", { t: "string" }]] }, deep(30), wide, { t: "table", keys: [["a", { t: "number", d: "x".repeat(500) }]] }]) {
      const problems = validateRuleOptions("r", bad, { a: 1 }, ["rules", "options", "r"]);
      expect(problems, JSON.stringify(bad)?.slice(0, 80)).toHaveLength(1);
      expect(problems[0]!.path).toEqual(["rules", "options", "r"]);
      expect(problems[0]!.message).toMatch(/^cannot be checked against the rule's defaults: /);
    }
    expect(() => readOptionTypes(deep(30))).toThrow("nested deeper than 18 levels");
    expect(() => readOptionTypes(wide)).toThrow("more than 10001 values");
  });

  it("shows a description's text without the characters that steer a terminal", () => {
    const types = { t: "table", keys: [["a", { t: "number", d: "\u001b[2J\u202e25" }]] };
    const [p] = validateRuleOptions("r", types, { a: "x" }, []);
    expect(p!.message).toBe(`expected a number (the rule's default is \\u001b[2J\\u202e25), not "x"`);
  });
});

describe("which rule takes which options table", () => {
  const plugin = (name: string): RuleSource => ({ kind: "plugin", name, label: `plugin:${name}` });
  const file = (p: string): RuleSource => ({ kind: "file", path: p, label: p });

  it("goes by plugin or file name, and loads a rule beforehand only where its declared name could matter", async () => {
    const asked: string[] = [];
    const declared = async (s: RuleSource) => {
      asked.push(s.label);
      return s.label === "rules/guard.ts" ? "guard-rule" : "other";
    };
    const sources = [plugin("smtp-guard"), file("rules/new.ts"), file("rules/guard.ts")];
    expect(await chooseOptionsTables(sources, { "smtp-guard": {}, new: {} }, declared)).toEqual(["smtp-guard", "new", null]);
    expect(asked).toEqual([]);
    expect(await chooseOptionsTables(sources, { "smtp-guard": {}, "guard-rule": {} }, declared)).toEqual(["smtp-guard", null, "guard-rule"]);
    expect(asked).toEqual(["rules/new.ts", "rules/guard.ts"]);
  });

  const loaded: RuleWithOptions[] = [
    { name: "smtp-guard", label: "plugin:smtp-guard", table: "smtp-guard", optionTypes: SMTP_GUARD },
    { name: "guard-rule", label: "rules/guard.ts", table: "guard", optionTypes: { t: "table", keys: [["port", { t: "number", d: "25" }]] } },
  ];

  it("refuses options for a rule that is not loaded, suggesting a near name", () => {
    expect(messages(checkRuleOptions({ "smtp-guard": {}, "smtp-gaurd": { port: 25 } }, loaded, ["rules", "options"]))).toEqual([
      "rules.options.smtp-gaurd: no loaded rule is named smtp-gaurd (loaded: smtp-guard, guard-rule); did you mean smtp-guard?",
    ]);
    expect(messages(checkRuleOptions({ nothing: {} }, [], ["rules", "options"]))).toEqual(["rules.options.nothing: no loaded rule is named nothing (loaded: none)"]);
  });

  it("refuses one rule's options under both its file's and its own name", () => {
    expect(messages(checkRuleOptions({ guard: {}, "guard-rule": {} }, loaded, ["rules", "options"]))).toEqual([
      "rules.options.guard-rule: the rule guard-rule (rules/guard.ts) takes its options from the table named after its file, guard; keep one of the two",
    ]);
  });

  it("checks each table against the rule that takes it", () => {
    expect(messages(checkRuleOptions({ "smtp-guard": { port: "x" }, guard: { port: true } }, loaded, ["rules", "options"]))).toEqual([
      `rules.options.smtp-guard.port: expected a number (the rule's default is 25), not "x"`,
      "rules.options.guard.port: expected a number (the rule's default is 25), not true",
    ]);
  });
});

describe("the sandbox's description of a rule's defaults", () => {
  let rules: RuleSet | null = null;
  afterEach(() => {
    rules?.dispose();
    rules = null;
  });
  const load = async (source: RuleSource, options: unknown = {}, callBudgetMs = 50) => {
    rules = new RuleSet({ onReport: () => {}, limits: { callBudgetMs } });
    const { info } = await rules.add(source, options);
    return info as typeof info & { optionTypes?: unknown };
  };

  it("describes smtp-guard's defaults, against which 'twenty-five' is refused", async () => {
    const info = await load({ kind: "plugin", name: "smtp-guard", label: "plugin:smtp-guard" }, { port: "twenty-five" });
    expect(info.optionTypes).toEqual(SMTP_GUARD);
    expect(messages(validateRuleOptions(info.name, info.optionTypes, { port: "twenty-five" }, WHERE))).toEqual([
      `rules.options.smtp-guard.port: expected a number (the rule's default is 25), not "twenty-five"`,
    ]);
  });

  it("tells every kind of default apart", async () => {
    const info = await load({ kind: "file", path: path.join(FIXTURES, "options/shapes.ts"), label: "shapes.ts" });
    expect(info.optionTypes).toEqual({
      t: "table",
      keys: [
        ["port", { t: "number", d: "25" }],
        ["label", { t: "string", d: '"mail"' }],
        ["strict", { t: "boolean", d: "false" }],
        ["names", { t: "array", of: [{ t: "string" }], d: '["master", "smtpd", "exim4", …]' }],
        ["mixed", { t: "array", of: [{ t: "number" }, { t: "string" }], d: '[1, "x"]' }],
        ["empty", { t: "array", of: [], d: "[]" }],
        ["limits", { t: "table", keys: [["tcp", { t: "number", d: "10" }], ["udp", { t: "number", d: "5" }]] }],
        ["map", { t: "table", keys: null }],
        ["anything", { t: "any", d: "null" }],
        ["extra", { t: "any", d: "undefined" }],
        ["pattern", { t: "fixed", d: "a RegExp object" }],
        ["pick", { t: "fixed", d: "a function" }],
      ],
    });
    const check = (given: unknown) => messages(validateRuleOptions("shapes", info.optionTypes, given, []));
    expect(check({ mixed: [2, "y", 3], empty: [1, "a", { b: [] }], map: { any: { thing: [1] } }, anything: [1, { a: "b" }], extra: true, limits: { tcp: 1, udp: 2 } })).toEqual([]);
    expect(check({ mixed: [false], limits: { tcp: 1 }, map: [], pattern: "x", pick: 1 })).toEqual([
      `mixed[0]: expected a number or a string (as in the rule's default [1, "x"]), not false`,
      "limits: missing udp: a table given here replaces the rule's default table whole, so it needs all of tcp, udp",
      "map: expected a table, not a list",
      "pattern: cannot be set from the configuration (the rule's default is a RegExp object)",
      "pick: cannot be set from the configuration (the rule's default is a function)",
    ]);
    expect(check({ limits: { tcp: 1, udp: 2, sctp: 3 } })).toEqual(["limits.sctp: unknown option (this table of shapes takes: tcp, udp)"]);
  });

  it("is what the rule declared even when it rewrites JSON on the way (hostile 71)", async () => {
    const info = await load({ kind: "file", path: path.join(FIXTURES, "hostile/71-forged-description.ts"), label: "71.ts" });
    expect(info).toMatchObject({ name: "forged-description", on: ["opened", "closed", "state-changed"], periodic: false });
    expect(info.optionTypes).toEqual({ t: "table", keys: [["port", { t: "number", d: "25" }]] });
  });

  // The last two build large defaults: a generous budget, since what is checked is the bound
  // that stops the description, not speed.
  it.each([
    ["hostile/69-self-holding-options.ts", "the default options nest deeper than 16 levels", 50],
    ["hostile/70-endless-options.ts", "a default list holds more than 100000 elements", 50],
    ["options/long-names.ts", "the default options are too large to check settings against: more than 1048576 characters to describe", 1000],
    ["options/many-values.ts", "the default options are too large to check settings against: more than 10000 values", 1000],
  ])("refuses %s at load", async (f, message, budget) => {
    const err = await load({ kind: "file", path: path.join(FIXTURES, f), label: f }, {}, budget).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RuleError);
    expect((err as Error).message).toContain(message);
  });
});
