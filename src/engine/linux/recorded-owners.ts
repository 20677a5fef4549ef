/**
 * The owners of a recording's sockets: which PIDs held each socket inode and what /proc said of
 * those processes when the recording was made, so that `--replay` on another box shows the
 * recorded box's processes instead of none (or, worse, whatever its own /proc holds).
 *
 * A recording keeps them as JSON lines next to the datagrams:
 *   {"owners":N}                        owners were recorded (N sockets have one)
 *   {"socket":INODE,"pids":[PID,…]}     one per owned socket, lowest PID first
 *   {"process":{…ProcessInfo}}          one per process an endpoint was shown with
 * A recording made before they were kept, or an `ss -D` dump, has none of these lines.
 */
import type { Endpoint } from "../../model/endpoint.ts";
import type { ContainerInfo, ProcessInfo } from "../../model/process.ts";
import { DecodeError } from "../../errors.ts";

/** The owner lines for a snapshot's endpoints, owners attached. */
export function ownerLines(endpoints: readonly Endpoint[]): string[] {
  const sockets: string[] = [];
  const processes = new Map<number, ProcessInfo>();
  for (const ep of endpoints) {
    if (ep.inode === 0 || ep.pids.length === 0) continue;
    sockets.push(JSON.stringify({ socket: ep.inode, pids: ep.pids }));
    if (ep.process) processes.set(ep.process.pid, ep.process);
  }
  return [
    JSON.stringify({ owners: sockets.length }),
    ...sockets,
    ...[...processes.values()].map((process) => JSON.stringify({ process })),
  ];
}

const RUNTIMES: readonly ContainerInfo["runtime"][] = ["docker", "containerd", "crio", "podman", "kubernetes", "lxc"];
/** More holders than any real socket has: a bound on what one line can make us keep. */
const MAX_PIDS = 4096;
const KINDS = ["owners", "socket", "process"] as const;

export class RecordedOwners {
  private readonly pidsByInode = new Map<number, number[]>();
  private readonly processes = new Map<number, ProcessInfo>();
  private recorded = false;
  private told = false;

  constructor(private readonly file: string) {}

  /**
   * Takes one parsed line of the recording if it is an owner line; false for anything else.
   * `where` is `file:line`, for the error of a line that is damaged (the file is untrusted).
   */
  accept(item: Record<string, unknown>, where: string): boolean {
    const kinds = KINDS.filter((kind) => Object.hasOwn(item, kind)).length;
    // A line that is two kinds at once would be read as whichever is tried first, the rest unread.
    if (kinds > 1) throw new DecodeError(`${where}: an owner line holds one of owners, socket or process`);
    if (Object.hasOwn(item, "owners")) {
      if (!isCount(item.owners)) throw new DecodeError(`${where}: expected {owners: count}`);
      this.recorded = true;
      return true;
    }
    if (Object.hasOwn(item, "socket")) {
      const { socket, pids } = item;
      if (!isId(socket) || !isPidList(pids)) throw new DecodeError(`${where}: expected {socket: inode, pids: [pid, …]}`);
      this.pidsByInode.set(socket, pids);
      // Owners without their {owners} marker are still owners: the note that none were kept would be untrue.
      this.recorded = true;
      return true;
    }
    if (Object.hasOwn(item, "process")) {
      const process = processInfo(item.process);
      if (typeof process === "string") throw new DecodeError(`${where}: recorded process has a bad ${process}`);
      this.processes.set(process.pid, process);
      return true;
    }
    return false;
  }

  /** Gives the endpoints their recorded owners; says once when the recording has none. */
  attach(endpoints: readonly Endpoint[], notes: string[]): void {
    if (!this.recorded) {
      if (!this.told) {
        notes.push(`${this.file} holds no processes (made by ss -D or by an older sockwarden): no endpoint shows its owner`);
        this.told = true;
      }
      return;
    }
    for (const ep of endpoints) {
      const pids = ep.inode === 0 ? undefined : this.pidsByInode.get(ep.inode);
      if (!pids) continue;
      ep.pids = pids;
      ep.process = null;
      for (const pid of pids) {
        const process = this.processes.get(pid);
        if (process) {
          ep.process = process;
          break;
        }
      }
    }
  }
}

function isId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

/** At least one PID and each once (a process holding a socket twice is still one holder). */
function isPidList(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.length <= MAX_PIDS && value.every(isId) && new Set(value).size === value.length;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

const textOrNull = (v: unknown) => v === null || typeof v === "string";
const countOrNull = (v: unknown) => v === null || isCount(v);
const optional = (check: (v: unknown) => boolean) => (v: unknown) => v === undefined || check(v);

function isContainer(v: unknown): boolean {
  if (v === null) return true;
  if (typeof v !== "object" || Array.isArray(v)) return false;
  const c = v as Record<string, unknown>;
  return RUNTIMES.includes(c.runtime as ContainerInfo["runtime"]) && textOrNull(c.id) && textOrNull(c.pod);
}

/** Each ProcessInfo field and what it may hold. */
const FIELDS: Readonly<Record<keyof ProcessInfo, (v: unknown) => boolean>> = {
  pid: isId,
  name: (v) => typeof v === "string",
  path: textOrNull,
  cmdline: textOrNull,
  uid: countOrNull,
  user: textOrNull,
  startTime: textOrNull,
  startId: optional(textOrNull),
  ppid: countOrNull,
  unit: optional(textOrNull),
  container: optional(isContainer),
};

/** The process a line recorded, only its known fields kept; or the name of the first bad field. */
function processInfo(value: unknown): ProcessInfo | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "record";
  const given = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [field, valid] of Object.entries(FIELDS)) {
    const v = given[field];
    if (!valid(v)) return field;
    if (v !== undefined) out[field] = field === "container" && v !== null ? containerOf(v as Record<string, unknown>) : v;
  }
  return out as unknown as ProcessInfo;
}

function containerOf(c: Record<string, unknown>): ContainerInfo {
  return { runtime: c.runtime as ContainerInfo["runtime"], id: c.id as string | null, pod: c.pod as string | null };
}
