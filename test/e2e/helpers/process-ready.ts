// Readiness of another process, read from /proc/PID/status instead of guessed with a sleep:
// - a signal handler: until a program installs its handler, a signal whose default action ends
//   the process (SIGHUP, SIGTERM, SIGUSR1) ends it. The kernel shows the caught signals as
//   SigCgt, a hex mask with bit N-1 for signal N;
// - who it is: a wrapper such as setpriv is another program, as another user, until it execs.
import fs from "node:fs";
import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";

/** The fields of /proc/PID/status, or null when the process has gone (a zombie has gone too). */
export function processStatus(pid: number): Map<string, string> | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return null;
  }
  const fields = new Map(text.split("\n").map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()] as [string, string]));
  return /^[ZX]/.test(fields.get("State") ?? "") ? null : fields;
}

/**
 * Polls `ready` with PID's status until it holds; throws, with `describe` of the last status,
 * when the process ends first or `timeoutMs` passes.
 */
async function waitForStatus(pid: number, what: string, ready: (s: Map<string, string>) => boolean, timeoutMs: number, describe: (s: Map<string, string>) => string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const status = processStatus(pid);
    if (status === null) throw new Error(`pid ${pid} ended before ${what}`);
    if (ready(status)) return;
    if (performance.now() >= deadline) throw new Error(`pid ${pid}: not ${what} within ${timeoutMs} ms (${describe(status)})`);
    await sleep(5);
  }
}

/** Waits until PID (after any exec, running `executable` when given) has a handler for `signal`. */
export async function waitForSignalHandler(pid: number, signal: NodeJS.Signals, timeoutMs: number, executable?: string): Promise<void> {
  const bit = 1n << BigInt(os.constants.signals[signal] - 1);
  const exe = () => {
    try {
      return fs.readlinkSync(`/proc/${pid}/exe`);
    } catch {
      return "?";
    }
  };
  const caught = (s: Map<string, string>) => BigInt(`0x${s.get("SigCgt") ?? "0"}`);
  await waitForStatus(
    pid,
    `catching ${signal}`,
    (s) => (caught(s) & bit) !== 0n && (executable === undefined || exe() === executable),
    timeoutMs,
    (s) => `${exe()}, SigCgt ${s.get("SigCgt")}`,
  );
}

/** Waits until PID runs the program named `name` as user `uid` (a wrapper has exec'd it). */
export async function waitForProgram(pid: number, name: string, uid: number, timeoutMs: number): Promise<void> {
  const uidOf = (s: Map<string, string>) => (s.get("Uid") ?? "").split(/\s+/)[0];
  await waitForStatus(pid, `running ${name} as uid ${uid}`, (s) => s.get("Name") === name && uidOf(s) === String(uid), timeoutMs, (s) => `${s.get("Name")} as uid ${uidOf(s)}`);
}
