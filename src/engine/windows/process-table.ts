/**
 * Processes on Windows: every process's name and parent from one toolhelp snapshot, and for the
 * processes that own sockets their image path, start time, user and command line, the way
 * TCPView shows them. A process that cannot be opened (a protected or another user's process,
 * without elevation) keeps its name and parent; its other fields are null and it is counted.
 *
 * Details are kept per PID between snapshots and read again only when the PID names another
 * process (its name or parent changed), so a watcher does not reopen every process each refresh.
 */
import { koffi } from "../native/koffi-addon.ts";
import type { ProcessDetails, ProcessInfo } from "../../model/process.ts";
import {
  PROCESS_BASIC_INFORMATION_CLASS,
  PROCESS_COMMAND_LINE_INFORMATION,
  PROCESS_QUERY_INFORMATION,
  PROCESS_QUERY_LIMITED_INFORMATION,
  PROCESS_VM_READ,
  TH32CS_SNAPPROCESS,
  kernel32,
  type Handle,
} from "./kernel32.ts";
import { TOKEN_QUERY, advapi32 } from "./advapi32.ts";
import { versionDll } from "./version-dll.ts";
import { creationTime } from "./process-signal.ts";
import {
  PARAMETERS_COMMAND_LINE,
  PBI_PEB_BASE_ADDRESS,
  PEB_PROCESS_PARAMETERS,
  PROCESS_BASIC_INFORMATION_LEN,
  TOKEN_ELEVATION_CLASS,
  TOKEN_ELEVATION_LEN,
  TOKEN_USER_CLASS,
  TOKEN_USER_SID,
  UNICODE_STRING_LEN,
  decodeProcessEntry,
  decodeUnicodeStringHeader,
  decodeUnicodeStringInBlock,
  newProcessEntry,
  stringFileInfoKeys,
  type ProcessEntry,
} from "./process-codec.ts";

/** What TCPView shows about an image besides its path: from the image's version resource. */
export interface ImageVersionInfo {
  description: string | null;
  company: string | null;
  version: string | null;
}

/** ProcessDetails plus the Windows image's version resource. */
export interface WindowsProcessDetails extends ProcessDetails, ImageVersionInfo {}

interface Cached {
  entry: ProcessEntry;
  info: ProcessInfo;
  /** Whether OpenProcess failed (access denied): the process is counted as unreadable. */
  unreadable: boolean;
}

/** PIDs 0 (the idle process) and 4 (System) are not ordinary processes: no image, no token. */
const IDLE_PID = 0;
const SYSTEM_PID = 4;
const MAX_PATH_CHARS = 32_768;

export class ProcessTable {
  private entries = new Map<number, ProcessEntry>();
  private readonly cache = new Map<number, Cached>();
  private readonly users = new Map<string, string | null>();
  private readonly versions = new Map<string, ImageVersionInfo>();

  /** Takes a new toolhelp snapshot of every process (names and parents). */
  refresh(): void {
    const k = kernel32();
    const snapshot = k.createToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    const entries = new Map<number, ProcessEntry>();
    if (snapshot !== null) {
      try {
        const entry = newProcessEntry();
        for (let ok = k.process32FirstW(snapshot, entry); ok; ok = k.process32NextW(snapshot, entry)) {
          const e = decodeProcessEntry(entry);
          entries.set(e.pid, e);
        }
      } finally {
        k.closeHandle(snapshot);
      }
    }
    this.entries = entries;
    for (const [pid, cached] of this.cache) {
      const now = entries.get(pid);
      if (!now || now.exeFile !== cached.entry.exeFile || now.ppid !== cached.entry.ppid) this.cache.delete(pid);
    }
  }

  /** The process with this PID as of the last refresh, or null when there is none (or PID 0). */
  info(pid: number): ProcessInfo | null {
    return this.lookup(pid)?.info ?? null;
  }

