/**
 * Where `sock:inet_sock_set_state` lays out its fields, read from the kernel's own description
 * (tracefs `events/sock/inet_sock_set_state/format`) rather than assumed: kernels before 5.6 had
 * `protocol` as one byte and every address field one byte earlier than today.
 *
 * Parsing is pure (unit-tested on recorded format texts). Finding tracefs reads
 * /proc/self/mountinfo; when no tracefs is mounted it is mounted on /sys/kernel/tracing for as
 * long as the two files are read, then unmounted again, so the machine is left as it was found.
 */
import fs from "node:fs";
import path from "node:path";

/** One `field:` line of a format file. */
export interface TracepointField {
  /** Declared C type without the name, e.g. `const void *`, `__u8` (array brackets removed). */
  type: string;
  name: string;
  offset: number;
  size: number;
  signed: boolean;
  /** Element count for `name[N]` fields, null for scalars. */
  arrayLength: number | null;
}

export interface TracepointFormat {
  name: string;
  id: number;
  fields: ReadonlyMap<string, TracepointField>;
}

export class TracepointFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TracepointFormatError";
  }
}

const FIELD_LINE = /^\s*field:(.+?);\s*offset:(\d+);\s*size:(\d+);\s*(?:signed:(\d+);)?/;

/** Parses the text of a tracepoint `format` file. */
export function parseTracepointFormat(text: string): TracepointFormat {
  const name = /^name:\s*(\S+)\s*$/m.exec(text)?.[1];
  const idText = /^ID:\s*(\d+)\s*$/m.exec(text)?.[1];
  if (name === undefined || idText === undefined) throw new TracepointFormatError("format text has no name: or ID: line");
  const fields = new Map<string, TracepointField>();
  for (const line of text.split("\n")) {
    const m = FIELD_LINE.exec(line);
    if (!m) continue;
    const declaration = m[1]!.trim();
    // The name is the last identifier, optionally followed by [N]; the rest is the type.
    const d = /^(.*?)([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[(\d*)\])?$/.exec(declaration);
    if (!d) throw new TracepointFormatError(`cannot read field declaration "${declaration}"`);
    const field: TracepointField = {
      type: d[1]!.trim(),
      name: d[2]!,
      offset: Number(m[2]),
      size: Number(m[3]),
      signed: m[4] === "1",
      arrayLength: d[3] === undefined ? null : d[3] === "" ? 0 : Number(d[3]),
    };
    fields.set(field.name, field);
  }
  return { name, id: Number(idText), fields };
}

/** A field the program reads: where it is and how wide. */
export interface FieldPlace {
  offset: number;
  size: number;
}

/** The fields of `inet_sock_set_state` the sensor's program reads. */
export interface SetStateLayout {
  skaddr: FieldPlace;
  oldstate: FieldPlace;
  newstate: FieldPlace;
  sport: FieldPlace;
  dport: FieldPlace;
  family: FieldPlace;
  protocol: FieldPlace;
  saddr: FieldPlace;
  daddr: FieldPlace;
  saddrV6: FieldPlace;
  daddrV6: FieldPlace;
}

/**
 * The sizes each field may have. `protocol` was a __u8 before 5.6 and a __u16 since; a pointer
 * is 8 bytes on the 64-bit machines the sensor supports.
 */
const EXPECTED_SIZES: Readonly<Record<keyof SetStateLayout, { field: string; sizes: readonly number[] }>> = {
  skaddr: { field: "skaddr", sizes: [8] },
  oldstate: { field: "oldstate", sizes: [4] },
  newstate: { field: "newstate", sizes: [4] },
  sport: { field: "sport", sizes: [2] },
  dport: { field: "dport", sizes: [2] },
  family: { field: "family", sizes: [2] },
  protocol: { field: "protocol", sizes: [1, 2] },
  saddr: { field: "saddr", sizes: [4] },
  daddr: { field: "daddr", sizes: [4] },
  saddrV6: { field: "saddr_v6", sizes: [16] },
  daddrV6: { field: "daddr_v6", sizes: [16] },
};

/** Context loads below this offset are refused by the verifier (the common header). */
export const FIRST_READABLE_OFFSET = 8;
/** Tracepoint records larger than this cannot be read by a program (PERF_MAX_TRACE_SIZE). */
export const MAX_TRACE_SIZE = 2048;

/** Checks a parsed format against what the program can read and returns the field places. */
export function setStateLayout(format: TracepointFormat): SetStateLayout {
  if (format.name !== "inet_sock_set_state") {
    throw new TracepointFormatError(`format is for "${format.name}", not inet_sock_set_state`);
  }
  const layout = {} as Record<keyof SetStateLayout, FieldPlace>;
  for (const [key, expected] of Object.entries(EXPECTED_SIZES) as [keyof SetStateLayout, (typeof EXPECTED_SIZES)[keyof SetStateLayout]][]) {
    const field = format.fields.get(expected.field);
    if (!field) throw new TracepointFormatError(`inet_sock_set_state has no field "${expected.field}"`);
    if (!expected.sizes.includes(field.size)) {
      throw new TracepointFormatError(
        `inet_sock_set_state field "${expected.field}" is ${field.size} bytes, expected ${expected.sizes.join(" or ")}`,
      );
    }
    if (field.offset < FIRST_READABLE_OFFSET || field.offset + field.size > MAX_TRACE_SIZE) {
      throw new TracepointFormatError(`inet_sock_set_state field "${expected.field}" at offset ${field.offset} cannot be read by a program`);
    }
    layout[key] = { offset: field.offset, size: field.size };
  }
  return layout;
}

// ---- finding tracefs ----

export interface MountEntry {
  mountPoint: string;
  fsType: string;
}

/** Undoes mountinfo's octal escapes (space, tab, newline, backslash). */
function unescapeMountField(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_all, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Mount points and file system types from the text of /proc/self/mountinfo. */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const parts = line.split(" ");
    const separator = parts.indexOf("-", 6);
    if (parts.length < 10 || separator < 0 || parts[4] === undefined || parts[separator + 1] === undefined) continue;
    entries.push({ mountPoint: unescapeMountField(parts[4]), fsType: parts[separator + 1]! });
  }
  return entries;
}

