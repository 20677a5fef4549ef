// The benchmarks' shared option parser, suite planner and result files: pure code, no root.
import { describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseWatchOptions } from "../../bench/lib/watch-options.ts";
import { parseDaemonOptions } from "../../bench/lib/daemon-options.ts";
import { parseSoakOptions } from "../../bench/lib/soak-options.ts";
import { planAll, splitSuite } from "../../bench/lib/suite.ts";
import { saveLatest } from "../../bench/lib/results.ts";

describe("bench options", () => {
  it("--quick picks the smoke sizes, and an option given explicitly still wins", () => {
    const quick = parseWatchOptions(["--quick", "--seconds", "7"]);
    expect(quick.sockets).toEqual([2000]);
    expect(quick.seconds).toBe(7);
    expect(quick.quick).toBe(true);
    const full = parseWatchOptions([]);
    expect(full.sockets).toEqual([10_000, 100_000]);
    expect(full.maxMinutes).toBe(15);
  });

  it("says which option is wrong in one line", () => {
    expect(() => parseDaemonOptions(["--samples", "lots"])).toThrow(/^--samples must be a whole number/);
    expect(() => parseDaemonOptions(["--sensors", "poll,kprobe"])).toThrow('--sensors: unknown "kprobe" (choose from poll, ebpf)');
    expect(() => parseDaemonOptions(["--bogus"])).toThrow(/bogus/);
  });

  it("derives defaults that depend on other options", () => {
    expect(parseDaemonOptions(["--churn-close", "fin"]).warmup).toBe(65);
    expect(parseDaemonOptions(["--churn-close", "rst"]).warmup).toBe(10);
    const soak = parseSoakOptions(["--minutes", "3"]);
    expect(soak.maxMinutes).toBe(13);
    expect(soak.warmupMinutes).toBe(1);
  });
});

describe("bench run.ts --suite all", () => {
  it("hands each suite its own options and the common ones to all", () => {
    const { suite, rest } = splitSuite(["--quick", "--sizes", "1k", "--sockets", "2k", "--sensors", "poll", "--timeout", "9"]);
    expect(suite).toBe("all");
    const plan = planAll(rest);
    expect(plan.listArgs).toEqual(["--quick", "--sizes=1k", "--timeout=9"]);
    expect(plan.watchArgs).toEqual(["--quick", "--sockets=2k", "--sensors=poll", "--timeout=9"]);
    expect(plan.rulesArgs).toEqual(["--quick"]);
    expect(plan.daemonArgs).toEqual(["--quick", "--sensors=poll"]);
  });

  it("refuses an unknown suite and the measuring half's own options", () => {
    expect(() => splitSuite(["--suite", "nope"])).toThrow(/--suite must be one of/);
    expect(() => planAll(["--inner"])).toThrow("--inner is internal");
  });
});

describe("bench results", () => {
  it("keeps only the latest result of a suite", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-bench-results-"));
    try {
      for (const name of ["watch-2026-11-21-234215.md", "watch-2026-11-21-234215.json", "daemon-2026-11-22-000427.md", "notes.md"]) {
        fs.writeFileSync(path.join(dir, name), "old\n");
      }
      expect(saveLatest(dir, "watch", "# report", { figure: 1 }, () => {})).toBe(true);
      expect(fs.readdirSync(dir).sort()).toEqual(["daemon-2026-11-22-000427.md", "latest-watch.json", "latest-watch.md", "notes.md"]);
      expect(fs.readFileSync(path.join(dir, "latest-watch.md"), "utf8")).toBe("# report\n");
      expect(JSON.parse(fs.readFileSync(path.join(dir, "latest-watch.json"), "utf8"))).toEqual({ figure: 1 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
