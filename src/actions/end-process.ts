/**
 * Ending a process: SIGTERM, then SIGKILL if it is still there after a grace period, as TCPView's
 * "End Process" does on Windows. A PID that no longer names the same process (start time
 * changed) is not signalled: the process the user meant is already gone.
 */
import fs from "node:fs";
import type { ActionOutcome } from "./close-endpoint.ts";
import type { AuditLog } from "./audit-log.ts";
import type { ProcessInfo } from "../engine/types.ts";

export interface EndProcessOptions {
  /** The first, polite signal (default SIGTERM). */
  signal?: NodeJS.Signals;
  /** How long to wait for the process to go before SIGKILL (default 3000 ms; 0: never). */
  graceMs?: number;
  /** The process's start time as listed (ISO-8601), to refuse signalling a reused PID. */
  expectedStartTime?: string | null;
  /** Test seam: reads a process's start time; default reads /proc. */
  startTimeOf?: (pid: number) => string | null;
  requestedBy: string;
  reason?: string;
  audit?: AuditLog;
  /** The process as listed, for the audit record. */
  process?: ProcessInfo | null;
}

const POLL_MS = 50;

export async function endProcess(pid: number, name: string, o: EndProcessOptions): Promise<ActionOutcome> {
  const outcome = await attemptEnd(pid, name, o);
  o.audit?.append({
    action: "kill",
    process: o.process ?? null,
    reason: o.reason ?? "",
    requestedBy: o.requestedBy,
    outcome: outcome.result,
    message: outcome.message,
  });
  return outcome;
}

async function attemptEnd(pid: number, name: string, o: EndProcessOptions): Promise<ActionOutcome> {
  const graceMs = o.graceMs ?? 3000;
  const signal = o.signal ?? "SIGTERM";
  if (!Number.isInteger(pid) || pid <= 1) return { ok: false, result: "failed", message: `refusing to signal pid ${pid}` };
  if (pid === process.pid) return { ok: false, result: "failed", message: "refusing to end sockwarden itself" };
  if (!alive(pid)) return { ok: true, result: "gone", message: `${name} (pid ${pid}) had already exited` };
  if (o.expectedStartTime && o.startTimeOf) {
    const now = o.startTimeOf(pid);
    if (now !== null && now !== o.expectedStartTime) {
      return { ok: true, result: "gone", message: `${name} (pid ${pid}) had already exited; the pid now names another process` };
    }
  }
  try {
    process.kill(pid, signal);
  } catch (err) {
    return signalFailure(pid, name, err);
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    if (!alive(pid)) return { ok: true, result: "terminated", message: `${name} (pid ${pid}) ended on ${signal}` };
  }
  if (graceMs <= 0 || signal === "SIGKILL") {
    return alive(pid)
      ? { ok: true, result: "signalled", message: `sent ${signal} to ${name} (pid ${pid})` }
      : { ok: true, result: "terminated", message: `${name} (pid ${pid}) ended on ${signal}` };
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch (err) {
    return signalFailure(pid, name, err);
  }
  return { ok: true, result: "killed", message: `${name} (pid ${pid}) did not end within ${graceMs} ms and was killed` };
}

function alive(pid: number): boolean {
  try {
    // A zombie still has a /proc entry but is gone for every purpose here.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

function signalFailure(pid: number, name: string, err: unknown): ActionOutcome {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ESRCH") return { ok: true, result: "gone", message: `${name} (pid ${pid}) had already exited` };
  if (code === "EPERM") {
    const need = process.platform === "win32" ? "an elevated (administrator) prompt" : "root or CAP_KILL";
    return { ok: false, result: "failed", message: `cannot end ${name} (pid ${pid}): it belongs to another user (needs ${need})` };
  }
  return { ok: false, result: "failed", message: `cannot end ${name} (pid ${pid}): ${code ?? String(err)}` };
}