  /** Whether the process could not be opened for its details. */
  unreadable(pid: number): boolean {
    return this.lookup(pid)?.unreadable ?? false;
  }

  private lookup(pid: number): Cached | null {
    if (pid === IDLE_PID) return null;
    const cached = this.cache.get(pid);
    if (cached) return cached;
    const entry = this.entries.get(pid);
    if (!entry) return null;
    const read = this.read(entry);
    this.cache.set(pid, read);
    return read;
  }

  private read(entry: ProcessEntry): Cached {
    const info: ProcessInfo = {
      pid: entry.pid,
      name: entry.exeFile,
      path: null,
      cmdline: null,
      uid: null,
      user: null,
      startTime: null,
      ppid: entry.ppid === 0 && entry.pid === SYSTEM_PID ? null : entry.ppid,
    };
    if (entry.pid === SYSTEM_PID) return { entry, info: { ...info, user: "NT AUTHORITY\\SYSTEM" }, unreadable: false };
    const k = kernel32();
    const h = k.openProcess(PROCESS_QUERY_LIMITED_INFORMATION, entry.pid);
    if (h === null) return { entry, info, unreadable: true };
    try {
      info.path = imagePath(h);
      const created = creationTime(h);
      info.startTime = created?.iso ?? null;
      info.startId = created?.id ?? null;
      info.user = this.userOf(h);
      info.cmdline = commandLine(h) ?? commandLineFromPeb(entry.pid);
    } finally {
      k.closeHandle(h);
    }
    return { entry, info, unreadable: false };
  }

  private userOf(h: Handle): string | null {
    const a = advapi32();
    const token: unknown[] = [null];
    if (!a.openProcessToken(h, TOKEN_QUERY, token) || token[0] === null) return null;
    const k = koffi();
    const size = 256;
    const block = k.alloc("uint8_t", size);
    try {
      const returned = [0];
      if (!a.getTokenInformation(token[0], TOKEN_USER_CLASS, block, size, returned)) return null;
      const sid = k.decode(block, TOKEN_USER_SID, "void *");
      // SIDs are short: their bytes are the cache key, so each account is looked up once.
      const view = new Uint8Array(k.view(block, size));
      const key = Buffer.from(view.subarray(Number(k.address(sid) - k.address(block)), returned[0] ?? size)).toString("hex");
      if (this.users.has(key)) return this.users.get(key) ?? null;
      const name = lookupAccount(sid);
      this.users.set(key, name);
      return name;
    } finally {
      k.free(block);
      kernel32().closeHandle(token[0]);
    }
  }

  /** Everything `sockwarden proc` shows about one process; null when there is no such process. */
  details(pid: number): WindowsProcessDetails | null {
    this.refresh();
    const cached = this.lookup(pid);
    if (!cached) return null;
    const { info, entry } = cached;
    const parent = info.ppid !== null ? this.entries.get(info.ppid) : undefined;
    const version = info.path ? this.versionOf(info.path) : { description: null, company: null, version: null };
    return {
      ...info,
      ppidName: parent?.exeFile ?? null,
      cgroup: null,
      unit: null,
      unitUid: null,
      state: null,
      threads: entry.threads,
      rssKiB: workingSetKiB(pid),
      fdCount: null,
      netns: null,
      ...version,
    };
  }

  /** The image's description, company and version (cached per path). */
  versionOf(path: string): ImageVersionInfo {
    let v = this.versions.get(path);
    if (!v) {
      v = readVersionInfo(path);
      this.versions.set(path, v);
    }
    return v;
  }
}

function imagePath(h: Handle): string | null {
  const buf = Buffer.alloc(MAX_PATH_CHARS * 2);
  const size = [MAX_PATH_CHARS];
  if (!kernel32().queryFullProcessImageName(h, buf, size)) return null;
  return buf.toString("utf16le", 0, (size[0] ?? 0) * 2);
}

