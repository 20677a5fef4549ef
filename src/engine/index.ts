/**
 * Picks the socket engine for the running operating system. Code outside src/engine depends only
 * on the SocketEngine interface (types.ts) and the records of src/model.
 */
import type { OpenProcessResult, SocketEngine } from "./types.ts";
import { UnsupportedError } from "../errors.ts";
import { LinuxEngine, type LinuxEngineOptions } from "./linux/linux-engine.ts";
import { WindowsEngine } from "./windows/windows-engine.ts";
import { enableVirtualTerminal } from "./windows/console.ts";
import { openLinuxProcess } from "./linux/process-signal.ts";
import { openWindowsProcess } from "./windows/process-signal.ts";
import { bindLinuxChildToParent } from "./linux/parent-death.ts";

export type EngineOptions = LinuxEngineOptions;

export function createEngine(options: EngineOptions = {}): SocketEngine {
  switch (process.platform) {
    case "linux":
      return new LinuxEngine(options);
    case "win32":
      if (options.allNamespaces) throw new UnsupportedError("--all-namespaces is for Linux network namespaces; Windows has none");
      // Owner modules are looked up once per socket and shown in the JSON (module).
      return new WindowsEngine({ ...options, modules: true });
    default:
      throw new UnsupportedError(`sockwarden has no socket engine for ${process.platform} yet`);
  }
}

/**
 * Opens a process to end it: what the PID names now can be inspected, and signals go to that
 * process only (see ProcessHandle). Needs no engine: the live view, the daemon and tests share it.
 */
export function openProcess(pid: number): OpenProcessResult {
  switch (process.platform) {
    case "linux":
      return openLinuxProcess(pid);
    case "win32":
      return openWindowsProcess(pid);
    default:
      throw new UnsupportedError(`sockwarden cannot end processes on ${process.platform} yet`);
  }
}

/**
 * Makes this process end when its parent does, even if this one is busy and reads nothing.
 * False when the parent is already gone. Where the OS offers no such binding (Windows: the
 * parent ends its children itself), true.
 */
export function endWithParent(parentPid: number): boolean {
  if (process.platform !== "linux") return true;
  try {
    return bindLinuxChildToParent(parentPid);
  } catch {
    // Without the binding the runner still ends when its pipe closes, once it reads again.
    return true;
  }
}

/**
 * Whether escape sequences written to this terminal stream show as colour. Windows consoles
 * interpret them only once asked to (virtual terminal processing), which this does.
 */
export function terminalShowsColour(stream: { isTTY?: boolean; fd?: number }): boolean {
  if (!stream.isTTY) return false;
  if (process.platform !== "win32") return true;
  return enableVirtualTerminal(stream.fd === 2 ? 2 : 1);
}

export type * from "./types.ts";
