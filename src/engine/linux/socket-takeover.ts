/**
 * The fallback way to close a socket where the kernel lacks SOCK_DESTROY: take a duplicate of the
 * owner's descriptor (pidfd_open + pidfd_getfd, Linux 5.6+) and break the connection through it.
 * For TCP a connect() with AF_UNSPEC disconnects the socket: the kernel sends the peer a reset and
 * the owner's next read fails with ECONNRESET. A UDP socket is disconnected and shut down, which
 * wakes a blocked receive. Needs the right to ptrace the owner (root, or CAP_SYS_PTRACE).
 */
import fs from "node:fs";
import type { DestroyResult } from "../types.ts";
import type { Endpoint } from "../../model/endpoint.ts";
import { libc } from "./libc.ts";
import { ENOSYS, EPERM, ESRCH, errnoName } from "./errno.ts";
import { userNamespaceNote } from "./capabilities.ts";

const AF_UNSPEC = 0;
const SHUT_RDWR = 2;

/** The descriptor numbers under which a process holds a socket inode. */
export function descriptorsOf(pid: number, inode: number, procRoot = "/proc"): number[] {
  const dir = `${procRoot}/${pid}/fd`;
  const target = `socket:[${inode}]`;
  const out: number[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      if (fs.readlinkSync(`${dir}/${name}`) === target) out.push(Number(name));
    } catch {
      // Closed while we looked.
    }
  }
  return out;
}

export function closeThroughOwner(ep: Endpoint, procRoot = "/proc"): DestroyResult {
  if (ep.inode === 0) {
    return { outcome: "failed", errno: 0, reason: "no process holds this socket (TIME_WAIT or half-open), so it cannot be taken over" };
  }
  if (ep.pids.length === 0) {
    // Another user's socket without a known owner: its process could not be read, and taking
    // the socket needs the same capabilities as finding it.
    if (ep.uid !== null && ep.uid !== process.getuid?.()) {
      return { outcome: "failed", errno: EPERM, reason: `taking another user's socket from its owner needs CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (root has both)${userNamespaceNote()}` };
    }
    return { outcome: "failed", errno: 0, reason: "no owning process is known for this socket" };
  }
  const sys = libc();
  let lastFailure: DestroyResult | null = null;
  for (const pid of ep.pids) {
    const fds = descriptorsOf(pid, ep.inode, procRoot);
    if (fds.length === 0) continue;
    const pidfd = sys.pidfdOpen(pid);
    if (pidfd < 0) {
      lastFailure = failure("pidfd_open", sys.errno());
      continue;
    }
    try {
      const fd = sys.pidfdGetfd(pidfd, fds[0]!);
      if (fd < 0) {
        lastFailure = failure("pidfd_getfd", sys.errno());
        continue;
      }
      try {
        const unspec = Buffer.alloc(16);
        unspec.writeUInt16LE(AF_UNSPEC, 0);
        // Disconnect first (a reset for TCP), then shut down so any blocked reader wakes up.
        sys.connect(fd, unspec, unspec.length);
        sys.shutdown(fd, SHUT_RDWR);
        return { outcome: "closed" };
      } finally {
        sys.close(fd);
      }
    } finally {
      sys.close(pidfd);
    }
  }
  return lastFailure ?? { outcome: "gone" };
}

function failure(call: string, errno: number): DestroyResult {
  if (errno === ENOSYS) return { outcome: "failed", errno, reason: `this kernel has no ${call} (Linux 5.6 or later is needed to take a socket from its owner)` };
  if (errno === EPERM) return { outcome: "failed", errno, reason: `taking a socket from its owner needs root or CAP_SYS_PTRACE${userNamespaceNote()}` };
  if (errno === ESRCH) return { outcome: "gone" };
  return { outcome: "failed", errno, reason: `${call} failed: ${errnoName(errno)}` };
}
