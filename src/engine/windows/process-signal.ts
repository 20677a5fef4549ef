/**
 * Ending only the process a decision was made about, on Windows. A process handle (OpenProcess)
 * keeps naming the process it was opened on, even after it exits and its PID is handed out again:
 * its creation time (GetProcessTimes) is compared with the one decided about, and
 * TerminateProcess goes through the same handle. Windows has no polite signal to send another
 * process, so SIGTERM and SIGKILL both terminate it.
 */
import type { EndSignal, OpenProcessResult, ProcessHandle, SignalResult } from "../types.ts";
import type { Family, Protocol, SocketAddresses } from "../../model/endpoint.ts";
import type { ProcessInfo } from "../../model/process.ts";
import {
  PROCESS_QUERY_LIMITED_INFORMATION,
  PROCESS_TERMINATE,
  SYNCHRONIZE,
  WAIT_OBJECT_0,
  kernel32,
  type Handle,
} from "./kernel32.ts";
import { ERROR_ACCESS_DENIED, ERROR_INVALID_PARAMETER } from "./iphlpapi.ts";
import { fileTimeToIso } from "./process-codec.ts";
import { win32ErrorName } from "./win32-errors.ts";
import { LiveTableSource } from "./table-source.ts";
import { decodeTable } from "./ip-table-codec.ts";

const MAX_PATH_CHARS = 32_768;
const ELEVATION = "an elevated (administrator) prompt";

/** The creation time of an open process: ISO-8601 for people, the exact FILETIME as its id. */
export function creationTime(h: Handle): { iso: string | null; id: string } | null {
  const times = Buffer.alloc(32);
  if (!kernel32().getProcessTimes(h, times)) return null;
  const id = times.readBigUInt64LE(0);
  return id === 0n ? null : { iso: fileTimeToIso(times, 0), id: id.toString() };
}

/** Opens process `pid` for ending it; `{outcome: "gone"}` when there is none. */
export function openWindowsProcess(pid: number): OpenProcessResult {
  if (!Number.isSafeInteger(pid) || pid <= 0) return { outcome: "gone" };
  const k = kernel32();
  const h = k.openProcess(PROCESS_TERMINATE | PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, pid);
  if (h === null) {
    const error = k.getLastError();
    // OpenProcess says ERROR_INVALID_PARAMETER for a PID that names no process.
    if (error === ERROR_INVALID_PARAMETER) return { outcome: "gone" };
    const code = win32ErrorName(error);
    return { outcome: "failed", code, reason: error === ERROR_ACCESS_DENIED ? `it belongs to another user or is protected (needs ${ELEVATION})` : code };
  }
  return new WindowsProcessHandle(pid, h);
}

class WindowsProcessHandle implements ProcessHandle {
  readonly binding = "handle" as const;
  private h: Handle | null;

  constructor(
    readonly pid: number,
    h: Handle,
  ) {
    this.h = h;
  }

  private exited(): boolean {
    return this.h === null || kernel32().waitForSingleObject(this.h, 0) === WAIT_OBJECT_0;
  }

  inspect(): ProcessInfo | null {
    if (this.exited()) return null;
    const h = this.h!;
    const path = imagePath(h);
    const created = creationTime(h);
    return {
      pid: this.pid,
      name: path ? path.slice(path.lastIndexOf("\\") + 1) : String(this.pid),
      path,
      cmdline: null,
      uid: null,
      user: null,
      startTime: created?.iso ?? null,
      startId: created?.id ?? null,
      ppid: null,
    };
  }

  sockets(): SocketAddresses[] | null {
    const source = new LiveTableSource();
    const out: SocketAddresses[] = [];
    try {
      for (const [protocol, family] of [["tcp", 4], ["tcp", 6], ["udp", 4], ["udp", 6]] as [Protocol, Family][]) {
        const table = source.read(protocol, family);
        for (const row of decodeTable(table.bytes, table.layout)) {
          if (row.pid !== this.pid) continue;
          out.push({ protocol, family, localAddress: row.localAddress, localPort: row.localPort, remoteAddress: row.remoteAddress, remotePort: row.remotePort });
        }
      }
    } catch {
      return null;
    } finally {
      source.close();
    }
    return out;
  }

  signal(_signal: EndSignal): SignalResult {
    if (this.exited()) return { outcome: "gone" };
    const k = kernel32();
    if (k.terminateProcess(this.h!, 1)) return { outcome: "sent" };
    const error = k.getLastError();
    // Terminating a process that is exiting fails with access denied.
    if (this.exited()) return { outcome: "gone" };
    const code = win32ErrorName(error);
    return { outcome: "failed", code, reason: error === ERROR_ACCESS_DENIED ? `access denied (needs ${ELEVATION})` : code };
  }

  close(): void {
    if (this.h !== null) kernel32().closeHandle(this.h);
    this.h = null;
  }
}

function imagePath(h: Handle): string | null {
  const buf = Buffer.alloc(MAX_PATH_CHARS * 2);
  const size = [MAX_PATH_CHARS];
  if (!kernel32().queryFullProcessImageName(h, buf, size)) return null;
  return buf.toString("utf16le", 0, (size[0] ?? 0) * 2);
}