/**
 * The directories under which tracefs may already be visible, best first: every tracefs mount,
 * then `tracing` under every debugfs mount (the kernel mounts tracefs there on first access).
 */
export function tracefsCandidates(mountInfoText: string): string[] {
  const mounts = parseMountInfo(mountInfoText);
  return [
    ...mounts.filter((m) => m.fsType === "tracefs").map((m) => m.mountPoint),
    ...mounts.filter((m) => m.fsType === "debugfs").map((m) => path.join(m.mountPoint, "tracing")),
  ];
}

export const DEFAULT_TRACEFS_MOUNT_POINT = "/sys/kernel/tracing";
const EVENT_DIR = "events/sock/inet_sock_set_state";

/** What reading the tracepoint found, and what it had to do to read it. */
export interface SetStateTracepoint {
  id: number;
  layout: SetStateLayout;
  /** The format text as read (kept for reports and recordings). */
  formatText: string;
  /** Where it was read. */
  tracefs: string;
  /** Set when tracefs had to be mounted to read it: what was done, for the user's note. */
  mountNote: string | null;
}

/** The few file-system and mount operations the lookup needs; injectable for tests. */
export interface TracefsHost {
  readFile(file: string): string;
  exists(file: string): boolean;
  /** Mounts a tracefs on `target`; returns 0 or an errno. */
  mountTracefs(target: string): number;
  /** Unmounts `target`; returns 0 or an errno. */
  unmount(target: string): number;
  errnoName(errno: number): string;
}

export class TracefsUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TracefsUnavailableError";
  }
}

export class TracepointMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TracepointMissingError";
  }
}

function readFrom(host: TracefsHost, root: string): { id: number; layout: SetStateLayout; formatText: string } {
  const dir = path.join(root, EVENT_DIR);
  const formatText = host.readFile(path.join(dir, "format"));
  const format = parseTracepointFormat(formatText);
  const idText = host.readFile(path.join(dir, "id")).trim();
  const id = Number(idText);
  if (!/^\d+$/.test(idText) || id !== format.id) {
    throw new TracepointFormatError(`tracepoint id "${idText}" does not match its format's ID ${format.id}`);
  }
  return { id, layout: setStateLayout(format), formatText };
}

/**
 * Reads the id and layout of `sock:inet_sock_set_state`, mounting tracefs on
 * /sys/kernel/tracing only when no tracefs is reachable, and unmounting it afterwards.
 */
export function readSetStateTracepoint(host: TracefsHost): SetStateTracepoint {
  let mountInfo = "";
  try {
    mountInfo = host.readFile("/proc/self/mountinfo");
  } catch {
    // Without /proc the usual places are still tried below.
  }
  const candidates = [...new Set([...tracefsCandidates(mountInfo), DEFAULT_TRACEFS_MOUNT_POINT, "/sys/kernel/debug/tracing"])];
  for (const root of candidates) {
    if (!host.exists(path.join(root, "events"))) continue;
    if (!host.exists(path.join(root, EVENT_DIR, "format"))) {
      throw new TracepointMissingError(
        `this kernel has no sock:inet_sock_set_state tracepoint (${path.join(root, EVENT_DIR)} is absent; it needs Linux 4.16 or later)`,
      );
    }
    return { ...readFrom(host, root), tracefs: root, mountNote: null };
  }

  const target = DEFAULT_TRACEFS_MOUNT_POINT;
  if (!host.exists(target)) {
    throw new TracefsUnavailableError(`tracefs is not mounted and ${target} does not exist to mount it on`);
  }
  const errno = host.mountTracefs(target);
  if (errno !== 0) {
    const why = host.errnoName(errno) === "EPERM" ? " (mounting needs CAP_SYS_ADMIN)" : "";
    throw new TracefsUnavailableError(`tracefs is not mounted and mounting it on ${target} failed: ${host.errnoName(errno)}${why}`);
  }
  let found: ReturnType<typeof readFrom>;
  try {
    if (!host.exists(path.join(target, EVENT_DIR, "format"))) {
      throw new TracepointMissingError(`this kernel has no sock:inet_sock_set_state tracepoint (it needs Linux 4.16 or later)`);
    }
    found = readFrom(host, target);
  } catch (error) {
    host.unmount(target);
    throw error;
  }
  const undone = host.unmount(target);
  const mountNote =
    `mounted tracefs on ${target} to read the tracepoint's layout` +
    (undone === 0 ? ", then unmounted it" : `; unmounting it failed (${host.errnoName(undone)}), so it stays mounted`);
  return { ...found, tracefs: target, mountNote };
}

/** The real machine's files; mounting is passed in by the loader (it owns the libc bindings). */
export function nodeTracefsHost(mount: (target: string) => number, unmount: (target: string) => number, errnoName: (errno: number) => string): TracefsHost {
  return {
    readFile: (file) => fs.readFileSync(file, "utf8"),
    // stat, not access(2): access ignores the capabilities of a non-root user (CAP_DAC_READ_SEARCH
    // is what lets a service read tracefs, whose top directory is root's alone).
    exists: (file) => fs.statSync(file, { throwIfNoEntry: false }) !== undefined,
    mountTracefs: mount,
    unmount,
    errnoName,
  };
}
