/**
 * bpf(2), perf_event_open(2) and the few libc calls around them (mmap, ioctl, mount), bound
 * through koffi, with the kernel's attribute structures laid out by hand (include/uapi/linux/bpf.h,
 * include/uapi/linux/perf_event.h), little-endian as on x64 and arm64. Raw calls only: each returns a file descriptor or result, or
 * throws SystemCallError with the errno; deciding what a failure means is the sensor's job.
 *
 * Every call here is synchronous. None may become a koffi async call without checking that no
 * other one is in flight: two at once crash Bun (see the design notes).
 */
import { koffi } from "../../native/koffi-addon.ts";
import { libc } from "../libc.ts";
import { EAGAIN, ENOENT, syscallError } from "../errno.ts";
import { UnsupportedError } from "../../../errors.ts";

// bpf(2) commands.
const BPF_MAP_CREATE = 0;
const BPF_MAP_LOOKUP_ELEM = 1;
const BPF_MAP_UPDATE_ELEM = 2;
const BPF_PROG_LOAD = 5;
const BPF_OBJ_GET_INFO_BY_FD = 15;
/**
 * Loads tried while the verifier keeps giving up for a pending signal, within a time bound. Five
 * were not enough under a 1 kHz profiler with the full log on (one start in six lost the
 * program's socket reads); a load of the sensor's program takes well under a millisecond.
 */
const PROG_LOAD_ATTEMPTS = 200;
const PROG_LOAD_RETRY_MS = 2000;

export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_ARRAY = 2;
export const BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4;
export const BPF_MAP_TYPE_RINGBUF = 27;
/** Hash map entries allocated on use rather than all at creation. */
export const BPF_F_NO_PREALLOC = 1;
export const BPF_PROG_TYPE_TRACEPOINT = 5;

/** Verifier log levels: 1 the full trace, 4 statistics only (5.2+). */
export const BPF_LOG_LEVEL1 = 1;
export const BPF_LOG_STATS = 4;

const BPF_OBJ_NAME_LEN = 16;

// perf_event_open(2).
export const PERF_TYPE_SOFTWARE = 1;
export const PERF_TYPE_TRACEPOINT = 2;
export const PERF_COUNT_SW_BPF_OUTPUT = 10;
export const PERF_SAMPLE_RAW = 1 << 10;
const PERF_FLAG_FD_CLOEXEC = 8;
/** Size of perf_event_attr up to config2 (PERF_ATTR_SIZE_VER1), enough for every field set here. */
const PERF_ATTR_SIZE = 72;
const PERF_ATTR_FLAG_DISABLED = 1n << 0n;
export const PERF_EVENT_IOC_ENABLE = 0x2400;
export const PERF_EVENT_IOC_DISABLE = 0x2401;
/** _IOW('$', 8, __u32) */
export const PERF_EVENT_IOC_SET_BPF = 0x40042408;

// mmap(2).
export const PROT_READ = 1;
export const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

const SYSCALL_NUMBERS: Readonly<Record<string, { bpf: number; perfEventOpen: number }>> = {
  x64: { bpf: 321, perfEventOpen: 298 },
  arm64: { bpf: 280, perfEventOpen: 241 },
};

/** An mmap'd region: its koffi pointer (for munmap) and a zero-copy view of it. */
export interface Mapping {
  pointer: unknown;
  length: number;
  view: ArrayBuffer;
}

function numbers(): { bpf: number; perfEventOpen: number } {
  const n = SYSCALL_NUMBERS[process.arch];
  if (!n) throw new UnsupportedError(`the eBPF sensor supports x64 and arm64 Linux, not ${process.arch}`);
  // The attribute structures are written little-endian, as both supported machines run.
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new UnsupportedError("the eBPF sensor needs a little-endian machine");
  return n;
}

function errno(): number {
  return libc().errno();
}

function addressOf(buffer: Buffer): bigint {
  return koffi().address(buffer);
}

/** bpf(cmd, attr, size); returns the result and 0, or -1 and the errno. */
function bpfTry(cmd: number, attr: Buffer): { result: number; errno: number } {
  const result = Number(libc().syscall(numbers().bpf, "int", cmd, "void *", attr, "uint", attr.length));
  return result < 0 ? { result, errno: errno() } : { result, errno: 0 };
}

