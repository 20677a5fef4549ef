// CPU and memory of a process together with its descendants (the daemon runs each rule in a
// child process of the executable). Children are found by their parent PID in /proc/*/stat.
// CPU counts what the kernel has charged to each live process (all threads) plus what reaped
// children left in cutime/cstime, so a rule runner that was ended and restarted is not lost.
import { readdirSync, readFileSync } from "node:fs";

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
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return null;
  }
  const close = text.lastIndexOf(")");
  const comm = text.slice(text.indexOf("(") + 1, close);
  const f = text.slice(close + 2).trim().split(" ");
  // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
  const n = (i: number): number => Number(f[i]);
  return { ppid: n(1), comm, ticks: n(11) + n(12), reapedTicks: n(13) + n(14) };
}

function kib(text: string, key: string): number | null {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

function memOf(pid: number, withPss: boolean): { rss: number; pss: number | null } {
  let rss = 0;
  try {
    rss = kib(readFileSync(`/proc/${pid}/status`, "latin1"), "VmRSS") ?? 0;
  } catch {
    // gone meanwhile
  }
  let pss: number | null = null;
  if (withPss) {
    try {
      pss = kib(readFileSync(`/proc/${pid}/smaps_rollup`, "latin1"), "Pss");
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
