/**
 * Everything /proc says about one process, for `sockwarden proc` and the live view's properties
 * panel: the ProcessInfo fields (through ProcessReader) plus /proc/PID/status, /proc/PID/cgroup,
 * the fd directory and the network namespace link.
 *
 * The parsers are pure functions over the files' text so that they can be tested with recorded
 * contents; readProcessDetails only does the reading. A process that exits while it is being
 * read gives null, like one that never existed.
 */
import fs from "node:fs";
import type { ProcessDetails } from "../../model/process.ts";
import { ProcessReader } from "./process-map.ts";
import { UserTable } from "./users.ts";

export interface ProcessDetailsOptions {
  users?: UserTable;
  /** Clock ticks per second (sysconf(_SC_CLK_TCK)); 100 on every mainstream Linux. */
  clockTicks?: number;
}

/** Details of process `pid`, or null when it does not exist (or exited while being read). */
export function readProcessDetails(
  pid: number,
  procRoot = "/proc",
  options: ProcessDetailsOptions = {},
): ProcessDetails | null {
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  const users = options.users ?? new UserTable();
  const reader = new ProcessReader({ procRoot, users, clockTicks: options.clockTicks ?? 100 });
  const info = reader.read(pid);
  if (info === null) return null;
  const dir = `${procRoot}/${pid}`;
  const statusText = readText(`${dir}/status`);
  // stat was there a moment ago: a missing status means the process has just exited.
  if (statusText === null) return null;
  const status = parseStatus(statusText);
  const cgroupText = readText(`${dir}/cgroup`);
  const cgroup = cgroupText === null ? null : selectCgroupPath(cgroupText);
  const unit = cgroup === null ? null : unitFromCgroup(cgroup);
  const ppid = info.ppid ?? status.ppid;
  return {
    ...info,
    // A kernel thread's stat may lack what status has; prefer whichever is known.
    uid: info.uid ?? status.uid,
    user: info.user ?? users.name(status.uid),
    ppid,
    ppidName: ppid !== null && ppid > 0 ? commOf(procRoot, ppid) : null,
    cgroup,
    unit: unit?.unit ?? null,
    unitUid: unit?.uid ?? null,
    state: status.state,
    threads: status.threads,
    rssKiB: status.rssKiB,
    fdCount: countEntries(`${dir}/fd`),
    netns: readNamespaceInode(`${dir}/ns/net`),
  };
}

/** The fields of /proc/PID/status that ProcessDetails uses; null when a line is missing. */
export interface StatusFields {
  name: string | null;
  state: string | null;
  ppid: number | null;
  /** Real uid (the first of the four on the Uid line). */
  uid: number | null;
  threads: number | null;
  rssKiB: number | null;
}

/**
 * Parses /proc/PID/status (`Key:\tvalue` lines, see proc(5)). Kernel threads have no Vm* lines,
 * so rssKiB is null for them.
 */
export function parseStatus(text: string): StatusFields {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    values.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const integer = (text: string | undefined): number | null => {
    const m = text === undefined ? null : /^(\d+)/.exec(text);
    return m ? Number(m[1]) : null;
  };
  return {
    name: values.get("Name") ?? null,
    state: values.get("State") || null,
    ppid: integer(values.get("PPid")),
    uid: integer(values.get("Uid")),
    threads: integer(values.get("Threads")),
    // The kernel always reports VmRSS in kB (1024 bytes).
    rssKiB: integer(values.get("VmRSS")),
  };
}

/** One line of /proc/PID/cgroup: `hierarchy-id:controllers:path`. */
export interface CgroupLine {
  hierarchy: number;
  /** Comma-separated controllers; empty for the cgroup v2 (unified) line. */
  controllers: string;
  path: string;
}

/** Parses /proc/PID/cgroup; malformed lines are skipped. The path itself may contain colons. */
export function parseCgroupFile(text: string): CgroupLine[] {
  const lines: CgroupLine[] = [];
  for (const line of text.split("\n")) {
    const first = line.indexOf(":");
    const second = first < 0 ? -1 : line.indexOf(":", first + 1);
    if (second < 0) continue;
    const hierarchy = Number(line.slice(0, first));
    if (!Number.isInteger(hierarchy) || first === 0) continue;
    lines.push({ hierarchy, controllers: line.slice(first + 1, second), path: line.slice(second + 1) });
  }
  return lines;
}

