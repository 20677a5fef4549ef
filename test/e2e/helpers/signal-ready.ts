// Readiness of a process to take a signal: until a program installs its handler, a signal whose
// default action ends the process (SIGHUP, SIGTERM, SIGUSR1) ends it. The kernel shows the
// caught signals in /proc/PID/status (SigCgt, a hex mask, bit N-1 for signal N), so a test can
// wait for the handler instead of guessing how long the start takes.
import fs from "node:fs";
import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";

/** The signals PID catches, or null when it has gone (a zombie has gone too). */
export function caughtSignals(pid: number): bigint | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    if (/^State:\s*[ZX]/m.test(status)) return null;
    const hex = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return hex === undefined ? null : BigInt(`0x${hex}`);
  } catch {
    return null;
  }
}

/**
 * Waits until PID (after any exec, running `executable` when given) has a handler for `signal`.
 * Throws, saying what it saw, when the process ends first or `timeoutMs` passes.
 */
export async function waitForSignalHandler(pid: number, signal: NodeJS.Signals, timeoutMs: number, executable?: string): Promise<void> {
  const bit = 1n << BigInt(os.constants.signals[signal] - 1);
  const deadline = performance.now() + timeoutMs;
  let exe = "";
  for (;;) {
    const mask = caughtSignals(pid);
    if (mask === null) throw new Error(`pid ${pid} ended before it caught ${signal}`);
    try {
      exe = fs.readlinkSync(`/proc/${pid}/exe`);
    } catch {
      exe = "?";
    }
    if ((mask & bit) !== 0n && (executable === undefined || exe === executable)) return;
    if (performance.now() >= deadline) {
      throw new Error(`pid ${pid} (${exe}) had no ${signal} handler within ${timeoutMs} ms (SigCgt ${mask.toString(16)})`);
    }
    await sleep(5);
  }
}
