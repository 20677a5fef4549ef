/**
 * Ending a process: SIGTERM, then SIGKILL if it is still there after a grace period, as TCPView's
 * "End Process" does on Windows. What is ended is the process the decision was made about, named
 * by its PID and its exact start (startId): right before each signal, the first and the SIGKILL,
 * the process is looked at afresh through a handle that pins it (a pidfd, a Windows handle), and
 * the signal is refused when the PID names another process, when the process now runs another
 * executable, or when the guard (protection) refuses the process as it is now. The outcome and the
 * audit record say what was found there and which signals went out.
 */
import type { ActionOutcome } from "./close-endpoint.ts";
import type { AuditLog } from "./audit-log.ts";
import type { EndSignal, OpenProcessResult, ProcessHandle } from "../engine/types.ts";
import type { ProcessInfo } from "../model/process.ts";
import { openProcess } from "../engine/index.ts";

export interface EndProcessOptions {
  /** The first, polite signal (default SIGTERM). */
  signal?: EndSignal;
  /** How long to wait for the process to go before SIGKILL (default 3000 ms; 0: never). */
  graceMs?: number;
  /**
   * Why the process, as it is now, must not be ended (protection), or null. Asked right before
   * each signal with what the PID names at that moment.
   */
  guard?: (now: ProcessInfo, handle: ProcessHandle) => string | null;
  /** Opens a process to signal it (default: the OS's, through the engine); a test seam. */
  open?: (pid: number) => OpenProcessResult;
  requestedBy: string;
  reason?: string;
  audit?: AuditLog;
}

/**
 * terminated | killed | signalled (sent, not waited for) | gone (had exited) | reused (the PID
 * names another process: refused) | changed (runs another executable now: refused) | protected
 * (refused by the guard) | failed.
 */
export interface EndOutcome extends ActionOutcome {
  /** What the PID named when it was last looked at: the process signalled, or the one refused. */
  observed: ProcessInfo | null;
  /** The signals that went out, in order. */
  signals: EndSignal[];
}

const POLL_MS = 50;

export async function endProcess(target: ProcessInfo, o: EndProcessOptions): Promise<EndOutcome> {
  const outcome = await attemptEnd(target, o);
  o.audit?.append({
    action: "kill",
    process: target,
    observed: outcome.observed,
    signals: outcome.signals,
    reason: o.reason ?? "",
    requestedBy: o.requestedBy,
    outcome: outcome.result,
    message: outcome.message,
  });
  return outcome;
}

type Step = { ok: true; now: ProcessInfo } | { ok: false; outcome: EndOutcome };

