import { describe, expect, test } from "vitest";
import { commandSuggestions, editDistance } from "../../src/cli/mistyped-command.ts";
import { tidyCompletions } from "../../src/cli/completion-command.ts";

const COMMANDS = ["list", "live", "watch", "close", "run", "rules", "port", "proc", "completion"];

describe("a first word taken for a mistyped command", () => {
  test("swapped, dropped, added or changed letters, up to two", () => {
    expect(commandSuggestions("lsit", COMMANDS)).toEqual(["list"]);
    expect(commandSuggestions("clsoe", COMMANDS)).toEqual(["close"]);
    expect(commandSuggestions("wach", COMMANDS)).toEqual(["watch"]);
    expect(commandSuggestions("ls", COMMANDS)).toEqual(["list"]);
    expect(commandSuggestions("compleshun", COMMANDS)).toEqual([]);
  });
  test("a beginning of a name is as close as it gets; ties are all told", () => {
    expect(commandSuggestions("li", COMMANDS)).toEqual(["list", "live"]);
    expect(commandSuggestions("comp", COMMANDS)).toEqual(["completion"]);
    expect(commandSuggestions("LIS", COMMANDS)).toEqual(["list"]);
  });
  test("PIDs, globs and words far from every name are process filters", () => {
    expect(commandSuggestions("1234", COMMANDS)).toEqual([]);
    expect(commandSuggestions("li*", COMMANDS)).toEqual([]);
    expect(commandSuggestions("l?st", COMMANDS)).toEqual([]);
    expect(commandSuggestions("nginx", COMMANDS)).toEqual([]);
    expect(commandSuggestions("postgres", COMMANDS)).toEqual([]);
    expect(commandSuggestions("", COMMANDS)).toEqual([]);
  });
  test("edit distance counts a swap of neighbours as one", () => {
    expect(editDistance("lsit", "list")).toBe(1);
    expect(editDistance("", "run")).toBe(3);
    expect(editDistance("kitten", "sitting")).toBe(3);
  });
});

describe("completion words", () => {
  test("the default command is no word to type, and a digit option has one dash", () => {
    expect(tidyCompletions(["$0", "list", "--4", "--ipv4", "-a"])).toEqual(["list", "-4", "--ipv4", "-a"]);
    expect(tidyCompletions(["$0:the live view", "--6:IPv6 only", "--6\tIPv6 only"])).toEqual(["-6:IPv6 only", "-6\tIPv6 only"]);
  });
});