/** bpf(cmd, attr, size); returns the result or throws with the errno. */
function bpf(cmd: number, attr: Buffer, what: string): number {
  const { result, errno: e } = bpfTry(cmd, attr);
  if (e !== 0) throw syscallError(what, e);
  return result;
}

function writeName(attr: Buffer, offset: number, name: string): void {
  // Object names are at most 15 characters of [A-Za-z0-9_.]; anything else is refused (EINVAL).
  const clean = name.replace(/[^A-Za-z0-9_.]/g, "_").slice(0, BPF_OBJ_NAME_LEN - 1);
  attr.write(clean, offset, "ascii");
}

export interface MapSpec {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  name: string;
}

/** BPF_MAP_CREATE; returns the map's file descriptor. */
export function mapCreate(spec: MapSpec): number {
  const attr = Buffer.alloc(48);
  attr.writeUInt32LE(spec.type, 0);
  attr.writeUInt32LE(spec.keySize, 4);
  attr.writeUInt32LE(spec.valueSize, 8);
  attr.writeUInt32LE(spec.maxEntries, 12);
  attr.writeUInt32LE(spec.flags ?? 0, 16);
  writeName(attr, 28, spec.name);
  return bpf(BPF_MAP_CREATE, attr, `bpf(BPF_MAP_CREATE ${spec.name})`);
}

function elementAttr(fd: number, key: Buffer, value: Buffer | null, flags: number): Buffer {
  const attr = Buffer.alloc(32);
  attr.writeUInt32LE(fd, 0);
  attr.writeBigUInt64LE(addressOf(key), 8);
  if (value) attr.writeBigUInt64LE(addressOf(value), 16);
  attr.writeBigUInt64LE(BigInt(flags), 24);
  return attr;
}

/** BPF_MAP_LOOKUP_ELEM into `value`; false when the key is absent. */
export function mapLookup(fd: number, key: Buffer, value: Buffer): boolean {
  const attr = elementAttr(fd, key, value, 0);
  const { errno: e } = bpfTry(BPF_MAP_LOOKUP_ELEM, attr);
  if (e === 0) return true;
  if (e === ENOENT) return false;
  throw syscallError("bpf(BPF_MAP_LOOKUP_ELEM)", e);
}

/** BPF_MAP_UPDATE_ELEM with BPF_ANY. */
export function mapUpdate(fd: number, key: Buffer, value: Buffer): void {
  bpf(BPF_MAP_UPDATE_ELEM, elementAttr(fd, key, value, 0), "bpf(BPF_MAP_UPDATE_ELEM)");
}

/** struct bpf_prog_info up to recursion_misses (5.12+), which sits at byte 208. */
const PROG_INFO_MISSES_OFFSET = 208;
const PROG_INFO_MISSES_END = PROG_INFO_MISSES_OFFSET + 8;

/**
 * How often the kernel skipped the program because a BPF program was already running on that
 * CPU (bpf_prog_info.recursion_misses): each is a change nobody recorded. Null where the kernel
 * does not say (before 5.12 it fills less of the structure).
 */
export function progRecursionMisses(fd: number, info: Buffer = Buffer.alloc(PROG_INFO_MISSES_END)): number | null {
  info.fill(0);
  const attr = Buffer.alloc(16);
  attr.writeUInt32LE(fd, 0);
  attr.writeUInt32LE(info.length, 4);
  attr.writeBigUInt64LE(addressOf(info), 8);
  bpf(BPF_OBJ_GET_INFO_BY_FD, attr, "bpf(BPF_OBJ_GET_INFO_BY_FD)");
  // The kernel writes back how much of the structure it filled.
  if (attr.readUInt32LE(4) < PROG_INFO_MISSES_END) return null;
  return Number(info.readBigUInt64LE(PROG_INFO_MISSES_OFFSET));
}

export interface ProgramLoad {
  type: number;
  instructions: Buffer;
  license: string;
  name: string;
  logLevel: number;
  /** Bytes for the verifier's log (0 for none). */
  logSize: number;
}

export interface ProgramLoadResult {
  /** The program's file descriptor, or -1 when refused. */
  fd: number;
  errno: number;
  /** The verifier's log, as far as it was written. */
  log: string;
}

