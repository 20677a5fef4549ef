/**
 * The output for kernels without a BPF ring buffer (before 5.8): a BPF_MAP_TYPE_PERF_EVENT_ARRAY
 * holding, for each CPU, a PERF_COUNT_SW_BPF_OUTPUT event whose buffer is mmap'd and read here.
 *
 * Buffer layout (include/uapi/linux/perf_event.h): the first page is perf_event_mmap_page, with
 * data_head at byte 1024 (written by the kernel), data_tail at 1032 (written by the reader),
 * data_offset and data_size at 1040 and 1048 (4.1+; the data pages follow the first page when
 * they read 0). Records are a perf_event_header {u32 type, u16 misc, u16 size} and a body;
 * PERF_RECORD_SAMPLE (9) with PERF_SAMPLE_RAW carries a u32 size then the program's bytes,
 * PERF_RECORD_LOST (2) carries an id and how many records the kernel had to drop. Unlike the ring
 * buffer the data pages are mapped once, so a record may wrap around the end.
 */
import {
  BPF_MAP_TYPE_PERF_EVENT_ARRAY,
  PERF_COUNT_SW_BPF_OUTPUT,
  PERF_EVENT_IOC_ENABLE,
  PERF_SAMPLE_RAW,
  PERF_TYPE_SOFTWARE,
  PROT_READ,
  PROT_WRITE,
  closeFd,
  ioctl,
  mapCreate,
  mapUpdate,
  mmapShared,
  munmap,
  perfEventOpen,
  type Mapping,
} from "./bpf-syscalls.ts";
import { SystemCallError } from "../../../errors.ts";

const DATA_HEAD = 1024;
const DATA_TAIL = 1032;
const DATA_OFFSET = 1040;
const DATA_SIZE = 1048;
const PERF_RECORD_LOST = 2;
const PERF_RECORD_SAMPLE = 9;

class CpuBuffer {
  private readonly head: BigUint64Array;
  private readonly tail: BigUint64Array;
  private readonly data: Uint8Array;
  private readonly view: DataView;
  private scratch = new Uint8Array(256);

  constructor(
    readonly fd: number,
    private readonly mapping: Mapping,
    pageSize: number,
  ) {
    const meta = new DataView(mapping.view, 0, pageSize);
    const offset = Number(meta.getBigUint64(DATA_OFFSET, true)) || pageSize;
    const size = Number(meta.getBigUint64(DATA_SIZE, true)) || mapping.length - pageSize;
    this.head = new BigUint64Array(mapping.view, DATA_HEAD, 1);
    this.tail = new BigUint64Array(mapping.view, DATA_TAIL, 1);
    this.data = new Uint8Array(mapping.view, offset, size);
    this.view = new DataView(mapping.view, offset, size);
  }

  /** Bytes `from`..`from+length` of the data area, copied out when they wrap around its end. */
  private bytes(from: number, length: number): Uint8Array {
    const size = this.data.length;
    const start = from % size;
    if (start + length <= size) return this.data.subarray(start, start + length);
    if (this.scratch.length < length) this.scratch = new Uint8Array(length);
    const first = size - start;
    this.scratch.set(this.data.subarray(start), 0);
    this.scratch.set(this.data.subarray(0, length - first), first);
    return this.scratch.subarray(0, length);
  }

  drain(visit: (record: Uint8Array) => void, max: number): { visited: number; lost: number } {
    let tail = Atomics.load(this.tail, 0);
    const head = Atomics.load(this.head, 0);
    let visited = 0;
    let lost = 0;
    try {
      while (tail < head && visited < max) {
        const at = Number(tail % BigInt(this.data.length));
        // Headers are 8-byte aligned and the data size is a power of two: never split.
        const type = this.view.getUint32(at, true);
        const size = this.view.getUint16(at + 6, true);
        if (size < 8) break; // Not a record: stop rather than spin.
        const record = this.bytes(at, size);
        tail += BigInt(size);
        if (type === PERF_RECORD_SAMPLE) {
          const raw = new DataView(record.buffer, record.byteOffset, record.byteLength);
          const rawSize = raw.getUint32(8, true);
          visited++;
          visit(record.subarray(12, 12 + Math.min(rawSize, size - 12)));
        } else if (type === PERF_RECORD_LOST) {
          const raw = new DataView(record.buffer, record.byteOffset, record.byteLength);
          lost += Number(raw.getBigUint64(16, true));
        }
      }
    } finally {
      Atomics.store(this.tail, 0, tail);
    }
    return { visited, lost };
  }

