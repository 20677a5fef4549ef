/**
 * Records on standard output: one line for people (coloured on a terminal) or NDJSON for
 * programs. Writing never waits: text goes to the stream's buffer, and when nobody reads it
 * (a stalled pipe) records beyond a bound are dropped and counted instead of filling memory.
 * A closed pipe (EPIPE) is a failure of this sink only.
 */
import type { Sink, SinkProblemReporter, SinkStats } from "./sink.ts";
import { SinkCounters, delay, errorText } from "./sink.ts";
import type { SinkRecord } from "./sink-record.ts";
import { humanLine, ndjsonLine } from "./record-text.ts";
import { byteText } from "./record-bounds.ts";
import { useColour } from "../format/colour.ts";

/** The part of a Node writable stream the sink uses (process.stdout, a PassThrough in tests). */
export interface TextStream {
  write(text: string, callback: (err?: Error | null) => void): boolean;
  readonly writableLength?: number;
  on?(event: "error", listener: (err: Error) => void): unknown;
}

export interface StdoutSinkOptions {
  format: "human" | "ndjson";
  /** Colour human lines by severity; default: when the stream is a terminal and NO_COLOR is unset. */
  colour?: boolean;
  /** Default process.stdout. */
  stream?: TextStream;
  /** Bytes of text the stream may hold unwritten; records past it are dropped (default 4 MiB). */
  maxBufferedBytes?: number;
  report?: SinkProblemReporter;
}

export class StdoutSink implements Sink {
  readonly name: string;
  private readonly counters: SinkCounters;
  private readonly stream: TextStream;
  private readonly colour: boolean;
  private readonly maxBuffered: number;
  private pending = 0;
  private pendingBytes = 0;
  private closed = false;
  private gaveUp = false;
  private broken: string | null = null;

  constructor(private readonly o: StdoutSinkOptions) {
    this.name = o.format === "ndjson" ? "stdout:ndjson" : "stdout";
    this.counters = new SinkCounters(this.name, o.report);
    this.stream = o.stream ?? process.stdout;
    this.colour = o.format === "human" && (o.colour ?? useColour(this.stream as { isTTY?: boolean }));
    this.maxBuffered = o.maxBufferedBytes ?? 4 << 20;
    // Without a listener an EPIPE would be thrown as an uncaught error and end the daemon.
    this.stream.on?.("error", (err) => {
      this.broken = errorText(err);
      this.counters.failed(this.broken);
    });
  }

  write(records: readonly SinkRecord[]): void {
    if (records.length === 0) return;
    if (this.closed) return this.counters.drop(records.length, `${records.length} record(s) arrived after closing`, "closing");
    if (this.broken) return this.counters.drop(records.length);
    // The text not yet taken by the stream is counted here, by the callbacks: under Bun a stalled
    // pipe's writableLength stays 0 while the text waits in memory.
    const room = this.maxBuffered - Math.max(this.pendingBytes, this.stream.writableLength ?? 0);
    if (room <= 0) return this.overflow(records.length);
    let text = "";
    let bytes = 0;
    let n = 0;
    for (const r of records) {
      const line = this.o.format === "ndjson" ? ndjsonLine(r) : humanLine(r, this.colour);
      const size = Buffer.byteLength(line);
      if (bytes + size > room) break;
      text += line;
      bytes += size;
      n++;
    }
    if (n < records.length) this.overflow(records.length - n);
    if (n === 0) return;
    this.pending += n;
    this.pendingBytes += bytes;
    const done = () => {
      this.pending -= n;
      this.pendingBytes -= bytes;
      if (this.pending === 0) this.counters.emptied();
    };
    try {
      this.stream.write(text, (err) => {
        done();
        // Counted as dropped when closing gave up on it.
        if (this.gaveUp) return;
        if (err) {
          this.counters.failed(errorText(err));
          this.counters.drop(n);
        } else {
          this.counters.delivered(n);
        }
      });
    } catch (err) {
      done();
      this.counters.failed(errorText(err));
      this.counters.drop(n);
    }
  }

  private overflow(n: number): void {
    this.counters.overflow(n, `standard output is not being read: over its ${byteText(this.maxBuffered)} bound, dropping records`);
  }

  /** True when everything written so far has reached the stream in time. */
  async flush(timeoutMs: number): Promise<boolean> {
    // A monotonic clock: a wall clock set back must not stretch the wait.
    const deadline = performance.now() + timeoutMs;
    while (this.pending > 0 && performance.now() < deadline) await delay(5);
    return this.pending === 0;
  }

  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    if (!(await this.flush(timeoutMs))) {
      this.gaveUp = true;
      this.counters.drop(this.pending, `${this.pending} record(s) not written before closing`, "closing");
    }
    // Standard output itself stays open: it belongs to the process.
  }

  stats(): SinkStats {
    return this.gaveUp ? this.counters.snapshot(0, 0, this.maxBuffered) : this.counters.snapshot(this.pending, this.pendingBytes, this.maxBuffered);
  }
}
