/**
 * The engine's face to the rest of sockwarden. Code outside src/engine depends only on the
 * SocketEngine interface (types.ts), the platform object (platform.ts) and the records of
 * src/model. The functions below answer for the platform this process runs on, for the few
 * places that have no platform handed to them (a rule runner, the colour of a line).
 */
import type { OpenProcessResult, SocketEngine } from "./types.ts";
import { currentPlatform, type EngineOptions } from "./platform.ts";

export { currentPlatform, type EngineOptions, type LocalDatagram, type LoginUser, type Platform, type PlatformPlaces } from "./platform.ts";

/** The socket engine of the platform this process runs on. */
export function createEngine(options: EngineOptions = {}): SocketEngine {
  return currentPlatform().createEngine(options);
}

/**
 * Opens a process to end it: what the PID names now can be inspected, and signals go to that
 * process only (see ProcessHandle). Needs no engine: the live view, the daemon and tests share it.
 */
export function openProcess(pid: number): OpenProcessResult {
  return currentPlatform().openProcess(pid);
}

/**
 * Makes this process end when its parent does, even if this one is busy and reads nothing.
 * False when the parent is already gone. Where the OS offers no such binding (Windows: the
 * parent ends its children itself), true.
 */
export function endWithParent(parentPid: number): boolean {
  return currentPlatform().endWithParent(parentPid);
}

/**
 * Whether escape sequences written to this terminal stream show as colour. Windows consoles
 * interpret them only once asked to (virtual terminal processing), which this does.
 */
export function terminalShowsColour(stream: { isTTY?: boolean; fd?: number }): boolean {
  return currentPlatform().terminalShowsColour(stream);
}

export type * from "./types.ts";