  close(): void {
    munmap(this.mapping);
    closeFd(this.fd);
  }
}

/** CPUs the kernel may ever run (the `possible` mask), e.g. "0-3,8-11". */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(",")) {
    if (part === "") continue;
    const [from, to] = part.split("-").map(Number);
    if (from === undefined || !Number.isInteger(from)) continue;
    const last = to === undefined ? from : to;
    for (let cpu = from; cpu <= last; cpu++) cpus.push(cpu);
  }
  return cpus;
}

export class PerfBufferSet {
  /** The PERF_EVENT_ARRAY map the program writes to. */
  readonly mapFd: number;
  private readonly buffers: CpuBuffer[] = [];
  /** CPUs that were offline at start (their records cannot be read). */
  readonly offlineCpus: number[] = [];
  private lostTotal = 0;
  private closed = false;

  constructor(cpus: number[], pagesPerCpu: number, pageSize: number) {
    const entries = Math.max(...cpus) + 1;
    this.mapFd = mapCreate({ type: BPF_MAP_TYPE_PERF_EVENT_ARRAY, keySize: 4, valueSize: 4, maxEntries: entries, name: "sw_set_state_pe" });
    try {
      for (const cpu of cpus) {
        let fd: number;
        try {
          fd = perfEventOpen({
            type: PERF_TYPE_SOFTWARE,
            config: PERF_COUNT_SW_BPF_OUTPUT,
            sampleType: PERF_SAMPLE_RAW,
            samplePeriod: 1,
            // Without it a poller is woken only when the buffer is half full.
            wakeupEvents: 1,
            disabled: false,
            cpu,
          });
        } catch (error) {
          if (error instanceof SystemCallError && error.code === "ENODEV") {
            this.offlineCpus.push(cpu);
            continue;
          }
          throw error;
        }
        let mapping: Mapping;
        try {
          mapping = mmapShared(fd, (1 + pagesPerCpu) * pageSize, PROT_READ | PROT_WRITE, 0, `mmap(perf buffer of cpu ${cpu})`);
        } catch (error) {
          closeFd(fd);
          throw error;
        }
        this.buffers.push(new CpuBuffer(fd, mapping, pageSize));
        const key = Buffer.alloc(4);
        key.writeUInt32LE(cpu);
        const value = Buffer.alloc(4);
        value.writeUInt32LE(fd);
        mapUpdate(this.mapFd, key, value);
        ioctl(fd, PERF_EVENT_IOC_ENABLE, 0, `ioctl(PERF_EVENT_IOC_ENABLE, cpu ${cpu})`);
      }
    } catch (error) {
      this.close();
      throw error;
    }
  }

  get fds(): number[] {
    return this.buffers.map((b) => b.fd);
  }

  /** Records the kernel reported dropped for want of room. */
  get lost(): number {
    return this.lostTotal;
  }

  drain(visit: (record: Uint8Array) => void, max = Number.POSITIVE_INFINITY): number {
    let visited = 0;
    if (this.closed) return 0;
    for (const buffer of this.buffers) {
      if (visited >= max) break;
      const result = buffer.drain(visit, max - visited);
      visited += result.visited;
      this.lostTotal += result.lost;
    }
    return visited;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const buffer of this.buffers.splice(0)) buffer.close();
    closeFd(this.mapFd);
  }
}
