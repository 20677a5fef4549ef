/**
 * `sockwarden completion bash`, sourced in a real bash: its completion function, given the words
 * typed (COMP_WORDS, COMP_CWORD), asks the executable and fills COMPREPLY with what fits. Also:
 * each shell's script is printed, and a shell no script exists for is a usage error.
 *
 * Needs a built dist/sockwarden and bash; no root.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { describeRun, run } from "./helpers/netns.ts";
import { EXECUTABLE, requireExecutable } from "./helpers/sockwarden.ts";

beforeAll(() => {
  requireExecutable();
});

/**
 * COMPREPLY after the bash script's completion function ran on `words` (the executable's own
 * path first, as typed), with the cursor at the end of the last word.
 */
async function complete(words: string[]): Promise<string[]> {
  const script = [
    'source <("$0" completion bash) || exit 9',
    'complete -p sockwarden >/dev/null || exit 8',
    'COMP_WORDS=("$0" "$@"); COMP_CWORD=$#',
    "_sockwarden_completions",
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join("\n");
  const r = await run(["bash", "--norc", "--noprofile", "-c", script, EXECUTABLE, ...words], { timeoutMs: 30_000 });
  expect(r.code, describeRun(r)).toBe(0);
  return r.stdout.split("\n").filter(Boolean);
}

describe("bash completion", () => {
  it("`sockwarden lis` completes to list", async () => {
    expect(await complete(["lis"])).toEqual(["list"]);
  });

  it("`sockwarden li` offers list and live", async () => {
    expect((await complete(["li"])).sort()).toEqual(["list", "live"]);
  });

  it("every command, and not the default one's placeholder", async () => {
    const words = await complete([""]);
    expect(words).toEqual(expect.arrayContaining(["list", "live", "watch", "close", "run", "rules", "port", "proc", "completion"]));
    expect(words).not.toContain("$0");
  });

  it("a subcommand's options, a choice's values, the rules subcommands", async () => {
    expect(await complete(["list", "--sou"])).toEqual(["--source"]);
    expect(await complete(["list", "--source", ""])).toEqual(["auto", "netlink", "proc"]);
    expect(await complete(["rules", ""])).toEqual(expect.arrayContaining(["check", "test", "init", "list"]));
    // A one-character option has one dash, digits too.
    const options = await complete(["list", "-"]);
    expect(options).toEqual(expect.arrayContaining(["-4", "-6", "-a", "--all", "--port"]));
    expect(options).not.toContain("--4");
  });
});

describe("the scripts", () => {
  it.each([
    ["bash", /complete -o bashdefault -o default -F _sockwarden_completions sockwarden/],
    ["zsh", /^#compdef sockwarden/],
    ["fish", /complete -c sockwarden -f -a '\(__sockwarden_complete\)'/],
  ])("%s", async (shell, marker) => {
    const r = await run([EXECUTABLE, "completion", shell]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toMatch(marker);
    expect(r.stdout).toContain("--get-yargs-completions");
    expect(r.stderr).toBe("");
  });

  it("a shell without a script, or none named, is a usage error", async () => {
    const r = await run([EXECUTABLE, "completion", "tcsh"]);
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    const none = await run([EXECUTABLE, "completion"]);
    expect(none.code, describeRun(none)).toBe(2);
    expect(none.stderr).toMatch(/bash\|zsh\|fish/);
  });
});
