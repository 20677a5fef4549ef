/**
 * Whether the PIDs in the eBPF sensor's records name processes as this engine names them.
 *
 * The program reads a record's PID with bpf_get_current_pid_tgid, which gives it in the initial
 * PID namespace. The engine reads processes in its /proc and reports and signals them by the
 * PIDs that /proc shows, which are those of the PID namespace that mounted it. The two agree
 * when this process lives in the initial PID namespace, or when its /proc is the initial one's
 * (a nested namespace without a /proc of its own: there /proc/self/status `NSpid:` lists more
 * than one number, the first for the /proc's namespace). A /proc of a nested namespace (a
 * container's) never shows initial-namespace PIDs (its `NSpid:` lines start at its own level),
 * so they cannot be translated from here: the records' PIDs are then not used at all, and the
 * owner of a new socket is found in /proc by the socket's inode, as polling finds it.
 */
import fs from "node:fs";

/** The inode of the initial PID namespace (PROC_PID_INIT_INO, include/linux/proc_ns.h). */
export const INIT_PID_NAMESPACE_INODE = 0xeffffffc;

/** What is read from /proc, replaceable in tests. */
export interface PidNamespaceReads {
  /** The inode of the PID namespace a /proc/…/ns/pid file refers to; null when it cannot be read. */
  namespaceInode(path: string): number | null;
  /** A file's text; null when it cannot be read. */
  text(path: string): string | null;
}

const fileReads: PidNamespaceReads = {
  namespaceInode(path) {
    try {
      return fs.statSync(path).ino;
    } catch {
      return null;
    }
  },
  text(path) {
    try {
      return fs.readFileSync(path, "utf8");
    } catch {
      return null;
    }
  },
};

/** The numbers of a status file's `NSpid:` line (outermost namespace the /proc sees first); null without one. */
export function nsPids(status: string): number[] | null {
  const line = /^NSpid:[ \t]*([^\n]*)$/m.exec(status);
  if (!line) return null;
  const numbers = line[1]!.trim().split(/\s+/).filter(Boolean).map(Number);
  return numbers.length > 0 && numbers.every((n) => Number.isSafeInteger(n) && n > 0) ? numbers : null;
}

export interface RecordPids {
  /** The records' PIDs are this /proc's: use them. */
  usable: boolean;
  /** Why they are not used (once, for the feed's notes); null when they are. */
  note: string | null;
}

/** Whether records' (initial PID namespace) PIDs are the PIDs of the /proc at `procRoot`. */
export function recordPids(procRoot = "/proc", reads: PidNamespaceReads = fileReads): RecordPids {
  // Our own namespace (nsfs files have existed since Linux 3.8; without them there are no others).
  const own = reads.namespaceInode(`${procRoot}/self/ns/pid`) ?? reads.namespaceInode("/proc/self/ns/pid");
  if (own === null || own === INIT_PID_NAMESPACE_INODE) return { usable: true, note: null };
  const status = reads.text(`${procRoot}/self/status`);
  const pids = status === null ? null : nsPids(status);
  // Seen from an outer namespace's /proc: it is the initial one's when its PID 1 lives there.
  if (pids !== null && pids.length > 1 && reads.namespaceInode(`${procRoot}/1/ns/pid`) === INIT_PID_NAMESPACE_INODE) {
    return { usable: true, note: null };
  }
  return {
    usable: false,
    note:
      "this process is in a nested PID namespace whose PIDs the eBPF sensor's records do not carry (they are the initial namespace's): " +
      "the owners of new sockets are found in /proc by their inodes instead",
  };
}
