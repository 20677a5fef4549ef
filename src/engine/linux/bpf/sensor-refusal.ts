/**
 * Why the eBPF sensor cannot start, as a reason a user can act on: the checks made before
 * anything is opened, and the translation of a refused system call.
 */
import fs from "node:fs";
import { SockwardenError, SystemCallError, UnsupportedError } from "../../../errors.ts";
import { CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, hasCapability, userNamespaceNote } from "../capabilities.ts";
import { EACCES, EPERM } from "../errno.ts";
import {
  TracefsUnavailableError,
  TracepointFormatError,
  TracepointMissingError,
  readSetStateTracepoint,
  type SetStateTracepoint,
  type TracefsHost,
} from "./tracepoint-format.ts";

/** Why the sensor cannot run, by kind, for the caller's note and its fallback. */
export type SensorUnavailableReason =
  | "platform" // not Linux on x64/arm64
  | "privilege" // no CAP_BPF + CAP_PERFMON, nor CAP_SYS_ADMIN
  | "lockdown" // kernel lockdown refuses BPF tracing
  | "tracefs" // tracefs neither mounted nor mountable
  | "tracepoint" // no sock:inet_sock_set_state (before 4.16), or a layout this program cannot read
  | "kernel" // a feature the sensor needs is missing (e.g. the ring buffer when asked for)
  | "verifier" // the kernel's verifier refused the program
  | "interrupted"; // the verifier gave up for pending signals at every try

export class SensorUnavailableError extends UnsupportedError {
  constructor(
    readonly reason: SensorUnavailableReason,
    message: string,
    /** The verifier's log when it refused the program. */
    readonly verifierLog: string | null = null,
    options?: { cause?: unknown },
  ) {
    super(`eBPF sensor unavailable: ${message}`, options);
  }
}

const PRIVILEGE_NEEDED = "it needs CAP_BPF and CAP_PERFMON (Linux 5.8+) or CAP_SYS_ADMIN";

function lockdownMode(): string | null {
  try {
    const text = fs.readFileSync("/sys/kernel/security/lockdown", "utf8");
    return /\[(\w+)\]/.exec(text)?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Turns a refused system call into the reason a user can act on. */
export function refusal(step: string, error: unknown): SensorUnavailableError {
  if (error instanceof SensorUnavailableError) return error;
  if (error instanceof SystemCallError && (error.errno === EPERM || error.errno === EACCES)) {
    const lockdown = lockdownMode();
    // Integrity mode leaves BPF tracing alone (only bpf_probe_write_user is refused there).
    if (lockdown === "confidentiality") {
      return new SensorUnavailableError("lockdown", `${step} was refused (${error.code}) and the kernel is in lockdown mode "${lockdown}", which forbids BPF tracing`, null, { cause: error });
    }
    return new SensorUnavailableError("privilege", `${step} was refused (${error.code}): ${PRIVILEGE_NEEDED}${userNamespaceNote()}`, null, { cause: error });
  }
  if (error instanceof SockwardenError) return new SensorUnavailableError("kernel", `${step}: ${error.message}`, null, { cause: error });
  return new SensorUnavailableError("kernel", `${step}: ${(error as Error).message}`, null, { cause: error });
}

export function checkPlatform(): void {
  if (process.platform !== "linux") throw new SensorUnavailableError("platform", "it runs on Linux only");
  if (process.arch !== "x64" && process.arch !== "arm64") {
    throw new SensorUnavailableError("platform", `it supports x64 and arm64, not ${process.arch}`);
  }
}

export function checkPrivilege(): void {
  const has = (cap: number) => hasCapability(cap);
  // bpf(2) and perf_event_open(2) ask for these in the host's user namespace: a container's root has none.
  if (userNamespaceNote() === "" && (has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)))) return;
  throw new SensorUnavailableError("privilege", `this process lacks the capabilities: ${PRIVILEGE_NEEDED}${userNamespaceNote()}`);
}

export function readTracepoint(host: TracefsHost): SetStateTracepoint {
  try {
    return readSetStateTracepoint(host);
  } catch (error) {
    if (error instanceof TracefsUnavailableError) throw new SensorUnavailableError("tracefs", error.message, null, { cause: error });
    if (error instanceof TracepointMissingError) throw new SensorUnavailableError("tracepoint", error.message, null, { cause: error });
    if (error instanceof TracepointFormatError) {
      throw new SensorUnavailableError("tracepoint", `sock:inet_sock_set_state has a layout this program cannot read: ${error.message}`, null, { cause: error });
    }
    const denied = (error as NodeJS.ErrnoException).code === "EACCES" ? "; tracefs is root's alone: reading it needs root or CAP_DAC_READ_SEARCH" : "";
    throw new SensorUnavailableError("tracefs", `cannot read the tracepoint's layout: ${(error as Error).message}${denied}`, null, { cause: error });
  }
}
