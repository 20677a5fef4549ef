/**
 * The eBPF sensor of TCP state changes: loads the set-state program on
 * `sock:inet_sock_set_state`, and hands out its records, decoded, on `drain()`.
 *
 * Start-up either completes or throws SensorUnavailableError with one of a few reasons and a
 * sentence a user can act on (missing capabilities, no tracefs, no tracepoint, lockdown, the
 * verifier's refusal with its log), having closed whatever it had opened; the caller then falls
 * back to polling. Everything here is synchronous: waiting for records (a blocking poll on
 * `fds`) is the caller's business, and must never overlap another koffi async call.
 */
import fs from "node:fs";
import { SockwardenError, SystemCallError, UnsupportedError } from "../../../errors.ts";
import { hasCapability, userNamespaceNote } from "../capabilities.ts";
import { libc } from "../libc.ts";
import {
  BPF_F_NO_PREALLOC,
  BPF_LOG_LEVEL1,
  BPF_LOG_STATS,
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_RINGBUF,
  BPF_PROG_TYPE_TRACEPOINT,
  PERF_EVENT_IOC_DISABLE,
  PERF_EVENT_IOC_ENABLE,
  PERF_EVENT_IOC_SET_BPF,
  PERF_SAMPLE_RAW,
  PERF_TYPE_TRACEPOINT,
  closeFd,
  errnoName,
  ioctl,
  mapCreate,
  mapLookup,
  mountTracefs,
  perfEventOpen,
  progLoad,
  unmount,
} from "./bpf-syscalls.ts";
import {
  TracefsUnavailableError,
  TracepointFormatError,
  TracepointMissingError,
  nodeTracefsHost,
  readSetStateTracepoint,
  type SetStateTracepoint,
  type TracefsHost,
} from "./tracepoint-format.ts";
import {
  COUNTER,
  COUNTER_COUNT,
  LISTENER_KEY_SIZE,
  LISTENER_VALUE_SIZE,
  OWNER_KEY_SIZE,
  OWNER_VALUE_SIZE,
  HELPER,
  buildSetStateProgram,
  type BuiltProgram,
  type CounterReads,
  type NetnsReads,
  type SetStateMaps,
} from "./set-state-program.ts";
import { Btf } from "./btf.ts";
import { tcpCounterFields } from "./tcp-counter-fields.ts";
import { netnsFields } from "./netns-fields.ts";
import { decodeSetStateRecord, type SetStateRecord } from "./set-state-record.ts";
import { RingBufferReader } from "./ring-buffer-reader.ts";
import { PerfBufferSet, parseCpuList } from "./perf-buffer-reader.ts";

const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;
const EPERM = 1;
const EACCES = 13;
const EINVAL = 22;
const SC_PAGESIZE = 30;

/**
 * The ring's default size. Records are 136 bytes (144 with the ring's header): 8 MiB holds about
 * 58,000 changes, some 10,000 connections. 1 MiB lost records of resets here at load 11-13 on two
 * cores, while the reader waited for a CPU; a reset leaves no TIME_WAIT socket for the resync to
 * find. The memory is the kernel's, charged to this process's locked-memory limit (memcg on 5.11+).
 */
const DEFAULT_RING_BYTES = 8 << 20;

export type SensorOutputKind = "ringbuf" | "perf";

export interface SetStateSensorOptions {
  /** Where records go: the BPF ring buffer where the kernel has one (5.8+), else perf buffers. */
  output?: "auto" | SensorOutputKind;
  /** Ring buffer size in bytes (rounded up to a power of two of at least a page). Default 8 MiB. */
  ringBytes?: number;
  /** Data pages per CPU for perf buffers (a power of two). Default 64. */
  perfPagesPerCpu?: number;
  /** Sockets whose owner can be kept at once. Default 65536. */
  ownerEntries?: number;
  /** Listeners that can be filed at once. Default 8192. */
  listenerEntries?: number;
  /** Tracefs access; the real machine's unless a test passes its own. */
  tracefs?: TracefsHost;
  /** Read each socket's counters at every change where the kernel's BTF says where they are. Default true. */
  counters?: boolean;
  /** Where the kernel's BTF is read from; /sys/kernel/btf/vmlinux unless a test passes another. */
  btfPath?: string;
}

