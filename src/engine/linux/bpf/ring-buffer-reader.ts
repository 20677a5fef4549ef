/**
 * The consumer side of a BPF ring buffer (BPF_MAP_TYPE_RINGBUF, Linux 5.8+), read from its
 * mmap'd pages without system calls.
 *
 * Layout (kernel/bpf/ringbuf.c): the consumer page (read-write) holds consumer_pos at offset 0;
 * the producer page (read-only) holds producer_pos at offset 0 — offset 8 is pending_pos, which
 * is not the place to read (records would stall); the data pages follow the producer page and
 * are mapped twice in a row, so a record that wraps is still contiguous. Each record starts with
 * a u32 length whose bit 31 says the producer is still writing it and bit 30 that it was
 * discarded, then a u32 the consumer ignores; the next record starts at round_up(len + 8, 8).
 * Positions only grow; a position's place in the data is position & (size - 1).
 */
import { PROT_READ, PROT_WRITE, mmapShared, munmap, type Mapping } from "./bpf-syscalls.ts";

const BUSY_BIT = 0x8000_0000;
const DISCARD_BIT = 0x4000_0000;
const HEADER_SIZE = 8;

export class RingBufferReader {
  private readonly consumer: Mapping;
  private readonly producer: Mapping;
  private readonly consumerPos: BigUint64Array;
  private readonly producerPos: BigUint64Array;
  private readonly headers: Uint32Array;
  private readonly data: Uint8Array;
  private readonly mask: bigint;
  private closed = false;

  /** Maps the ring of `size` data bytes (a power of two, a multiple of the page size) behind `fd`. */
  constructor(
    readonly fd: number,
    readonly size: number,
    pageSize: number,
  ) {
    this.consumer = mmapShared(fd, pageSize, PROT_READ | PROT_WRITE, 0, "mmap(ring buffer consumer page)");
    try {
      this.producer = mmapShared(fd, pageSize + 2 * size, PROT_READ, pageSize, "mmap(ring buffer data)");
    } catch (error) {
      munmap(this.consumer);
      throw error;
    }
    this.consumerPos = new BigUint64Array(this.consumer.view, 0, 1);
    this.producerPos = new BigUint64Array(this.producer.view, 0, 1);
    this.headers = new Uint32Array(this.producer.view, pageSize, (2 * size) / 4);
    this.data = new Uint8Array(this.producer.view, pageSize, 2 * size);
    this.mask = BigInt(size - 1);
  }

  /**
   * Hands each committed record to `visit` (a view valid only during the call), at most `max`
   * of them, then releases their space to the kernel. Returns how many were visited.
   */
  drain(visit: (record: Uint8Array) => void, max = Number.POSITIVE_INFINITY): number {
    if (this.closed) return 0;
    // Atomics give the acquire/release ordering the kernel's smp_load_acquire/smp_store_release
    // pair with, on machines that reorder loads.
    let position = Atomics.load(this.consumerPos, 0);
    const end = Atomics.load(this.producerPos, 0);
    let visited = 0;
    try {
      while (position < end && visited < max) {
        const offset = Number(position & this.mask);
        // A plain read: Bun's optimised Atomics.load on a Uint32Array over memory it did not
        // allocate (this mmap) crashed the process (segfault, reproduced under steady traffic
        // once the drain loop was compiled); plain reads and the 64-bit Atomics above did not.
        const header = this.headers[offset / 4]!;
        if (header & BUSY_BIT) break;
        // An acquire after the header, so the record's bytes are not read before it (arm64).
        Atomics.load(this.producerPos, 0);
        const length = header & ~(BUSY_BIT | DISCARD_BIT);
        // Moved past first, so a record the visitor refuses is not handed out again.
        position += BigInt((length + HEADER_SIZE + 7) & ~7);
        if (!(header & DISCARD_BIT)) {
          visited++;
          visit(this.data.subarray(offset + HEADER_SIZE, offset + HEADER_SIZE + length));
        }
      }
    } finally {
      Atomics.store(this.consumerPos, 0, position);
    }
    return visited;
  }

  /** Bytes written and not yet consumed. */
  pending(): number {
    if (this.closed) return 0;
    return Number(Atomics.load(this.producerPos, 0) - Atomics.load(this.consumerPos, 0));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    munmap(this.producer);
    munmap(this.consumer);
  }
}
