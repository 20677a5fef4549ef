// The one /proc sampler of the tests and the benchmarks: CPU time and memory of a process
// (/proc/PID/stat and status), of a process with every descendant (the daemon runs each rule in
// a child process of the executable; children are found by their parent PID in /proc/*/stat),
// of its threads by name, and of the whole host (/proc/stat). CPU of a tree counts what the
// kernel has charged to each live process (all threads) plus what reaped children left in
// cutime/cstime, so a rule runner that was ended and restarted is not lost.
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/PID/stat times (getconf CLK_TCK; 100 on Linux). */
export function clockTicks(): number {
  try {
    const r = Bun.spawnSync({ cmd: ["getconf", "CLK_TCK"], stdout: "pipe", stderr: "ignore", timeout: 5_000 });
    const n = Number(r.stdout.toString().trim());
    if (r.exitCode === 0 && Number.isInteger(n) && n > 0) return n;
  } catch {
    // fall through
  }
  return 100;
}

export interface CpuTicks {
  /** The command name (comm). */
  comm: string;
  /** Process state letter (R, S, Z, …). */
  state: string;
  ppid: number;
  utime: number;
  stime: number;
  /** Children the process has waited for (a shell stand-in's commands). */
  cutime: number;
  cstime: number;
}

/** utime/stime/cutime/cstime of a whole process (all threads), or null when it is gone. */
export function readCpuTicks(pid: number): CpuTicks | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ")".
  const close = text.lastIndexOf(")");
  const f = text.slice(close + 2).trim().split(" ");
  // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
  const num = (i: number): number => Number(f[i]);
  const comm = text.slice(text.indexOf("(") + 1, close);
  const t = { comm, state: f[0] ?? "?", ppid: num(1), utime: num(11), stime: num(12), cutime: num(13), cstime: num(14) };
  return [t.utime, t.stime, t.cutime, t.cstime].every(Number.isFinite) ? t : null;
}

function statusField(text: string, key: string): number | null {
  const m = new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(text);
  return m ? Number(m[1]) : null;
}

/** VmHWM and VmRSS in bytes and the thread count, or null when the process is gone. */
export function readVm(pid: number): { hwm: number; rss: number; threads: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "latin1");
    const hwm = statusField(text, "VmHWM");
    const rss = statusField(text, "VmRSS");
    const threads = statusField(text, "Threads") ?? 0;
    return hwm === null || rss === null ? null : { hwm: hwm * 1024, rss: rss * 1024, threads };
  } catch {
    return null;
  }
}

/** Host-wide CPU time from the first line of /proc/stat, in ticks: busy and total. */
export interface HostCpu {
  busy: number;
  total: number;
}

export function readHostCpu(): HostCpu | null {
  try {
    const line = readFileSync("/proc/stat", "latin1").split("\n", 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (f.length < 8 || !f.every(Number.isFinite)) return null;
    const total = f.reduce((a, b) => a + b, 0);
    const idle = f[3]! + f[4]!; // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/**
 * CPUs' worth of work done on the whole host between two readings, other than `ownCpuS` over
 * `windowS`: how much else was running while a side was measured.
 */
export function otherHostLoad(a: HostCpu | null, b: HostCpu | null, cpus: number, ownCpuS: number, windowS: number): number | null {
  if (!a || !b || b.total <= a.total || windowS <= 0) return null;
  const busyCores = ((b.busy - a.busy) / (b.total - a.total)) * cpus;
  return Math.max(0, busyCores - ownCpuS / windowS);
}

export interface TreeProcess {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime, clock ticks. */
  ticks: number;
  /** cutime + cstime: children this process has reaped. */
  reapedTicks: number;
  rssBytes: number;
  /** Proportional set size (shared pages split between their users), from smaps_rollup. */
  pssBytes: number | null;
}

export interface TreeUsage {
  /** Every live process of the tree, the root first. */
  processes: TreeProcess[];
  /** The root's own CPU plus every descendant's, plus what reaped children left, ticks. */
  ticks: number;
  /** The root process alone (all its threads), ticks. */
  rootTicks: number;
  rssBytes: number;
  /** Sum of PSS, or null where smaps_rollup cannot be read. */
  pssBytes: number | null;
}

function statOf(pid: number): { ppid: number; comm: string; ticks: number; reapedTicks: number } | null {
  const t = readCpuTicks(pid);
  return t && { ppid: t.ppid, comm: t.comm, ticks: t.utime + t.stime, reapedTicks: t.cutime + t.cstime };
}

function memOf(pid: number, withPss: boolean): { rss: number; pss: number | null } {
  const rss = readVm(pid)?.rss ?? 0;
  let pss: number | null = null;
  if (withPss) {
    try {
      const kb = statusField(readFileSync(`/proc/${pid}/smaps_rollup`, "latin1"), "Pss");
      pss = kb === null ? null : kb * 1024;
    } catch {
      pss = null;
    }
  }
  return { rss, pss };
}

/** PID -> parent PID for every process on the host. */
function parents(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${name}/stat`, "latin1");
    } catch {
      continue;
    }
    const ppid = Number(text.slice(text.lastIndexOf(")") + 2).split(" ", 2)[1]);
    const list = children.get(ppid);
    if (list) list.push(Number(name));
    else children.set(ppid, [Number(name)]);
  }
  return children;
}

/** The tree under `root` right now, or null when the root is gone. PSS costs more to read: ask for it sparingly. */
export function treeUsage(root: number, withPss = false): TreeUsage | null {
  const top = statOf(root);
  if (!top) return null;
  const children = parents();
  const processes: TreeProcess[] = [];
  const queue = [root];
  const seen = new Set<number>();
  while (queue.length) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const s = pid === root ? top : statOf(pid);
    if (!s) continue;
    const mem = memOf(pid, withPss);
    processes.push({ pid, ppid: s.ppid, comm: s.comm, ticks: s.ticks, reapedTicks: s.reapedTicks, rssBytes: mem.rss, pssBytes: mem.pss });
    queue.push(...(children.get(pid) ?? []));
  }
  const pss = processes.map((p) => p.pssBytes);
  return {
    processes,
    ticks: processes.reduce((a, p) => a + p.ticks + p.reapedTicks, 0),
    rootTicks: top.ticks,
    rssBytes: processes.reduce((a, p) => a + p.rssBytes, 0),
    pssBytes: withPss && pss.every((x) => x !== null) ? pss.reduce((a, b) => a + b!, 0) : null,
  };
}

/** CPU ticks of each thread of a process, by thread name (threads of one name summed). */
export function threadTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/stat`, "latin1");
    } catch {
      continue;
    }
    const close = text.lastIndexOf(")");
    const comm = text.slice(text.indexOf("(") + 1, close);
    const f = text.slice(close + 2).trim().split(" ");
    out.set(comm, (out.get(comm) ?? 0) + Number(f[11]) + Number(f[12]));
  }
  return out;
}

/** Per-name CPU share over a window from two threadTicks readings, highest first. */
export function threadShares(a: Map<string, number>, b: Map<string, number>, ticksPerS: number, seconds: number): { thread: string; pct: number }[] {
  const out: { thread: string; pct: number }[] = [];
  for (const [name, t1] of b) {
    const d = t1 - (a.get(name) ?? 0);
    if (d > 0) out.push({ thread: name, pct: (d / ticksPerS / seconds) * 100 });
  }
  return out.sort((x, y) => y.pct - x.pct);
}