/** Why the sensor cannot run, by kind, for the caller's note and its fallback. */
export type SensorUnavailableReason =
  | "platform" // not Linux on x64/arm64
  | "privilege" // no CAP_BPF + CAP_PERFMON, nor CAP_SYS_ADMIN
  | "lockdown" // kernel lockdown refuses BPF tracing
  | "tracefs" // tracefs neither mounted nor mountable
  | "tracepoint" // no sock:inet_sock_set_state (before 4.16), or a layout this program cannot read
  | "kernel" // a feature the sensor needs is missing (e.g. the ring buffer when asked for)
  | "verifier"; // the kernel's verifier refused the program

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

export interface SensorCounters {
  /** Records dropped because the output had no room (ring full, or perf buffers' LOST). */
  lostRecords: number;
  /** Sockets whose owner could not be kept (owner map full): their records carry no process. */
  ownerMapFull: number;
  /** Listeners that could not be filed: their accepted sockets carry no process. */
  listenerMapFull: number;
  /** Records this side could not decode (skipped). */
  undecodable: number;
}

export interface ProgramFacts {
  /** Instructions (8-byte slots) loaded. */
  instructions: number;
  /** Instructions the verifier processed (its own count across paths), when the kernel tells. */
  verifierProcessed: number | null;
  /** The program's listing, instruction by instruction. */
  listing: string;
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
function refusal(step: string, error: unknown): SensorUnavailableError {
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

function checkPlatform(): void {
  if (process.platform !== "linux") throw new SensorUnavailableError("platform", "it runs on Linux only");
  if (process.arch !== "x64" && process.arch !== "arm64") {
    throw new SensorUnavailableError("platform", `it supports x64 and arm64, not ${process.arch}`);
  }
}

function checkPrivilege(): void {
  const has = (cap: number) => hasCapability(cap);
  // bpf(2) and perf_event_open(2) ask for these in the host's user namespace: a container's root has none.
  if (userNamespaceNote() === "" && (has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)))) return;
  throw new SensorUnavailableError("privilege", `this process lacks the capabilities: ${PRIVILEGE_NEEDED}${userNamespaceNote()}`);
}

