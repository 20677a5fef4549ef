/**
 * A few of the hostile rules (test/fixtures/rules/hostile) through the compiled executable, the
 * way a user meets them: `rules check` on the whole catalogue, and `rules test` replaying a
 * recorded event file through the well-behaved counting rule and seven hostile ones. The
 * in-process catalogue test (test/unit/rules-hostile.test.ts) checks every rule in detail.
 *
 * Needs dist/sockwarden, and /usr/bin/time for the peak memory of the run.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { EXECUTABLE, REPO_ROOT, requireExecutable } from "./helpers/sockwarden.ts";

const HOSTILE = "test/fixtures/rules/hostile";
const GOOD = "test/fixtures/rules/good-counter.ts";
const EVENTS = "test/fixtures/events/flood.ndjson";
const CEILING_MIB = 48;

function run(args: string[], timed = false) {
  requireExecutable();
  const argv = timed ? ["/usr/bin/time", "-f", "maxrss-kib=%M", EXECUTABLE, ...args] : [EXECUTABLE, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: REPO_ROOT, encoding: "utf8", timeout: 150_000, maxBuffer: 64 << 20, env: { ...process.env, NO_COLOR: "1" } });
  if (r.error) throw r.error;
  let stderr = r.stderr;
  let maxRssMiB: number | null = null;
  if (timed) {
    // GNU time says how the command exited, then the format's line.
    const m = /(?:Command exited with non-zero status \d+\n)?maxrss-kib=(\d+)\n?$/.exec(stderr);
    if (m) {
      maxRssMiB = Number(m[1]) / 1024;
      stderr = stderr.slice(0, m.index);
    }
  }
  return { code: r.status, stdout: r.stdout, stderr, maxRssMiB };
}

const lines = (text: string) => text.split("\n").filter((l) => l.length > 0);

describe("rules check on the hostile catalogue", () => {
  it("refuses each rule that must be refused with file:line:col, and passes the rest", () => {
    const files = readdirSync(path.join(REPO_ROOT, HOSTILE)).filter((f) => f.endsWith(".ts")).sort();
    const refused = files.filter((f) => /^\/\/ Expect: refused/m.test(readFileSync(path.join(REPO_ROOT, HOSTILE, f), "utf8")));
    // Checked alone, the rule that takes another's name loads: the clash needs both.
    const squatter = "20-name-squatting.ts";
    const r = run(["rules", "check", HOSTILE]);
    expect(r.code).toBe(1);
    const errors = lines(r.stderr);
    expect(errors.map((l) => path.basename(l.split(":")[0]!))).toEqual(refused.filter((f) => f !== squatter));
    for (const l of errors) expect(l).toMatch(new RegExp(`^${HOSTILE}/\\d\\d-[\\w-]+\\.ts:\\d+:\\d+: \\S`));
    const ok = lines(r.stdout);
    expect(ok).toHaveLength(files.length - refused.length + 1);
    for (const l of ok) expect(l).toMatch(/: ok \(/);
    expect(ok.some((l) => l.startsWith(`${HOSTILE}/${squatter}: ok (good-counter:`))).toBe(true);
  }, 180_000);
});

describe("rules test with hostile rules beside a good one", () => {
  const hostile = ["21-endless-loop.ts", "23-memory-bomb.ts", "25-huge-log.ts", "27-throw-non-errors.ts", "31-forged-close.ts", "40-regex-backtracking.ts", "46-failing-hooks.ts"];

  it("gives the good rule every event, contains the rest with reports, and keeps memory bounded", () => {
    if (!existsSync("/usr/bin/time")) throw new Error("this test needs /usr/bin/time (Debian: apt-get install time)");
    const events = lines(readFileSync(path.join(REPO_ROOT, EVENTS), "utf8")).map((l) => JSON.parse(l) as { seq: number });
    const started = Date.now();
    const r = run(["rules", "test", GOOD, ...hostile.map((f) => `${HOSTILE}/${f}`), "--events", EVENTS], true);
    const elapsed = Date.now() - started;
    expect(r.code).toBe(1);

    const out = lines(r.stdout).map((l) => JSON.parse(l) as { rule: string; action: string; reason: string });
    const good = out.filter((a) => a.rule === "good-counter");
    expect(good.map((a) => a.reason)).toEqual(events.map((e, i) => `seen ${e.seq} #${i + 1}`));
    const others = out.filter((a) => a.rule !== "good-counter");
    expect(new Set(others.map((a) => a.rule))).toEqual(new Set(["huge-log"]));
    for (const a of others) expect(a.reason).toHaveLength(4096);

    const err = lines(r.stderr);
    for (const l of err) expect(l).toMatch(/^rule [\w-]+ \(test\/fixtures\/rules\/hostile\/\d\d-[\w-]+\.ts(:\d+:\d+)?\): /);
    const quarantined = err.filter((l) => / quarantined: /.test(l)).map((l) => /^rule ([\w-]+)/.exec(l)![1]);
    expect(quarantined.sort()).toEqual(["endless-loop", "failing-hooks", "memory-bomb", "regex-backtracking", "throw-non-errors"]);
    const of = (rule: string) => err.filter((l) => l.startsWith(`rule ${rule} `));
    expect(of("endless-loop").filter((l) => l.includes("timeout: took longer than its time budget"))).toHaveLength(5);
    expect(of("memory-bomb").some((l) => l.includes("memory: ran out of memory"))).toBe(true);
    expect(of("throw-non-errors").slice(0, 4).map((l) => l.replace(/^.*?: /, ""))).toEqual([
      "thrown value: null [event 1]",
      "thrown value: undefined [event 2]",
      "thrown value: 42 [event 3]",
      "thrown value: boom [event 4]",
    ]);
    expect(of("failing-hooks")[0]).toMatch(/^rule failing-hooks \(test\/fixtures\/rules\/hostile\/46-failing-hooks\.ts:\d+:\d+\): Error: start failed on purpose$/);
    const opened = lines(readFileSync(path.join(REPO_ROOT, EVENTS), "utf8")).filter((l) => l.startsWith('{"type":"opened"')).length;
    expect(of("forged-close").filter((l) => l.includes("rejected-action: close refused"))).toHaveLength(opened * 4);
    expect(of("huge-log")).toEqual([]);

    // Each failing rule costs its failures' budgets, then nothing: seconds (a loaded machine
    // stretches them), not the minutes it would take if a quarantined rule kept running.
    expect(elapsed).toBeLessThan(120_000);
    // One good rule alone peaks under 100 MiB; each sandbox adds at most its ceiling.
    expect(r.maxRssMiB).not.toBeNull();
    expect(r.maxRssMiB!).toBeLessThan(100 + (hostile.length + 1) * CEILING_MIB);
  }, 180_000);
});