// NTSTATUS values (ntstatus.h) as the signed 32-bit numbers the call returns.
const STATUS_INFO_LENGTH_MISMATCH = 0xc0000004 | 0;
const STATUS_BUFFER_OVERFLOW = 0x80000005 | 0;
const STATUS_BUFFER_TOO_SMALL = 0xc0000023 | 0;
/** Longest command line Windows allows, in bytes (32,767 WCHARs). */
const MAX_COMMAND_LINE_BYTES = 65_534;

/** The command line through ProcessCommandLineInformation (Windows 8.1+); null where refused. */
function commandLine(h: Handle): string | null {
  const k = koffi();
  let size = 4096;
  for (let attempt = 0; attempt < 3; attempt++) {
    const block = k.alloc("uint8_t", size);
    try {
      const returned = [0];
      const status = kernel32().ntQueryInformationProcess(h, PROCESS_COMMAND_LINE_INFORMATION, block, size, returned);
      // STATUS_INFO_LENGTH_MISMATCH / STATUS_BUFFER_OVERFLOW / STATUS_BUFFER_TOO_SMALL: grow.
      if (status === STATUS_INFO_LENGTH_MISMATCH || status === STATUS_BUFFER_OVERFLOW || status === STATUS_BUFFER_TOO_SMALL) {
        size = Math.max(size * 2, (returned[0] ?? 0) + UNICODE_STRING_LEN);
        continue;
      }
      if (status !== 0) return null;
      return decodeUnicodeStringInBlock(new Uint8Array(k.view(block, size)), k.address(block));
    } catch {
      return null;
    } finally {
      k.free(block);
    }
  }
  return null;
}

/**
 * The command line read from the process's PEB (PROCESS_VM_READ needed): for systems without
 * ProcessCommandLineInformation. Null where the process cannot be read.
 */
function commandLineFromPeb(pid: number): string | null {
  const k = kernel32();
  const h = k.openProcess(PROCESS_QUERY_INFORMATION | PROCESS_VM_READ, pid);
  if (h === null) return null;
  try {
    const basic = Buffer.alloc(PROCESS_BASIC_INFORMATION_LEN);
    if (k.ntQueryInformationProcess(h, PROCESS_BASIC_INFORMATION_CLASS, basic, basic.byteLength, [0]) !== 0) return null;
    const peb = basic.readBigUInt64LE(PBI_PEB_BASE_ADDRESS);
    const pointer = Buffer.alloc(8);
    if (peb === 0n || !k.readProcessMemory(h, peb + BigInt(PEB_PROCESS_PARAMETERS), pointer)) return null;
    const parameters = pointer.readBigUInt64LE(0);
    const header = Buffer.alloc(UNICODE_STRING_LEN);
    if (parameters === 0n || !k.readProcessMemory(h, parameters + BigInt(PARAMETERS_COMMAND_LINE), header)) return null;
    const { length, buffer } = decodeUnicodeStringHeader(header);
    if (length === 0) return "";
    if (buffer === 0n || length > MAX_COMMAND_LINE_BYTES) return null;
    const text = Buffer.alloc(length);
    return k.readProcessMemory(h, buffer, text) ? text.toString("utf16le") : null;
  } catch {
    return null;
  } finally {
    k.closeHandle(h);
  }
}

function lookupAccount(sid: unknown): string | null {
  let nameChars = 64;
  let domainChars = 64;
  for (let attempt = 0; attempt < 2; attempt++) {
    const name = Buffer.alloc(nameChars * 2);
    const domain = Buffer.alloc(domainChars * 2);
    const n = [nameChars];
    const d = [domainChars];
    if (advapi32().lookupAccountSid(sid, name, n, domain, d)) {
      const user = name.toString("utf16le", 0, (n[0] ?? 0) * 2);
      const dom = domain.toString("utf16le", 0, (d[0] ?? 0) * 2);
      return dom ? `${dom}\\${user}` : user;
    }
    // ERROR_INSUFFICIENT_BUFFER leaves the needed sizes; anything else (an unknown SID) is final.
    if ((n[0] ?? 0) <= nameChars && (d[0] ?? 0) <= domainChars) return null;
    nameChars = Math.max(nameChars, n[0] ?? 0);
    domainChars = Math.max(domainChars, d[0] ?? 0);
  }
  return null;
}

