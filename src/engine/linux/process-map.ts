/**
 * Socket inode -> owning processes, found by reading /proc/PID/fd links (as ss -p and lsof do),
 * and the details of each owning process from /proc/PID/{comm,exe,cmdline,stat}.
 *
 * Processes come and go during a scan: a process or fd that vanished is skipped, not an error.
 * A process whose fd directory cannot be read (another user's, without CAP_SYS_PTRACE) is counted
 * so that the caller can say why some sockets have no owner.
 */
import fs from "node:fs";
import type { ContainerInfo, ProcessInfo } from "../../model/process.ts";
import { UserTable } from "./users.ts";
import { selectCgroupPath, unitFromCgroup } from "./process-details.ts";
import { containerFromCgroup } from "./container-id.ts";

export interface InodeOwners {
  /** inode -> the lowest pid holding it. */
  owner: Map<number, number>;
  /** inode -> every further pid holding it (sockets shared after fork); most inodes have none. */
  sharedWith: Map<number, number[]>;
  /** pids whose fd directory could not be read for lack of permission. */
  unreadable: number[];
}

/** Reads the target of a /proc symlink; a vanished or unreadable link gives null. */
export type LinkReader = (dir: string, name: string) => string | null;

const SOCKET_PREFIX = "socket:[";

const nodeLinkReader: LinkReader = (dir, name) => {
  try {
    return fs.readlinkSync(`${dir}/${name}`);
  } catch {
    return null;
  }
};

/**
 * What the last scan read of each process's descriptors, so that a scan repeated every refresh
 * does not read again the links of a process holding thousands of idle sockets. Kept per pid
 * and start time: a reused pid starts afresh.
 */
export class FdMemos {
  private byPid = new Map<number, { start: number | null; fds: Map<string, number> }>();
  private nextByPid = new Map<number, { start: number | null; fds: Map<string, number> }>();

  /** What the last scan saw of `pid`, if it is still the same process. */
  prior(procRoot: string, pid: number): { start: number | null; fds: Map<string, number> | undefined } {
    const entry = this.byPid.get(pid);
    const stat = readText(`${procRoot}/${pid}/stat`);
    const start = stat === null ? null : (parseStat(stat)?.startTicks ?? null);
    return { start, fds: entry && start !== null && entry.start === start ? entry.fds : undefined };
  }

  record(pid: number, start: number | null, fds: Map<string, number>): void {
    if (start !== null) this.nextByPid.set(pid, { start, fds });
  }

  /** Ends a scan: processes it did not read are forgotten. */
  finish(): void {
    this.byPid = this.nextByPid;
    this.nextByPid = new Map();
  }
}

/**
 * Lets a scan take a process's descriptors from the last scan where they cannot have changed
 * in a way that matters: a descriptor number seen before whose socket is still in the dump is
 * taken to hold it still. One that was closed and reused meanwhile while its old socket lives on
 * elsewhere would hide its new socket: so when wanted sockets are still without an owner and
 * still open, the processes are read again in full before anything else.
 */
export interface ScanReuse {
  memos: FdMemos;
  /** The sockets of the dump being joined. */
  live: ReadonlySet<number>;
  /**
   * Of the given wanted inodes, those still open: one closed since the dump has no holder to
   * find, and should not send the scan through every other namespace's processes.
   */
  stillOpen(inodes: ReadonlySet<number>): ReadonlySet<number>;
}

/**
 * Scans /proc for socket owners. Processes in the caller's network namespace are read first;
 * the rest only while some wanted inode is still without an owner, so a box with busy containers
 * does not pay for their file descriptors when listing its own sockets.
 */
