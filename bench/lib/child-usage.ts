/**
 * CPU time and resident memory of the rule runners (one child process per rule): what
 * process.cpuUsage() and process.memoryUsage() of the host do not include.
 */
import type { RuleSet } from "../../src/rules/rule-set.ts";
import { clockTicks, readCpuTicks, readVm } from "../../test/support/proc-usage.ts";

const TICKS_PER_SECOND = clockTicks();

function pids(rules: RuleSet): number[] {
  return rules.loaded.map((r) => r.pid).filter((p): p is number => p !== null);
}

/** CPU milliseconds the runners have used so far (user + system); a runner that ended counts 0. */
export function runnersCpuMs(rules: RuleSet): number {
  let ticks = 0;
  for (const pid of pids(rules)) {
    const t = readCpuTicks(pid);
    if (t) ticks += t.utime + t.stime;
  }
  return (ticks * 1000) / TICKS_PER_SECOND;
}

/** Resident bytes of the runners now. */
export function runnersRssBytes(rules: RuleSet): number {
  return pids(rules).reduce((sum, pid) => sum + (readVm(pid)?.rss ?? 0), 0);
}
