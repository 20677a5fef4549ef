/**
 * Which of the monitor's events `watch` prints, and their numbers. The monitor numbers every event
 * it makes, including those the filters then drop; `watch` numbers only what it prints, from 1 up
 * without gaps, so that a reader can tell from `seq` whether a line went missing on the way.
 */
import type { EndpointEvent } from "../monitor/events.ts";

export class WatchStream {
  private emitted = 0;

  constructor(
    private readonly accept: (e: EndpointEvent) => boolean,
    /** Stop after this many (`--count`). */
    private readonly limit = Infinity,
  ) {}

  /** The events to print, renumbered; none once the limit is reached. */
  take(events: readonly EndpointEvent[]): EndpointEvent[] {
    const out: EndpointEvent[] = [];
    for (const e of events) {
      if (this.done) break;
      if (!this.accept(e)) continue;
      out.push({ ...e, seq: ++this.emitted });
    }
    return out;
  }

  get done(): boolean {
    return this.emitted >= this.limit;
  }
}
