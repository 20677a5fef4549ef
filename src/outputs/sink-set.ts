/**
 * Several sinks at once. Every record goes to every sink; a sink that throws, or whose flush or
 * close never finishes, costs only itself: the others get their records and finish on time.
 * Records are cut to their bounds here, where they enter the sinks (record-bounds.ts), so that
 * no sink's queue ever holds one longer text than those bounds allow.
 */
import type { Sink, SinkProblemReporter, SinkStats } from "./sink.ts";
import { withTimeout } from "../timers.ts";
import { errorText } from "./sink.ts";
import type { SinkRecord } from "./sink-record.ts";
import { boundedRecord } from "./record-bounds.ts";

export interface SinkSetOptions {
  /** Told once per failure episode of a sink that throws from write, flush or close. */
  report?: SinkProblemReporter;
}

interface Member {
  sink: Sink;
  /** Records the sink threw on (its own stats cannot know of them). */
  lost: number;
  thrown: number;
  lastThrow: string | null;
}

export class SinkSet {
  private readonly members: Member[] = [];

  constructor(
    sinks: readonly Sink[] = [],
    private readonly o: SinkSetOptions = {},
  ) {
    for (const s of sinks) this.add(s);
  }

  add(sink: Sink): void {
    this.members.push({ sink, lost: 0, thrown: 0, lastThrow: null });
  }

  get sinks(): readonly Sink[] {
    return this.members.map((m) => m.sink);
  }

  write(records: readonly SinkRecord[]): void {
    this.writeTo(this.members, records);
  }

  /** Writes to every sink but the one named (e.g. to tell the others what that one dropped). */
  writeExcept(name: string, records: readonly SinkRecord[]): void {
    this.writeTo(this.members.filter((m) => m.sink.name !== name), records);
  }

  private writeTo(members: readonly Member[], given: readonly SinkRecord[]): void {
    if (given.length === 0 || members.length === 0) return;
    const records = given.map(boundedRecord);
    for (const m of members) {
      try {
        m.sink.write(records);
      } catch (err) {
        m.lost += records.length;
        this.threw(m, "write", err);
      }
    }
  }

  /** Flushes every sink at once; resolves within timeoutMs (plus a tick) whatever the sinks do. */
  async flush(timeoutMs: number): Promise<void> {
    await this.each(timeoutMs, "flush", (s) => s.flush(timeoutMs));
  }

  async close(timeoutMs: number): Promise<void> {
    await this.each(timeoutMs, "close", (s) => s.close(timeoutMs));
  }

  /** Each sink's stats by name, counting records it threw on as dropped. */
  stats(): Record<string, SinkStats> {
    const out: Record<string, SinkStats> = {};
    for (const m of this.members) {
      let s: SinkStats;
      try {
        s = m.sink.stats();
      } catch (err) {
        s = { written: 0, queued: 0, queuedBytes: 0, maxQueuedBytes: 0, dropped: 0, droppedBy: { overflow: 0, failed: 0, closing: 0 }, failures: 0, lastError: errorText(err) };
      }
      let name = m.sink.name;
      for (let i = 2; name in out; i++) name = `${m.sink.name}#${i}`;
      const by = s.droppedBy ?? { overflow: 0, failed: s.dropped, closing: 0 };
      const droppedBy = { ...by, failed: by.failed + m.lost };
      out[name] = { ...s, dropped: s.dropped + m.lost, droppedBy, failures: s.failures + m.thrown, lastError: s.lastError ?? m.lastThrow };
    }
    return out;
  }

  private async each(timeoutMs: number, what: string, run: (s: Sink) => Promise<unknown>): Promise<void> {
    await Promise.all(
      this.members.map(async (m) => {
        let work: Promise<unknown>;
        try {
          work = Promise.resolve(run(m.sink)).catch((err) => this.threw(m, what, err));
        } catch (err) {
          this.threw(m, what, err);
          return;
        }
        await withTimeout(work, timeoutMs + 50, () => undefined);
      }),
    );
  }

  private threw(m: Member, what: string, err: unknown): void {
    const message = `${what} threw: ${errorText(err)}`;
    if (m.lastThrow === message) return;
    m.lastThrow = message;
    m.thrown++;
    try {
      this.o.report?.(m.sink.name, message);
    } catch {
      // A reporter that fails must not stop the others.
    }
  }
}
