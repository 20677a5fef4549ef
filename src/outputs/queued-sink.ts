/**
 * What the sinks that do slow I/O (file, syslog, webhook) have in common: records go into a
 * bounded DeliveryQueue and are delivered in the background, one batch at a time; a network sink
 * may keep that queue on disk (sink-spool.ts). A sink built on this says only how one batch is
 * delivered and what it lets go of when it closes.
 */
import type { Sink, SinkProblemReporter, SinkStats } from "./sink.ts";
import { SinkCounters } from "./sink.ts";
import type { SinkRecord } from "./sink-record.ts";
import { recordBytes } from "./record-bounds.ts";
import { DeliveryQueue, type DeliveryProgress, type RetryPolicy } from "./delivery-queue.ts";
import { SinkSpool, type SpoolPlace } from "./sink-spool.ts";

export interface QueuedSinkOptions {
  name: string;
  report?: SinkProblemReporter;
  /** Records that may wait. */
  queueSize: number;
  /** Bytes the waiting records may hold, the batch being delivered included. */
  queueBytes: number;
  batchSize: number;
  retry: RetryPolicy;
  /** Test seam for the backoff jitter, in [0, 1). */
  random?: () => number;
  /** Deliver nothing until keepOnDisk() has opened the spool and put back what it kept. */
  spooled?: boolean;
}

export abstract class QueuedSink implements Sink {
  readonly name: string;
  protected readonly counters: SinkCounters;
  protected readonly queue: DeliveryQueue<SinkRecord>;
  private readonly queueBytes: number;
  private spool: SinkSpool | null = null;

  protected constructor(o: QueuedSinkOptions) {
    this.name = o.name;
    this.counters = new SinkCounters(o.name, o.report);
    this.queueBytes = o.queueBytes;
    this.queue = new DeliveryQueue<SinkRecord>({
      limit: o.queueSize,
      maxBytes: o.queueBytes,
      sizeOf: recordBytes,
      batchSize: o.batchSize,
      retry: o.retry,
      deliver: (batch, progress) => this.deliver(batch, progress),
      counters: this.counters,
      random: o.random,
      paused: o.spooled === true,
    });
  }

  /** Delivers one batch, or throws to have it retried (see DeliveryQueueOptions.deliver). */
  protected abstract deliver(batch: SinkRecord[], progress: DeliveryProgress): Promise<void>;

  /** What the sink holds besides the queue (a file, a socket, requests in flight), let go of at closing. */
  protected release(): void | Promise<void> {}

  /**
   * Opens the spool, which starts delivering (what it kept first). Called last in a subclass's
   * constructor: delivery may begin at once and needs everything the subclass sets up.
   */
  protected keepOnDisk(place: SpoolPlace, report?: SinkProblemReporter, note?: SinkProblemReporter): void {
    this.spool = new SinkSpool({ place, sinkName: this.name, queue: this.queue, queueBytes: this.queueBytes, report, note });
  }

  write(records: readonly SinkRecord[]): void {
    this.queue.push(records);
  }

  /** True when nothing was left queued in time. */
  async flush(timeoutMs: number): Promise<boolean> {
    return this.queue.drained(timeoutMs);
  }

  async close(timeoutMs: number): Promise<void> {
    await this.queue.close(timeoutMs);
    await this.release();
    this.spool?.close();
  }

  stats(): SinkStats {
    const s = this.counters.snapshot(this.queue.size, this.queue.bytes, this.queueBytes);
    if (this.spool) s.spool = { ...this.spool.stats(), kept: this.counters.kept };
    return s;
  }
}
