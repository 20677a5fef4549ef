/**
 * CPU time and resident memory of the rule runners (one child process per rule): what
 * process.cpuUsage() and process.memoryUsage() of the host do not include.
 */
import { readFileSync } from "node:fs";
import type { RuleSet } from "../../src/rules/rule-set.ts";

const TICKS_PER_SECOND = 100;

function pids(rules: RuleSet): number[] {
  return rules.loaded.map((r) => r.pid).filter((p): p is number => p !== null);
}

/** CPU milliseconds the runners have used so far (user + system). */
export function runnersCpuMs(rules: RuleSet): number {
  let ticks = 0;
  for (const pid of pids(rules)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // a runner that ended (restarted) meanwhile
    }
  }
  return (ticks * 1000) / TICKS_PER_SECOND;
}

/** Resident bytes of the runners now. */
export function runnersRssBytes(rules: RuleSet): number {
  let bytes = 0;
  for (const pid of pids(rules)) {
    try {
      const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
      bytes += Number(kb ?? 0) * 1024;
    } catch {
      // gone
    }
  }
  return bytes;
}
