// Timers that run only when a test advances them: whatever the machine's load, a test that
// drives a loop through them sees exactly the ticks it asked for.
import type { Timers } from "../../../src/timers.ts";

export class ManualTimers implements Timers {
  /** Milliseconds of driven time; also usable as a monotonic clock. */
  now = 0;
  private next = 1;
  private readonly queue = new Map<number, { at: number; ms: number; fn: () => void }>();
  readonly clock = () => this.now;

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.queue.set(id, { at: this.now + ms, ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.queue.delete(handle as number);
  }

  /** The delays of the timers armed and not yet fired or cleared. */
  pending(): number[] {
    return [...this.queue.values()].map((t) => t.ms);
  }

  /** Runs every timer due within `ms`, in order, each at its own time. */
  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      let first: [number, { at: number; ms: number; fn: () => void }] | null = null;
      for (const entry of this.queue) if (entry[1].at <= until && (!first || entry[1].at < first[1].at)) first = entry;
      if (!first) break;
      this.queue.delete(first[0]);
      this.now = Math.max(this.now, first[1].at);
      first[1].fn();
    }
    this.now = until;
  }
}