/** BPF_PROG_LOAD; a refusal is returned (with the log), not thrown, so the caller can retry with a fuller log. */
export function progLoad(load: ProgramLoad): ProgramLoadResult {
  const license = Buffer.from(`${load.license}\0`, "ascii");
  const log = load.logSize > 0 ? Buffer.alloc(load.logSize) : null;
  const attr = Buffer.alloc(72);
  attr.writeUInt32LE(load.type, 0);
  attr.writeUInt32LE(load.instructions.length / 8, 4);
  attr.writeBigUInt64LE(addressOf(load.instructions), 8);
  attr.writeBigUInt64LE(addressOf(license), 16);
  if (log) {
    attr.writeUInt32LE(load.logLevel, 24);
    attr.writeUInt32LE(log.length, 28);
    attr.writeBigUInt64LE(addressOf(log), 32);
  }
  writeName(attr, 48, load.name);
  // The verifier gives up with EAGAIN whenever a signal is pending on this thread (a profiler's
  // timer, a rule runner's SIGCHLD): the program was not refused, so it is loaded again, a bounded
  // number of times. Holding signals back while it runs was tried and deadlocked under the
  // runtime's sampling profiler, which waits for the thread to take its signal.
  let { result, errno: e } = bpfTry(BPF_PROG_LOAD, attr);
  const until = performance.now() + PROG_LOAD_RETRY_MS;
  for (let attempt = 1; e === EAGAIN && attempt < PROG_LOAD_ATTEMPTS && performance.now() < until; attempt++) ({ result, errno: e } = bpfTry(BPF_PROG_LOAD, attr));
  const text = log ? log.toString("utf8", 0, Math.max(0, log.indexOf(0) < 0 ? log.length : log.indexOf(0))) : "";
  return { fd: e === 0 ? result : -1, errno: e, log: text };
}

export interface PerfEventSpec {
  type: number;
  config: number;
  sampleType: number;
  samplePeriod: number;
  /** Wake a poller after this many records (0: the kernel's default, half the buffer). */
  wakeupEvents: number;
  disabled: boolean;
  cpu: number;
}

/** perf_event_open(attr, pid -1, cpu, group -1, CLOEXEC): an event for every task on one CPU. */
export function perfEventOpen(spec: PerfEventSpec): number {
  const attr = Buffer.alloc(PERF_ATTR_SIZE);
  attr.writeUInt32LE(spec.type, 0);
  attr.writeUInt32LE(PERF_ATTR_SIZE, 4);
  attr.writeBigUInt64LE(BigInt(spec.config), 8);
  attr.writeBigUInt64LE(BigInt(spec.samplePeriod), 16);
  attr.writeBigUInt64LE(BigInt(spec.sampleType), 24);
  attr.writeBigUInt64LE(spec.disabled ? PERF_ATTR_FLAG_DISABLED : 0n, 40);
  attr.writeUInt32LE(spec.wakeupEvents, 48);
  const fd = Number(
    libc().syscall(numbers().perfEventOpen, "void *", attr, "int", -1, "int", spec.cpu, "int", -1, "ulong", PERF_FLAG_FD_CLOEXEC),
  );
  if (fd < 0) throw syscallError(`perf_event_open(cpu ${spec.cpu})`, errno());
  return fd;
}

export function ioctl(fd: number, request: number, arg: number, what: string): void {
  if (libc().ioctl(fd, request, "int", arg) < 0) throw syscallError(what, errno());
}

export function mmapShared(fd: number, length: number, prot: number, offset: number, what: string): Mapping {
  const pointer = libc().mmap(null, length, prot, MAP_SHARED, fd, offset);
  if (pointer === null || koffi().address(pointer) === MAP_FAILED) throw syscallError(what, errno());
  return { pointer, length, view: koffi().view(pointer, length) };
}

export function munmap(mapping: Mapping): void {
  libc().munmap(mapping.pointer, mapping.length);
}

export function closeFd(fd: number): void {
  if (fd >= 0) libc().close(fd);
}

/** mount("nodev", target, "tracefs"); returns 0 or the errno. */
export function mountTracefs(target: string): number {
  return libc().mount("nodev", target, "tracefs", 0, null) === 0 ? 0 : errno();
}

/** umount2(target, 0); returns 0 or the errno (EBUSY while something has a file open there). */
export function unmount(target: string): number {
  return libc().umount2(target, 0) === 0 ? 0 : errno();
}