export function scanSocketOwners(
  procRoot = "/proc",
  wanted?: ReadonlySet<number>,
  fdLinks: FdLinkScanner = nodeFdLinks,
  reuse?: ScanReuse,
): InodeOwners {
  let owner = new Map<number, number>();
  let sharedWith = new Map<number, number[]>();
  let unreadable: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync(procRoot);
  } catch {
    return { owner, sharedWith, unreadable };
  }
  const pids: number[] = [];
  for (const name of entries) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    pids.push(Number(name));
  }
  pids.sort((a, b) => a - b);

  const ownNs = nodeLinkReader(`${procRoot}/self/ns`, "net");
  const near: number[] = [];
  const far: number[] = [];
  for (const pid of pids) {
    const ns = ownNs === null ? null : nodeLinkReader(`${procRoot}/${pid}/ns`, "net");
    (ns === null || ns === ownNs ? near : far).push(pid);
  }
  // Wanted inodes not yet placed; null: every process is read.
  let pending: Set<number> | null = wanted ? new Set(wanted) : null;
  const visit = (pid: number, inode: number) => {
    const first = owner.get(inode);
    if (first === undefined) {
      owner.set(inode, pid);
      pending?.delete(inode);
    } else if (first !== pid) {
      const more = sharedWith.get(inode);
      if (!more) sharedWith.set(inode, [pid]);
      else if (more[more.length - 1] !== pid) more.push(pid);
    }
  };
  const readNear = (remembered: boolean) => {
    for (const pid of near) {
      let memo: FdMemo | undefined;
      let start: number | null = null;
      if (reuse) {
        const prior = reuse.memos.prior(procRoot, pid);
        start = prior.start;
        memo = { prior: remembered ? prior.fds : undefined, next: new Map(), trust: (inode) => reuse.live.has(inode) };
      }
      if (!fdLinks(`${procRoot}/${pid}/fd`, pid, visit, memo)) unreadable.push(pid);
      if (reuse && memo) reuse.memos.record(pid, start, memo.next);
    }
  };
  readNear(reuse !== undefined);
  if (reuse && pending && pending.size > 0) {
    pending = new Set(reuse.stillOpen(pending));
    if (pending.size > 0) {
      const stillWanted = pending;
      owner = new Map();
      sharedWith = new Map();
      unreadable = [];
      readNear(false);
      pending = new Set([...stillWanted].filter((inode) => !owner.has(inode)));
    }
  }
  reuse?.memos.finish();
  for (const pid of far) {
    if (pending && pending.size === 0) break;
    if (!fdLinks(`${procRoot}/${pid}/fd`, pid, visit)) unreadable.push(pid);
  }
  return { owner, sharedWith, unreadable };
}

/**
 * A process's descriptors as the last scan read them (name -> socket inode, 0 for one that is
 * not a socket), and what this scan reads, for the next.
 */
export interface FdMemo {
  prior: ReadonlyMap<string, number> | undefined;
  next: Map<string, number>;
  /** Whether a remembered socket may be taken as still held without reading the link. */
  trust(inode: number): boolean;
}

/**
 * Calls `visit(pid, inode)` for every socket among a process's descriptors. Returns false when
 * the directory could not be read for lack of permission (a vanished process returns true).
 * Given a memo, a descriptor remembered there is not read again (see ScanReuse), and what was
 * read is recorded in it.
 */
export type FdLinkScanner = (fdDir: string, pid: number, visit: (pid: number, inode: number) => void, memo?: FdMemo) => boolean;

/** The remembered inode of descriptor `name`, or undefined when its link must be read. */
export function rememberedFd(memo: FdMemo | undefined, name: string): number | undefined {
  const inode = memo?.prior?.get(name);
  if (inode === undefined || (inode !== 0 && !memo!.trust(inode))) return undefined;
  memo!.next.set(name, inode);
  return inode;
}

/**
 * Visits the socket inodes of the descriptors in `fdDir`: each one's inode comes from the memo or
 * from `inodeOf` (0 for a descriptor that is not a socket, null for one closed meanwhile). False
 * when the directory cannot be read for a reason other than permission.
 */
export function scanFdDirectory(
  fdDir: string,
  pid: number,
  visit: (pid: number, inode: number) => void,
  memo: FdMemo | undefined,
  inodeOf: (fd: string) => number | null,
): boolean {
  let fds: string[];
  try {
    fds = fs.readdirSync(fdDir);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "EACCES";
  }
  for (const fd of fds) {
    const known = rememberedFd(memo, fd);
    if (known !== undefined) {
      if (known !== 0) visit(pid, known);
      continue;
    }
    const inode = inodeOf(fd);
    if (inode === null) continue;
    memo?.next.set(fd, inode);
    if (inode !== 0) visit(pid, inode);
  }
  return true;
}

export const nodeFdLinks: FdLinkScanner = (fdDir, pid, visit, memo) =>
  scanFdDirectory(fdDir, pid, visit, memo, (fd) => {
    const link = nodeLinkReader(fdDir, fd);
    if (link === null) return null;
    return link.startsWith(SOCKET_PREFIX) ? Number(link.slice(SOCKET_PREFIX.length, -1)) : 0;
  });

/** Every pid holding an inode, lowest first. */
export function ownersOf(owners: InodeOwners, inode: number): number[] | null {
  const first = owners.owner.get(inode);
  if (first === undefined) return null;
  const more = owners.sharedWith.get(inode);
  return more ? [first, ...more] : [first];
}

export interface ProcessReaderOptions {
  procRoot?: string;
  users: UserTable;
  /** Clock ticks per second (sysconf(_SC_CLK_TCK)), 100 on every mainstream Linux. */
  clockTicks: number | (() => number);
}