// PROCESS_MEMORY_COUNTERS: DWORD cb; DWORD PageFaultCount; SIZE_T PeakWorkingSetSize;
// SIZE_T WorkingSetSize (offset 16); ... 72 bytes on x64.
const PROCESS_MEMORY_COUNTERS_LEN = 72;
const PMC_WORKING_SET_SIZE = 16;

function workingSetKiB(pid: number): number | null {
  const k = kernel32();
  const h = k.openProcess(PROCESS_QUERY_LIMITED_INFORMATION, pid);
  if (h === null) return null;
  try {
    const counters = Buffer.alloc(PROCESS_MEMORY_COUNTERS_LEN);
    counters.writeUInt32LE(PROCESS_MEMORY_COUNTERS_LEN, 0);
    if (!k.getProcessMemoryInfo(h, counters)) return null;
    return Math.round(Number(counters.readBigUInt64LE(PMC_WORKING_SET_SIZE)) / 1024);
  } finally {
    k.closeHandle(h);
  }
}

/** Reads FileDescription, CompanyName and FileVersion from an image's version resource. */
export function readVersionInfo(path: string): ImageVersionInfo {
  const none: ImageVersionInfo = { description: null, company: null, version: null };
  let v;
  try {
    v = versionDll();
  } catch {
    return none;
  }
  const size = v.getFileVersionInfoSize(path);
  if (size === 0) return none;
  const k = koffi();
  const block = k.alloc("uint8_t", size);
  try {
    if (!v.getFileVersionInfo(path, size, block)) return none;
    const view = new Uint8Array(k.view(block, size));
    const base = k.address(block);
    const query = (sub: string): Uint8Array | null => {
      const value: unknown[] = [null];
      const length = [0];
      if (!v.verQueryValue(block, sub, value, length) || value[0] === null) return null;
      const offset = Number(k.address(value[0]) - base);
      if (offset < 0 || offset >= size) return null;
      return view.subarray(offset, Math.min(size, offset + (length[0] ?? 0) * (sub.startsWith("\\StringFileInfo") ? 2 : 1)));
    };
    const text = (bytes: Uint8Array | null): string | null => {
      if (!bytes) return null;
      const s = Buffer.from(bytes).toString("utf16le").replace(/\0.*$/s, "").trim();
      return s === "" ? null : s;
    };
    for (const key of stringFileInfoKeys(query("\\VarFileInfo\\Translation"))) {
      const description = text(query(`\\StringFileInfo\\${key}\\FileDescription`));
      const company = text(query(`\\StringFileInfo\\${key}\\CompanyName`));
      const version = text(query(`\\StringFileInfo\\${key}\\FileVersion`)) ?? text(query(`\\StringFileInfo\\${key}\\ProductVersion`));
      if (description !== null || company !== null || version !== null) return { description, company, version };
    }
    return none;
  } catch {
    return none;
  } finally {
    k.free(block);
  }
}

/** Whether this process runs elevated (an administrator's full token). */
export function isElevated(): boolean {
  try {
    const k = kernel32();
    const token: unknown[] = [null];
    if (!advapi32().openProcessToken(k.getCurrentProcess(), TOKEN_QUERY, token) || token[0] === null) return false;
    try {
      const elevation = Buffer.alloc(TOKEN_ELEVATION_LEN);
      if (!advapi32().getTokenInformation(token[0], TOKEN_ELEVATION_CLASS, elevation, TOKEN_ELEVATION_LEN, [0])) return false;
      return elevation.readUInt32LE(0) !== 0;
    } finally {
      k.closeHandle(token[0]);
    }
  } catch {
    return false;
  }
}
