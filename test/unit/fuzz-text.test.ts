/**
 * Fuzzing of text from users and other programs (event NDJSON for `rules test`, the TOML
 * configuration, command-line strings, sink specs, source maps, terminal input), a few thousand
 * inputs per target; `npm run fuzz` runs a million. Below them, inputs the fuzzer found that once
 * broke a parser.
 */
import { describe, expect, test } from "vitest";
import { TEXT_TARGETS } from "../fuzz/text.ts";
import { fuzzTests } from "../fuzz/suite.ts";
import type { FuzzTarget } from "../fuzz/target.ts";
import { parseSinkSpec } from "../../src/outputs/sink-spec.ts";
import { decodeMappings } from "../../src/rules/source-map.ts";
import { globMatcher } from "../../src/text/glob.ts";
import { buildSelection } from "../../src/filter/endpoint-filter.ts";
import { DecodeError, UsageError } from "../../src/errors.ts";
import { NO_COUNTERS, endpoint, processInfo } from "../support/endpoints.ts";

describe("fuzz: command line, configuration and event text", () => {
  fuzzTests(TEXT_TARGETS as FuzzTarget<never>[]);
});

describe("fuzz: counterexamples kept", () => {
  test.each(["file:/var/log/a.ndjson?maxBytes=%", "webhook:https://hooks.example.net/a#queueSize=%zz", "syslog?appName=%E0%A4%A"])(
    "a broken %%-escape in a sink option is a UsageError: %s",
    (spec) => {
      expect(() => parseSinkSpec(spec)).toThrow(UsageError);
      expect(() => parseSinkSpec(spec)).toThrow(/broken %-escape/);
    },
  );

  test("a well-formed %-escape still decodes", () => {
    expect(parseSinkSpec("syslog?appName=war%64en")).toMatchObject({ appName: "warden" });
  });

  test("a source map with a character outside base64 is a DecodeError", () => {
    expect(() => decodeMappings(" ")).toThrow(DecodeError);
  });

  test("a glob of many stars matches a long name without backtracking into a hang", () => {
    const started = performance.now();
    expect(globMatcher(`${"*a".repeat(30)}b`)("a".repeat(4000))).toBe(false);
    expect(globMatcher(`${"*a".repeat(30)}b`)(`${"a".repeat(4000)}b`)).toBe(true);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test.each([
    ["nginx", "nginx", true],
    ["NGINX", "nginx", true],
    ["post*", "postfix", true],
    ["*fix", "postfix", true],
    ["p*t*x", "postfix", true],
    ["p*t*x", "postfixes", false],
    ["ssh?", "sshd", true],
    ["ssh?", "ssh", false],
    ["*", "", true],
    ["a*b*a", "aba", true],
    ["a*b*a", "ab", false],
    ["**x**", "x", true],
    ["*.*", "a.b", true],
    ["*.*", "ab", false],
    ["(x)*", "(x)y", true],
    ["*", "line\nbreak", true],
  ])("glob %j against %j: %s", (glob, name, expected) => {
    expect(globMatcher(glob)(name)).toBe(expected);
  });

  test("--process with a many-star glob selects without stalling", () => {
    const ep = endpoint({
      localAddress: "10.0.0.5", localPort: 25, remoteAddress: "10.0.0.9", remotePort: 40000, ...NO_COUNTERS, cookie: null, pids: [1],
      process: processInfo({ pid: 1, name: "a".repeat(15), path: `/usr/bin/${"a".repeat(240)}`, ppid: 0 }),
    });
    const started = performance.now();
    expect(buildSelection({ process: "****x" }).matches(ep)).toBe(false);
    expect(buildSelection({ process: `${"*a".repeat(12)}*` }).matches(ep)).toBe(true);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