/**
 * The cgroup path that best says where a process lives:
 * - the cgroup v2 line (`0::/system.slice/nginx.service`) on unified and hybrid systems;
 * - on legacy (v1) systems the kernel still prints `0::/` although nothing uses v2, so a root
 *   v2 path gives way to v1's `name=systemd` hierarchy, which systemd keeps in step with units;
 * - failing both (no systemd, e.g. a bare container host), the first v1 hierarchy whose path is
 *   not the root, else the first line.
 * Null for an empty file.
 */
export function selectCgroupPath(text: string): string | null {
  const lines = parseCgroupFile(text);
  if (lines.length === 0) return null;
  const unified = lines.find((l) => l.hierarchy === 0 && l.controllers === "");
  if (unified && unified.path !== "/") return unified.path;
  const systemd = lines.find((l) => l.controllers.split(",").includes("name=systemd"));
  if (systemd && systemd.path !== "/") return systemd.path;
  const placed = lines.find((l) => l !== unified && l.path !== "/");
  if (placed) return placed.path;
  return (unified ?? systemd ?? lines[0]!).path;
}

// Unit types whose processes can sit in a cgroup of their own (systemd.unit(5)); slices are
// only containers and are skipped.
const UNIT_NAME = /^[A-Za-z0-9:_.\\-]+(?:@[A-Za-z0-9:_.\\-]*)?\.(?:service|scope|socket|mount|swap)$/;
const USER_MANAGER = /^user@(\d+)\.service$/;

/** A systemd unit named by a cgroup path. `uid` is set for units of a user's service manager. */
export interface CgroupUnit {
  unit: string;
  uid: number | null;
}

/**
 * The systemd unit a cgroup path belongs to, read as systemd itself does (cg_path_get_unit and
 * cg_path_get_user_unit in systemd's cgroup-util.c): leading `.slice` components are skipped and
 * the next component is the unit, with any deeper cgroups (delegated subtrees) belonging to it.
 *
 *   /system.slice/nginx.service                                   nginx.service
 *   /user.slice/user-1000.slice/session-3.scope                   session-3.scope
 *   /user.slice/user-1000.slice/user@1000.service/app.slice/x.service   x.service (uid 1000)
 *   /system.slice/docker-<id>.scope                               docker-<id>.scope
 *   /docker/<id>, /kubepods/..., /                                null (not systemd units)
 */
export function unitFromCgroup(path: string): CgroupUnit | null {
  const parts = path
    .split("/")
    .filter((p) => p !== "")
    .map(unescapeCgroupName);
  let i = skipSlices(parts, 0);
  const unit = parts[i];
  if (unit === undefined || !UNIT_NAME.test(unit)) return null;
  const manager = USER_MANAGER.exec(unit);
  if (manager) {
    i = skipSlices(parts, i + 1);
    const userUnit = parts[i];
    // The user manager itself runs in init.scope below its own service: name the service.
    if (userUnit !== undefined && userUnit !== "init.scope" && UNIT_NAME.test(userUnit)) {
      return { unit: userUnit, uid: Number(manager[1]) };
    }
  }
  return { unit, uid: null };
}

function skipSlices(parts: readonly string[], from: number): number {
  let i = from;
  while (i < parts.length && parts[i]!.endsWith(".slice")) i++;
  return i;
}

/**
 * systemd prefixes a cgroup name with `_` when it would clash with the kernel's own file names or
 * starts with `_` or `.` (cg_escape); the unit name is the name without it.
 */
export function unescapeCgroupName(name: string): string {
  return name.startsWith("_") ? name.slice(1) : name;
}

/** `net:[4026531840]` -> 4026531840; null for anything else. */
export function parseNamespaceLink(link: string): number | null {
  const m = /^[a-z_]+:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : null;
}

function readNamespaceInode(file: string): number | null {
  try {
    return parseNamespaceLink(fs.readlinkSync(file));
  } catch {
    return null;
  }
}

function commOf(procRoot: string, pid: number): string | null {
  const comm = readText(`${procRoot}/${pid}/comm`);
  return comm === null ? null : comm.replace(/\n$/, "");
}

function countEntries(dir: string): number | null {
  try {
    return fs.readdirSync(dir).length;
  } catch {
    return null;
  }
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
}