/** Reads process details on demand and keeps them for the life of the reader. */
export class ProcessReader {
  private readonly procRoot: string;
  private readonly cache = new Map<number, { info: ProcessInfo | null; startTicks: number | null }>();
  private bootTimeMs: number | null | undefined;

  constructor(private readonly options: ProcessReaderOptions) {
    this.procRoot = options.procRoot ?? "/proc";
  }

  /** Details of a process, or null if it has exited. Cached until `revalidate`. */
  read(pid: number): ProcessInfo | null {
    const hit = this.cache.get(pid);
    if (hit) return hit.info;
    const stat = readText(`${this.procRoot}/${pid}/stat`);
    const parsed = stat === null ? null : parseStat(stat);
    const info = stat === null ? null : this.readUncached(pid);
    this.cache.set(pid, { info, startTicks: parsed?.startTicks ?? null });
    return info;
  }

  /**
   * Forgets processes that exited, and those whose PID now names another process (a different
   * start time): a long-running watcher must not attribute a new process's sockets to an old
   * one. Costs one small read per cached process.
   */
  revalidate(): void {
    for (const [pid, entry] of this.cache) {
      const stat = readText(`${this.procRoot}/${pid}/stat`);
      const startTicks = stat === null ? null : (parseStat(stat)?.startTicks ?? null);
      if (startTicks === null || startTicks !== entry.startTicks) this.cache.delete(pid);
    }
  }

  private readUncached(pid: number): ProcessInfo | null {
    const dir = `${this.procRoot}/${pid}`;
    const stat = readText(`${dir}/stat`);
    if (stat === null) return null;
    const parsed = parseStat(stat);
    const comm = readText(`${dir}/comm`);
    const name = comm !== null ? comm.replace(/\n$/, "") : (parsed?.comm ?? String(pid));
    let path: string | null = null;
    try {
      path = fs.readlinkSync(`${dir}/exe`);
    } catch {
      path = null;
    }
    const cmdlineRaw = readText(`${dir}/cmdline`);
    const cmdline = cmdlineRaw ? cmdlineRaw.replace(/\0+$/, "").replaceAll("\0", " ") : cmdlineRaw === "" ? "" : null;
    let uid: number | null = null;
    try {
      uid = fs.statSync(dir).uid;
    } catch {
      uid = null;
    }
    return {
      pid,
      name,
      path,
      cmdline,
      uid,
      user: this.options.users.name(uid),
      startTime: parsed ? this.startTimeIso(parsed.startTicks) : null,
      startId: parsed ? String(parsed.startTicks) : null,
      ppid: parsed ? parsed.ppid : null,
      ...placement(readText(`${dir}/cgroup`)),
    };
  }

  private startTimeIso(startTicks: number): string | null {
    if (this.bootTimeMs === undefined) this.bootTimeMs = readBootTimeMs(this.procRoot);
    if (this.bootTimeMs === null) return null;
    const ticks = typeof this.options.clockTicks === "function" ? this.options.clockTicks() : this.options.clockTicks;
    const start = new Date(this.bootTimeMs + (startTicks * 1000) / ticks);
    // A boot time or start tick count past what a Date holds has no meaningful time.
    return Number.isNaN(start.getTime()) ? null : start.toISOString();
  }
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

export interface StatFields {
  comm: string;
  ppid: number;
  startTicks: number;
}

/**
 * Parses /proc/PID/stat. The command name is in parentheses and may itself contain spaces and
 * parentheses, so fields are counted from the last ')'.
 */
export function parseStat(text: string): StatFields | null {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return null;
  const rest = text.slice(close + 2).split(" ");
  // rest[0] is field 3 (state); ppid is field 4, starttime field 22.
  const ppid = Number(rest[1]);
  const startTicks = Number(rest[19]);
  if (!Number.isFinite(ppid) || !Number.isFinite(startTicks)) return null;
  return { comm: text.slice(open + 1, close), ppid, startTicks };
}

function readBootTimeMs(procRoot: string): number | null {
  const stat = readText(`${procRoot}/stat`);
  const m = stat?.match(/^btime (\d+)$/m);
  return m ? Number(m[1]) * 1000 : null;
}

/** The systemd unit and container a process's cgroup names. */
export function placement(cgroupText: string | null): { unit: string | null; container: ContainerInfo | null } {
  const path = cgroupText ? selectCgroupPath(cgroupText) : null;
  if (!path) return { unit: null, container: null };
  return { unit: unitFromCgroup(path)?.unit ?? null, container: containerFromCgroup(path) };
}