async function attemptEnd(target: ProcessInfo, o: EndProcessOptions): Promise<EndOutcome> {
  const { pid } = target;
  const name = `${target.name} (pid ${pid})`;
  const graceMs = o.graceMs ?? 3000;
  const first = o.signal ?? "SIGTERM";
  const signals: EndSignal[] = [];
  const end = (ok: boolean, result: string, message: string, observed: ProcessInfo | null = null): EndOutcome => ({ ok, result, message, observed, signals });
  if (!Number.isSafeInteger(pid) || pid <= 1) return end(false, "failed", `refusing to signal pid ${pid}`);
  if (pid === process.pid) return end(false, "failed", "refusing to end sockwarden itself");
  if (!target.startId && !target.startTime) {
    return end(false, "failed", `refused: cannot tell whether pid ${pid} is still ${target.name}: its start time was not known when it was chosen`);
  }

  const opened = (o.open ?? openProcess)(pid);
  if ("outcome" in opened) {
    return opened.outcome === "gone"
      ? end(true, "gone", `${name} had already exited`)
      : end(false, "failed", `cannot end ${name}: ${opened.reason}`);
  }
  const handle = opened;
  try {
    // The first signal: only to the process decided about, and only if it may be ended as it is now.
    const look = check(target, handle, o, end);
    if (!look.ok) return look.outcome;
    let observed = look.now;
    const sent = handle.signal(first);
    if (sent.outcome === "gone") return end(true, "gone", `${name} had already exited`, observed);
    if (sent.outcome === "failed") return end(false, "failed", `cannot end ${name}: ${sent.reason}`, observed);
    signals.push(first);

    const deadline = performance.now() + graceMs;
    while (performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (!stillTarget(target, handle.inspect())) return end(true, "terminated", `${name} ended on ${first}`, observed);
    }
    if (graceMs <= 0 || first === "SIGKILL") {
      return stillTarget(target, handle.inspect())
        ? end(true, "signalled", `sent ${first} to ${name}`, observed)
        : end(true, "terminated", `${name} ended on ${first}`, observed);
    }

    // The SIGKILL: the same checks again, on the process as it is after the grace period.
    const again = handle.inspect();
    if (!stillTarget(target, again)) return end(true, "terminated", `${name} ended on ${first}`, observed);
    observed = again!;
    const moved = changedExecutable(target, observed);
    if (moved) return end(false, "changed", `refused SIGKILL: pid ${pid} (${target.name}) ${moved}; ${first} was sent`, observed);
    const refusal = o.guard?.(observed, handle) ?? null;
    if (refusal) return end(false, "protected", `refused SIGKILL: ${observed.name} (pid ${pid}) is protected now: ${refusal}; ${first} was sent`, observed);
    const killed = handle.signal("SIGKILL");
    if (killed.outcome === "gone") return end(true, "terminated", `${name} ended on ${first}`, observed);
    if (killed.outcome === "failed") return end(false, "failed", `cannot kill ${name}: ${killed.reason}; ${first} was sent`, observed);
    signals.push("SIGKILL");
    return end(true, "killed", `${name} did not end within ${graceMs} ms and was killed`, observed);
  } finally {
    handle.close();
  }
}

/** What the PID names now, if it is the target and may be ended; else the outcome that says why not. */
function check(target: ProcessInfo, handle: ProcessHandle, o: EndProcessOptions, end: (ok: boolean, result: string, message: string, observed?: ProcessInfo | null) => EndOutcome): Step {
  const { pid } = target;
  const now = handle.inspect();
  if (now === null) return { ok: false, outcome: end(true, "gone", `${target.name} (pid ${pid}) had already exited`) };
  if (!sameStart(target, now)) {
    return {
      ok: false,
      outcome: end(false, "reused", `refused: pid ${pid} is now ${now.name} (started ${now.startTime ?? "at an unknown time"}), not ${target.name} (started ${target.startTime ?? "at an unknown time"}), which has exited`, now),
    };
  }
  const moved = changedExecutable(target, now);
  if (moved) return { ok: false, outcome: end(false, "changed", `refused: pid ${pid} (${target.name}) ${moved}`, now) };
  const refusal = o.guard?.(now, handle) ?? null;
  if (refusal) return { ok: false, outcome: end(false, "protected", `refused: ${now.name} (pid ${pid}) is protected: ${refusal}`, now) };
  return { ok: true, now };
}

/** Whether `now` is the process `target` names: the same exact start (the rounded one where only that is known). */
function sameStart(target: ProcessInfo, now: ProcessInfo): boolean {
  if (target.startId && now.startId) return target.startId === now.startId;
  return !!target.startTime && target.startTime === now.startTime;
}

function stillTarget(target: ProcessInfo, now: ProcessInfo | null): boolean {
  return now !== null && sameStart(target, now);
}

/**
 * How the process changed its executable (exec) since it was chosen, or null: what it runs now
 * is not what the decision was about. A path the kernel marks deleted (the package was upgraded
 * under it) is the same executable.
 */
function changedExecutable(target: ProcessInfo, now: ProcessInfo): string | null {
  if (!target.path || !now.path) return null;
  const strip = (p: string) => p.replace(/ \(deleted\)$/, "");
  return strip(target.path) === strip(now.path) ? null : `now runs ${now.path}, not ${target.path}`;
}
