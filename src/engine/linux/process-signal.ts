/**
 * Signals that reach only the process a decision was made about. A pidfd (pidfd_open, Linux
 * 5.3+) is opened first and the PID's start time is read after it: a start time that matches the
 * one decided about proves that the descriptor names that process (a process that existed before
 * the pidfd was opened cannot come back later), and a signal sent through it
 * (pidfd_send_signal) never reaches a process that takes the PID afterwards, during the grace
 * period before SIGKILL included. Where pidfds are missing (an older kernel, a seccomp filter that
 * refuses them, koffi not loadable) the PID is checked just before kill(2) and the handle says so.
 */
import fs from "node:fs";
import type { EndSignal, OpenProcessResult, ProcessHandle, SignalResult } from "../types.ts";
import type { ProcessInfo } from "../../model/process.ts";
import type { SocketAddresses } from "../../model/endpoint.ts";
import { libc } from "./libc.ts";
import { clockTicksPerSecond } from "./clocks.ts";
import { ESRCH, errnoName } from "./errno.ts";
import { ProcessReader } from "./process-map.ts";
import { UserTable } from "./users.ts";
import { parseProcNet } from "./proc-net.ts";
import { AF_INET, AF_INET6 } from "./sock-diag-codec.ts";

const SIGNAL_NUMBERS: Record<EndSignal | "0", number> = { SIGTERM: 15, SIGKILL: 9, "0": 0 };

interface PidfdCalls {
  open(pid: number): number;
  sendSignal(pidfd: number, signal: number): number;
  close(fd: number): void;
  errno(): number;
}

let calls: PidfdCalls | null | undefined;

function pidfdCalls(): PidfdCalls | null {
  if (calls !== undefined) return calls;
  try {
    const sys = libc();
    calls = { open: sys.pidfdOpen, sendSignal: sys.pidfdSendSignal, close: (fd) => void sys.close(fd), errno: sys.errno };
  } catch {
    calls = null;
  }
  return calls;
}

/** Test seam: behave as on a system without pidfds. */
export function disablePidfdsForTesting(disabled: boolean): void {
  calls = disabled ? null : undefined;
}

let users: UserTable | null = null;

/** Opens process `pid` for signalling; `{outcome: "gone"}` when there is none. */
export function openLinuxProcess(pid: number, procRoot = "/proc"): OpenProcessResult {
  if (!Number.isSafeInteger(pid) || pid <= 0) return { outcome: "gone" };
  const c = pidfdCalls();
  if (c) {
    const fd = c.open(pid);
    if (fd >= 0) return new LinuxProcessHandle(pid, procRoot, fd, c);
    const errno = c.errno();
    if (errno === ESRCH) return { outcome: "gone" };
    // ENOSYS (before 5.3, or a seccomp filter), EINVAL for a PID that is a thread: by PID then.
  }
  return new LinuxProcessHandle(pid, procRoot, -1, null);
}

class LinuxProcessHandle implements ProcessHandle {
  readonly binding: "pidfd" | "pid";

  constructor(
    readonly pid: number,
    private readonly procRoot: string,
    private pidfd: number,
    private readonly calls: PidfdCalls | null,
  ) {
    this.binding = pidfd >= 0 ? "pidfd" : "pid";
  }

  inspect(): ProcessInfo | null {
    // The opened process has exited (and been reaped): whatever has the PID now is another one.
    if (this.pidfd >= 0 && this.calls!.sendSignal(this.pidfd, 0) !== 0 && this.calls!.errno() === ESRCH) return null;
    const dir = `${this.procRoot}/${this.pid}`;
    const stat = readText(`${dir}/stat`);
    if (stat === null) return null;
    // A zombie has ended for every purpose here; its start time is still the old one.
    const state = stat.charAt(stat.lastIndexOf(")") + 2);
    if (state === "Z" || state === "X") return null;
    users ??= new UserTable();
    // A fresh reader: nothing cached, every field as it is now.
    const info = new ProcessReader({ procRoot: this.procRoot, users, clockTicks: clockTicksPerSecond() }).read(this.pid);
    // Should the PID have changed hands since the stat above, this is the newcomer, startId
    // included: the caller's comparison refuses it.
    return info;
  }

  sockets(): SocketAddresses[] | null {
    const dir = `${this.procRoot}/${this.pid}`;
    const inodes = new Set<number>();
    let fds: string[];
    try {
      fds = fs.readdirSync(`${dir}/fd`);
    } catch {
      return null;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = fs.readlinkSync(`${dir}/fd/${fd}`);
      } catch {
        continue;
      }
      if (link.startsWith("socket:[")) inodes.add(Number(link.slice(8, -1)));
    }
    const out: SocketAddresses[] = [];
    if (inodes.size === 0) return out;
    // The process's own network namespace's tables, which need not be the caller's.
    for (const [name, protocol, family] of [["tcp", "tcp", 4], ["tcp6", "tcp", 6], ["udp", "udp", 4], ["udp6", "udp", 6]] as const) {
      const text = readText(`${dir}/net/${name}`);
      if (text === null) continue;
      let records;
      try {
        records = parseProcNet(text, family === 4 ? AF_INET : AF_INET6, `${dir}/net/${name}`);
      } catch {
        continue;
      }
      for (const r of records) {
        if (!inodes.has(r.inode)) continue;
        out.push({ protocol, family, localAddress: r.source, localPort: r.sourcePort, remoteAddress: r.destination, remotePort: r.destinationPort });
      }
    }
    return out;
  }

  signal(signal: EndSignal): SignalResult {
    const number = SIGNAL_NUMBERS[signal];
    if (this.pidfd >= 0) {
      if (this.calls!.sendSignal(this.pidfd, number) === 0) return { outcome: "sent" };
      return failure(this.calls!.errno());
    }
    try {
      process.kill(this.pid, signal);
      return { outcome: "sent" };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      return code === "ESRCH" ? { outcome: "gone" } : { outcome: "failed", code, reason: describe(code) };
    }
  }

  close(): void {
    if (this.pidfd >= 0) this.calls!.close(this.pidfd);
    this.pidfd = -1;
  }
}

function failure(errno: number): SignalResult {
  if (errno === ESRCH) return { outcome: "gone" };
  const code = errnoName(errno);
  return { outcome: "failed", code, reason: describe(code) };
}

function describe(code: string): string {
  return code === "EPERM" ? "it belongs to another user (needs root or CAP_KILL)" : code;
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
}
