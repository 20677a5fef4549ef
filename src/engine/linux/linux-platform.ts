/** The platform on Linux: /proc, the libc bindings and the usual places under /var and $HOME. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Platform, PlatformPlaces } from "../platform.ts";
import { openUnixDatagram } from "./unix-datagram.ts";
import { userNamespaceNote } from "./capabilities.ts";
import { LinuxEngine } from "./linux-engine.ts";
import { openLinuxProcess } from "./process-signal.ts";
import { bindLinuxChildToParent } from "./parent-death.ts";
import { UserTable } from "./users.ts";

/** (uid_t)-1: the loginuid of a process no login set. */
const UNSET_LOGINUID = 4294967295;

const isRoot = () => (process.getuid?.() ?? 0) === 0;
const stateHome = () => process.env.XDG_STATE_HOME || path.join(os.homedir(), ".local", "state");

/** Root's files under /var, everyone else's under the XDG state home. */
export const posixPlaces: PlatformPlaces = {
  hosts: () => "/etc/hosts",
  auditLog: () => (isRoot() ? "/var/log/sockwarden/audit.log" : path.join(stateHome(), "sockwarden", "audit.log")),
  stateDir: () => (isRoot() ? "/var/lib/sockwarden" : path.join(stateHome(), "sockwarden")),
};

/** Field 22 of /proc/PID/stat (clock ticks after boot), as text. */
export function procStartTime(pid: number, procRoot = "/proc"): string {
  try {
    const stat = fs.readFileSync(path.join(procRoot, String(pid), "stat"), "utf8");
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    return "";
  }
}

/** /proc/self/loginuid; null without audit support in the kernel, or when no login set it. */
export function procLoginUid(procRoot = "/proc"): number | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(procRoot, "self", "loginuid"), "utf8").trim();
  } catch {
    return null;
  }
  if (!/^\d+$/.test(text)) return null;
  const uid = Number(text);
  return uid === UNSET_LOGINUID ? null : uid;
}

export function linuxPlatform(users = new UserTable()): Platform {
  return {
    createEngine: (options = {}) => new LinuxEngine(options),
    openProcess: openLinuxProcess,
    endWithParent: (parentPid) => {
      try {
        return bindLinuxChildToParent(parentPid);
      } catch {
        // Without the binding the runner still ends when its pipe closes, once it reads again.
        return true;
      }
    },
    terminalShowsColour: (stream) => !!stream.isTTY,
    openLocalDatagram: openUnixDatagram,
    unreadableFilesReason: () =>
      `reading another user's /proc/PID/fd needs CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (root has both)${userNamespaceNote()}`,
    processStartTime: (pid) => procStartTime(pid),
    loginUser: () => {
      const uid = procLoginUid();
      return uid === null ? null : { uid, name: users.name(uid) ?? String(uid) };
    },
    places: posixPlaces,
  };
}
