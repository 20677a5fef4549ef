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
import { SystemCallError } from "../../../errors.ts";
import { libc } from "../libc.ts";
import { EINVAL, EPERM, errnoName } from "../errno.ts";
import {
  BPF_F_NO_PREALLOC,
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_RINGBUF,
  PERF_EVENT_IOC_DISABLE,
  PERF_EVENT_IOC_ENABLE,
  PERF_EVENT_IOC_SET_BPF,
  PERF_SAMPLE_RAW,
  PERF_TYPE_TRACEPOINT,
  closeFd,
  ioctl,
  mapCreate,
  mapLookup,
  mountTracefs,
  perfEventOpen,
  progRecursionMisses,
  unmount,
} from "./bpf-syscalls.ts";
import { nodeTracefsHost, type SetStateTracepoint, type TracefsHost } from "./tracepoint-format.ts";
import { COUNTER, COUNTER_COUNT, LISTENER_KEY_SIZE, LISTENER_VALUE_SIZE, OWNER_KEY_SIZE, OWNER_VALUE_SIZE } from "./set-state-program.ts";
import { decodeSetStateRecord, type SetStateRecord } from "./set-state-record.ts";
import { RingBufferReader } from "./ring-buffer-reader.ts";
import { PerfBufferSet, parseCpuList } from "./perf-buffer-reader.ts";
import { SensorUnavailableError, checkPlatform, checkPrivilege, readTracepoint, refusal } from "./sensor-refusal.ts";
import { loadWithCounters, type ProgramReadOptions } from "./program-load.ts";
import { CpuOrder } from "./cpu-order.ts";
import { monotonicNs } from "../clocks.ts";

export { SensorUnavailableError, type SensorUnavailableReason } from "./sensor-refusal.ts";
export { loadTracepointProgram } from "./program-load.ts";

const SC_PAGESIZE = 30;

/**
 * The ring's default size. Records are 136 bytes (144 with the ring's header): 8 MiB holds about
 * 58,000 changes, some 10,000 connections. 1 MiB lost records of resets here at load 11-13 on two
 * cores, while the reader waited for a CPU; a reset leaves no TIME_WAIT socket for the resync to
 * find. The memory is the kernel's, charged to this process's locked-memory limit (memcg on 5.11+).
 */
const DEFAULT_RING_BYTES = 8 << 20;

export type SensorOutputKind = "ringbuf" | "perf";

export interface SetStateSensorOptions extends ProgramReadOptions {
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
  /**
   * Changes the kernel did not run the program for, because a BPF program was already running on
   * that CPU (a change in a softirq that interrupted the program, or another tool's program):
   * lost as surely as a full ring's, but the ring never knows. Counted from 5.12 (0 before).
   */
  missedChanges: number;
}

export interface ProgramFacts {
  /** Instructions (8-byte slots) loaded. */
  instructions: number;
  /** Instructions the verifier processed (its own count across paths), when the kernel tells. */
  verifierProcessed: number | null;
  /** The program's listing, instruction by instruction. */
  listing: string;
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
  private readonly programInfo = Buffer.alloc(216);
  private readonly order: CpuOrder | null;

  private constructor(
    private readonly resources: Resources,
    /** Where records arrive. */
    readonly output: SensorOutputKind,
    private readonly reader: RingBufferReader | PerfBufferSet,
    private readonly countersFd: number,
    private readonly programFd: number,
    /** What start-up did that a user may want told (a mount, the output chosen). */
    readonly notes: readonly string[],
    readonly program: ProgramFacts,
    /** The tracepoint's id and layout as read. */
    readonly tracepoint: SetStateTracepoint,
  ) {
    this.order = output === "perf" ? new CpuOrder() : null;
  }

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
      // Hash maps allocate their entries as sockets come, not all at creation.
      const hash = (what: string, name: string, keySize: number, valueSize: number, maxEntries: number) =>
        create(what, { type: BPF_MAP_TYPE_HASH, keySize, valueSize, maxEntries, flags: BPF_F_NO_PREALLOC, name });
      const owners = hash("owner", "sw_owners", OWNER_KEY_SIZE, OWNER_VALUE_SIZE, options.ownerEntries ?? 65_536);
      const listeners = hash("listener", "sw_listeners", LISTENER_KEY_SIZE, LISTENER_VALUE_SIZE, options.listenerEntries ?? 8192);
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
        progFd,
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
   * perf buffers come out in kernel-time order across reads: the newest wait a read or two
   * (`pending`), at most PERF_REORDER_WINDOW_NS after they happened.
   */
  drain(max = Number.POSITIVE_INFINITY): SetStateRecord[] {
    if (this.stopped) return [];
    const readStart = this.order ? monotonicNs() : 0n;
    const records: SetStateRecord[] = [];
    this.reader.drain((bytes) => {
      try {
        records.push(decodeSetStateRecord(bytes));
      } catch {
        this.undecodable++;
      }
    }, max);
    return this.order ? this.order.take(records, readStart) : records;
  }

  /** Records read but held back to keep kernel-time order (perf buffers only). */
  get pending(): number {
    return this.order?.pending ?? 0;
  }

  /** The records as the program wrote them (copies), for recordings that are decoded later. */
  drainRaw(max = Number.POSITIVE_INFINITY): Uint8Array[] {
    if (this.stopped) return [];
    const records: Uint8Array[] = [];
    this.reader.drain((bytes) => records.push(bytes.slice()), max);
    return records;
  }

  counters(): SensorCounters {
    const result: SensorCounters = { lostRecords: 0, ownerMapFull: 0, listenerMapFull: 0, undecodable: this.undecodable, missedChanges: 0 };
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
    result.missedChanges = progRecursionMisses(this.programFd, this.programInfo) ?? 0;
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