function readTracepoint(host: TracefsHost): SetStateTracepoint {
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

function roundRingSize(bytes: number, pageSize: number): number {
  let size = pageSize;
  while (size < bytes) size *= 2;
  return size;
}

function possibleCpus(): number[] {
  try {
    const cpus = parseCpuList(fs.readFileSync("/sys/devices/system/cpu/possible", "utf8"));
    if (cpus.length > 0) return cpus;
  } catch {
    // Fall through to the count the runtime knows.
  }
  return Array.from({ length: Math.max(1, navigator.hardwareConcurrency ?? 1) }, (_, i) => i);
}

function verifierProcessed(log: string): number | null {
  const m = /processed (\d+) insns/.exec(log);
  return m ? Number(m[1]) : null;
}

/** The last lines of a verifier log: where it gave up and why. */
function logTail(log: string, lines = 25): string {
  const all = log.trimEnd().split("\n");
  return (all.length > lines ? ["…", ...all.slice(-lines)] : all).join("\n");
}

/**
 * Loads a tracepoint program; a refusal becomes SensorUnavailableError, with the verifier's log
 * when the verifier refused it. The first load asks only for statistics (the processed count);
 * a refusal is loaded again with the full log, which is what says why.
 */
export function loadTracepointProgram(instructions: Buffer): { fd: number; verifierProcessed: number | null } {
  const load = (logLevel: number, logSize: number) =>
    progLoad({ type: BPF_PROG_TYPE_TRACEPOINT, instructions, license: "GPL", name: "sw_set_state", logLevel, logSize });
  let loaded = load(BPF_LOG_STATS, 64 * 1024);
  if (loaded.fd < 0 && loaded.errno !== EPERM) loaded = load(BPF_LOG_LEVEL1, 16 * 1024 * 1024);
  if (loaded.fd >= 0) return { fd: loaded.fd, verifierProcessed: verifierProcessed(loaded.log) };
  const error = new SystemCallError("bpf(BPF_PROG_LOAD)", loaded.errno, errnoName(loaded.errno));
  // The verifier refuses with EACCES or EINVAL and a log; EPERM, or EACCES with nothing said, is privilege.
  if (loaded.errno === EPERM || (loaded.errno === EACCES && loaded.log.trim() === "")) throw refusal("loading the program", error);
  throw new SensorUnavailableError(
    "verifier",
    `the kernel refused the program (${errnoName(loaded.errno)}); the verifier said:\n${logTail(loaded.log) || "(nothing)"}`,
    loaded.log,
    { cause: error },
  );
}

const NO_COUNTERS = "the sensor's state changes carry no byte or packet counts (snapshots still do)";
const NO_NETNS = "the sensor's state changes carry no network namespace: sockets are placed by their processes, and sockets of two namespaces with the same addresses can be mistaken for each other";

/** The running kernel's BTF, or null with the reason told in `notes` for everything read through it. */
function kernelBtf(notes: string[], options: SetStateSensorOptions): Btf | null | undefined {
  try {
    return Btf.readKernel(options.btfPath);
  } catch (error) {
    const why = `the kernel's BTF cannot be read (${(error as Error).message})`;
    if (options.counters ?? true) notes.push(`${NO_COUNTERS}: ${why}`);
    notes.push(`${NO_NETNS}: ${why}`);
    return undefined;
  }
}

/** Where the running kernel keeps a socket's namespace inode, or null with the reason told in `notes`. */
function netnsPlaces(notes: string[], btf: Btf | null): Omit<NetnsReads, "helper"> | null {
  const fields = netnsFields(btf);
  if (!fields.ok) {
    notes.push(`${NO_NETNS}: ${fields.reason}`);
    return null;
  }
  return { netPointer: fields.netPointer, inum: fields.inum, inumSize: fields.inumSize };
}

/** Where the running kernel keeps a socket's counters, or null with the reason told in `notes`. */
function counterPlaces(notes: string[], btf: Btf | null): Omit<CounterReads, "helper"> | null {
  const fields = tcpCounterFields(btf);
  if (!fields.ok) {
    notes.push(`${NO_COUNTERS}: ${fields.reason}`);
    return null;
  }
  return { bytesSent: fields.bytesSent, bytesReceived: fields.bytesReceived, segsOut: fields.segsOut, segsIn: fields.segsIn };
}

/**
 * Builds and loads the program, reading counters and the namespace where it can: with
 * bpf_probe_read_kernel (5.5+), else bpf_probe_read, else (the verifier refused both) without
 * reads, which is said once. Any refusal of the program without reads is the sensor's end.
 */
function loadWithCounters(
  tracepoint: SetStateTracepoint,
  maps: SetStateMaps,
  options: SetStateSensorOptions,
  notes: string[],
): { built: BuiltProgram; loaded: { fd: number; verifierProcessed: number | null } } {
  const btf = kernelBtf(notes, options);
  const places = btf !== undefined && (options.counters ?? true) ? counterPlaces(notes, btf) : null;
  const netns = btf !== undefined ? netnsPlaces(notes, btf) : null;
  const helpers = places || netns ? [HELPER.probeReadKernel, HELPER.probeRead] : [];
  let refusal: SensorUnavailableError | null = null;
  for (const helper of helpers) {
    const built = buildSetStateProgram(tracepoint.layout, maps, {
      counters: places ? { ...places, helper } : null,
      netns: netns ? { ...netns, helper } : null,
    });
    try {
      return { built, loaded: loadTracepointProgram(built.bytes) };
    } catch (error) {
      if (!(error instanceof SensorUnavailableError) || error.reason !== "verifier") throw error;
      refusal ??= error;
    }
  }
  if (refusal) {
    // The verifier's reason is its last line before the statistics it always ends with.
    const last = (refusal.verifierLog ?? "").split("\n").filter((line) => line.trim() !== "" && !/^(processed \d+ insns|verification time)/.test(line)).at(-1) ?? "";
    if (places) notes.push(`${NO_COUNTERS}: the kernel refused reading them from the socket${last ? ` (${last})` : ""}`);
    if (netns) notes.push(`${NO_NETNS}: the kernel refused reading it from the socket${last ? ` (${last})` : ""}`);
  }
  const built = buildSetStateProgram(tracepoint.layout, maps);
  return { built, loaded: loadTracepointProgram(built.bytes) };
}

/** Everything the sensor opened, closed in reverse on stop or on a failed start. */
class Resources {
  private readonly undo: (() => void)[] = [];
  add(close: () => void): void {
    this.undo.push(close);
  }
  fd(fd: number): number {
    this.add(() => closeFd(fd));
    return fd;
  }
  closeAll(): void {
    for (const close of this.undo.splice(0).reverse()) {
      try {
        close();
      } catch {
        // Closing is best effort; the process's exit closes the rest.
      }
    }
  }
}

export class SetStateSensor {
  private undecodable = 0;
  private stopped = false;

  private constructor(
    private readonly resources: Resources,
    /** Where records arrive. */
    readonly output: SensorOutputKind,
    private readonly reader: RingBufferReader | PerfBufferSet,
    private readonly countersFd: number,
    /** What start-up did that a user may want told (a mount, the output chosen). */
    readonly notes: readonly string[],
    readonly program: ProgramFacts,
    /** The tracepoint's id and layout as read. */
    readonly tracepoint: SetStateTracepoint,
  ) {}

  /** Loads and attaches the program; throws SensorUnavailableError saying why it cannot. */
  static start(options: SetStateSensorOptions = {}): SetStateSensor {
    checkPlatform();
    checkPrivilege();
    const tracepoint = readTracepoint(options.tracefs ?? nodeTracefsHost(mountTracefs, unmount, errnoName));
    const notes: string[] = [];
    if (tracepoint.mountNote) notes.push(tracepoint.mountNote);

    const pageSize = libc().sysconf(SC_PAGESIZE);
    const resources = new Resources();
    try {
      const create = (what: string, spec: Parameters<typeof mapCreate>[0]) => {
        try {
          return resources.fd(mapCreate(spec));
        } catch (error) {
          throw refusal(`creating the ${what} map`, error);
        }
      };
      const owners = create("owner", {
        type: BPF_MAP_TYPE_HASH,
        keySize: OWNER_KEY_SIZE,
        valueSize: OWNER_VALUE_SIZE,
        maxEntries: options.ownerEntries ?? 65_536,
        flags: BPF_F_NO_PREALLOC,
        name: "sw_owners",
      });
      const listeners = create("listener", {
        type: BPF_MAP_TYPE_HASH,
        keySize: LISTENER_KEY_SIZE,
        valueSize: LISTENER_VALUE_SIZE,
        maxEntries: options.listenerEntries ?? 8192,
        flags: BPF_F_NO_PREALLOC,
        name: "sw_listeners",
      });
      const counters = create("counter", { type: BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: COUNTER_COUNT, name: "sw_counters" });

      // The output: a ring buffer unless the kernel has none (EINVAL for an unknown map type).
      const want = options.output ?? "auto";
      let reader: RingBufferReader | PerfBufferSet | null = null;
      let outputFd = -1;
      if (want !== "perf") {
        let ringBytes = roundRingSize(options.ringBytes ?? DEFAULT_RING_BYTES, pageSize);
        const createRing = () => mapCreate({ type: BPF_MAP_TYPE_RINGBUF, keySize: 0, valueSize: 0, maxEntries: ringBytes, name: "sw_set_state_rb" });
        try {
          let ringFd: number;
          try {
            ringFd = createRing();
          } catch (error) {
            // Before 5.11 map memory counts against RLIMIT_MEMLOCK, often 8 MiB or less in all:
            // the default size gives way to the 1 MiB that fits, with a note.
            if (options.ringBytes !== undefined || !(error instanceof SystemCallError) || error.errno !== EPERM) throw error;
            ringBytes = roundRingSize(1 << 20, pageSize);
            ringFd = createRing();
            notes.push("the sensor's ring is 1 MiB, not 8: the locked-memory limit (ulimit -l) has no room for more; bursts may lose changes");
          }
          outputFd = resources.fd(ringFd);
          const ring = new RingBufferReader(outputFd, ringBytes, pageSize);
          resources.add(() => ring.close());
          reader = ring;
        } catch (error) {
          const noRing = error instanceof SystemCallError && error.errno === EINVAL;
          if (!noRing || want === "ringbuf") throw refusal("creating the ring buffer", error);
          notes.push("this kernel has no BPF ring buffer (Linux 5.8+): records go through per-CPU perf buffers");
        }
      }
      if (reader === null) {
        try {
          const set = new PerfBufferSet(possibleCpus(), options.perfPagesPerCpu ?? 64, pageSize);
          resources.add(() => set.close());
          reader = set;
          outputFd = set.mapFd;
          if (set.offlineCpus.length > 0) notes.push(`CPUs offline at start are not watched: ${set.offlineCpus.join(",")}`);
        } catch (error) {
          throw refusal("opening the perf buffers", error);
        }
      }
      const output: SensorOutputKind = reader instanceof RingBufferReader ? "ringbuf" : "perf";

      const maps = { owners, listeners, counters, output: { kind: output, fd: outputFd } };
      const { built, loaded } = loadWithCounters(tracepoint, maps, options, notes);
      const progFd = resources.fd(loaded.fd);

      let attachFd: number;
      try {
        // One event on CPU 0 is enough: a program attached to a tracepoint runs wherever it fires.
        attachFd = resources.fd(
          perfEventOpen({ type: PERF_TYPE_TRACEPOINT, config: tracepoint.id, sampleType: PERF_SAMPLE_RAW, samplePeriod: 1, wakeupEvents: 1, disabled: true, cpu: 0 }),
        );
        ioctl(attachFd, PERF_EVENT_IOC_SET_BPF, progFd, "ioctl(PERF_EVENT_IOC_SET_BPF)");
        ioctl(attachFd, PERF_EVENT_IOC_ENABLE, 0, "ioctl(PERF_EVENT_IOC_ENABLE)");
        resources.add(() => ioctl(attachFd, PERF_EVENT_IOC_DISABLE, 0, "ioctl(PERF_EVENT_IOC_DISABLE)"));
      } catch (error) {
        throw refusal("attaching the program to sock:inet_sock_set_state", error);
      }

      return new SetStateSensor(
        resources,
        output,
        reader,
        counters,
        notes,
        { instructions: built.instructionCount, verifierProcessed: loaded.verifierProcessed, listing: built.assembler.listing() },
        tracepoint,
      );
    } catch (error) {
      resources.closeAll();
      throw error instanceof SensorUnavailableError ? error : refusal("starting", error);
    }
  }

  /** File descriptors that become readable when records arrive (for a blocking poll). */
  get fds(): number[] {
    return this.reader instanceof RingBufferReader ? [this.reader.fd] : this.reader.fds;
  }

  get running(): boolean {
    return !this.stopped;
  }

  /**
   * The records that have arrived, decoded, at most `max`, oldest first. Records from per-CPU
   * perf buffers are put in kernel-time order within the batch.
   */
  drain(max = Number.POSITIVE_INFINITY): SetStateRecord[] {
    if (this.stopped) return [];
    const records: SetStateRecord[] = [];
    this.reader.drain((bytes) => {
      try {
        records.push(decodeSetStateRecord(bytes));
      } catch {
        this.undecodable++;
      }
    }, max);
    if (this.output === "perf") records.sort((x, y) => (x.kernelTimeNs < y.kernelTimeNs ? -1 : x.kernelTimeNs > y.kernelTimeNs ? 1 : 0));
    return records;
  }

  /** The records as the program wrote them (copies), for recordings that are decoded later. */
  drainRaw(max = Number.POSITIVE_INFINITY): Uint8Array[] {
    if (this.stopped) return [];
    const records: Uint8Array[] = [];
    this.reader.drain((bytes) => records.push(bytes.slice()), max);
    return records;
  }

  counters(): SensorCounters {
    const result: SensorCounters = { lostRecords: 0, ownerMapFull: 0, listenerMapFull: 0, undecodable: this.undecodable };
    if (this.stopped) return result;
    const key = Buffer.alloc(4);
    const value = Buffer.alloc(8);
    const read = (index: number) => {
      key.writeUInt32LE(index);
      return mapLookup(this.countersFd, key, value) ? Number(value.readBigUInt64LE(0)) : 0;
    };
    result.lostRecords = read(COUNTER.lostRecords) + (this.reader instanceof PerfBufferSet ? this.reader.lost : 0);
    result.ownerMapFull = read(COUNTER.ownerMapFull);
    result.listenerMapFull = read(COUNTER.listenerMapFull);
    return result;
  }

  /** Detaches the program and closes everything; records not drained are lost. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.resources.closeAll();
  }

  [Symbol.dispose](): void {
    this.stop();
  }
}
