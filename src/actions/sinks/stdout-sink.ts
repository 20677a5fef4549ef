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
import { useColour } from "../../view/event-line.ts";

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
  /** Bytes the stream may hold unwritten before records are dropped (default 4 MiB). */
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
  private closed = false;
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
    if (this.closed) return this.counters.drop(records.length, `${records.length} record(s) arrived after closing`);
    if (this.broken) return this.counters.drop(records.length);
    if ((this.stream.writableLength ?? 0) > this.maxBuffered) {
      this.counters.failed("standard output is not being read");
      return this.counters.drop(records.length);
    }
    let text = "";
    for (const r of records) text += this.o.format === "ndjson" ? ndjsonLine(r) : humanLine(r, this.colour);
    const n = records.length;
    this.pending += n;
    try {
      this.stream.write(text, (err) => {
        this.pending -= n;
        if (err) {
          this.counters.failed(errorText(err));
          this.counters.drop(n);
        } else {
          this.counters.delivered(n);
        }
      });
    } catch (err) {
      this.pending -= n;
      this.counters.failed(errorText(err));
      this.counters.drop(n);
    }
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
    await this.flush(timeoutMs);
    // Standard output itself stays open: it belongs to the process.
  }

  stats(): SinkStats {
    return this.counters.snapshot(this.pending);
  }
}
