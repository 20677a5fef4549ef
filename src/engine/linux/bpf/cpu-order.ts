/**
 * Puts records from per-CPU perf buffers in kernel-time order across reads.
 *
 * Each CPU's buffer is in order, but the buffers are read one after another: a change on a CPU
 * already read can be written while a later CPU is read, and a later change from that CPU
 * arrives first. Sorting one read is not enough (seen here: a connection's FIN_WAIT1 came a read
 * after its FIN_WAIT2 and CLOSE, in 7 of 25 runs of 20 connections). A record is let out only
 * when every record stamped before it must already have been read: those stamped at least
 * `window` before the read began (the program stamps a change first and writes it microseconds
 * later, an interrupt's softirq work aside). The rest waits for a later read.
 */
import type { SetStateRecord } from "./set-state-record.ts";

/** How long a program may take between stamping a change and writing it. */
export const PERF_REORDER_WINDOW_NS = 2_000_000n;

const byTime = (x: SetStateRecord, y: SetStateRecord) => (x.kernelTimeNs < y.kernelTimeNs ? -1 : x.kernelTimeNs > y.kernelTimeNs ? 1 : 0);

export class CpuOrder {
  private held: SetStateRecord[] = [];

  constructor(private readonly window: bigint = PERF_REORDER_WINDOW_NS) {}

  /** Records waiting for a later read. */
  get pending(): number {
    return this.held.length;
  }

  /**
   * Takes one read's records (`readStartNs`: CLOCK_MONOTONIC just before the first buffer was
   * read) and returns those now safe to hand on, oldest first.
   */
  take(records: SetStateRecord[], readStartNs: bigint): SetStateRecord[] {
    const all = this.held.length === 0 ? records : this.held.concat(records);
    if (all.length === 0) return all;
    all.sort(byTime);
    const safeUntil = readStartNs - this.window;
    let cut = all.length;
    while (cut > 0 && all[cut - 1]!.kernelTimeNs > safeUntil) cut--;
    this.held = all.slice(cut);
    return cut === all.length ? all : all.slice(0, cut);
  }

  /** Everything held, in order (when the sensor stops: nothing more can come before them). */
  flush(): SetStateRecord[] {
    const out = this.held;
    this.held = [];
    return out;
  }
}
