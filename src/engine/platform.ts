/**
 * The operating system as the rest of sockwarden sees it: one object, built once at the start and
 * handed to the commands and the daemon, so that only src/engine knows which OS it runs on (what
 * /proc holds, where Windows keeps its files, whether a console shows colour).
 */
import type { OpenProcessResult, SocketEngine } from "./types.ts";
import type { LinuxEngineOptions } from "./linux/linux-engine.ts";
import { linuxPlatform, posixPlaces } from "./linux/linux-platform.ts";
import { windowsPlatform } from "./windows/windows-platform.ts";
import { UnsupportedError } from "../errors.ts";

export type EngineOptions = LinuxEngineOptions;

/** Where things go unless configured; read when asked (they follow the environment). */
export interface PlatformPlaces {
  /** The hosts file, for names of local addresses. */
  hosts(): string;
  /** The audit log (before SOCKWARDEN_AUDIT_LOG). */
  auditLog(): string;
  /** Where network sinks keep undelivered records (before SOCKWARDEN_STATE_DIR). */
  stateDir(): string;
}

export interface LocalDatagram {
  send(data: Uint8Array): void;
  close(): void;
}

/** Where the OS offers sockwarden no local datagram sockets. */
export function noLocalDatagram(): LocalDatagram {
  throw new Error("local sockets are not available");
}

/** The session's login user, as the kernel's audit subsystem keeps it (survives su and sudo). */
export interface LoginUser {
  uid: number;
  /** The user name, or the number as text when it has none. */
  name: string;
}

export interface Platform {
  /** The socket engine for this OS; throws UnsupportedError where there is none. */
  createEngine(options?: EngineOptions): SocketEngine;
  /** Opens a process to end it (see ProcessHandle). */
  openProcess(pid: number): OpenProcessResult;
  /** Makes this process end when its parent does; false when the parent is already gone. */
  endWithParent(parentPid: number): boolean;
  /** Whether escape sequences written to this terminal stream show as colour. */
  terminalShowsColour(stream: { isTTY?: boolean; fd?: number }): boolean;
  /** A datagram socket connected to a local (Unix) socket, as syslog's /dev/log. */
  openLocalDatagram(path: string): LocalDatagram;
  /**
   * Why another user's processes' open files (and so their sockets' owners) cannot be read, for
   * a message; null where no such rule hides them.
   */
  unreadableFilesReason(): string | null;
  /** The start of process `pid` as the OS counts it, to tell a reused PID; "" where unknown. */
  processStartTime(pid: number): string;
  /** This session's login user; null when unset or not kept. */
  loginUser(): LoginUser | null;
  readonly places: PlatformPlaces;
}

/** An OS sockwarden has no engine for: listing fails with one line, the rest is as on Linux. */
function unsupportedPlatform(os: string): Platform {
  return {
    createEngine: () => {
      throw new UnsupportedError(`sockwarden has no socket engine for ${os} yet`);
    },
    openProcess: () => {
      throw new UnsupportedError(`sockwarden cannot end processes on ${os} yet`);
    },
    endWithParent: () => true,
    terminalShowsColour: (stream) => !!stream.isTTY,
    openLocalDatagram: noLocalDatagram,
    unreadableFilesReason: () => null,
    processStartTime: () => "",
    loginUser: () => null,
    places: posixPlaces,
  };
}

let built: Platform | null = null;

/** The platform this process runs on, built on first use. */
export function currentPlatform(): Platform {
  if (built) return built;
  switch (process.platform) {
    case "linux":
      return (built = linuxPlatform());
    case "win32":
      return (built = windowsPlatform());
    default:
      return (built = unsupportedPlatform(process.platform));
  }
}
