/**
 * A bounded, ordered queue with one delivery in flight at a time, shared by the sinks that do
 * slow I/O (file, syslog, webhook). Items are taken in batches; a failed batch is retried, with
 * exponential backoff and jitter, before anything behind it, so order is kept. The queue is
 * bounded twice: in items, and in bytes (the batch being delivered, and retried, counts too), so
 * that what it holds stays under its bound however big the items are. When either bound would be
 * passed, the oldest waiting items are dropped, and every item given up on is counted.
 *
 * A store (spool.ts) may follow the queue, item by item, so that what is still queued when the
 * queue closes is kept for the next start instead of dropped. A queue made paused delivers
 * nothing until its store is attached, with what the store kept from before going first.
 */
import { withTimeout } from "../timers.ts";
import { SinkCounters, errorText } from "./sink.ts";
import { byteText } from "./record-bounds.ts";
import type { QueueStore } from "./spool.ts";

export interface RetryPolicy {
  /** Wait after the first failure; it doubles with each further failure, up to maxMs. */
  initialMs: number;
  maxMs: number;
  /** Failed attempts after the first before a batch is dropped; Infinity retries until closed. */
  maxRetries: number;
}

export const DEFAULT_RETRY: RetryPolicy = { initialMs: 500, maxMs: 30_000, maxRetries: Infinity };

/** A deliverer throws this when trying again cannot help (HTTP 400, a message too big). */
export class PermanentDeliveryError extends Error {
  override readonly name = "PermanentDeliveryError";
}

/** A deliverer throws this when the other side said when to come back (HTTP Retry-After). */
export class RetryLaterError extends Error {
  override readonly name = "RetryLaterError";
  constructor(
    message: string,
    readonly afterMs: number,
  ) {
    super(message);
  }
}

export interface DeliveryProgress {
  /** Items at the start of the batch already delivered. */
  done: number;
}

export interface DeliveryQueueOptions<T> {
  /** Most items waiting, not counting the batch being delivered. */
  limit: number;
  /** Most bytes held, waiting and in the batch being delivered, as sizeOf counts them. */
  maxBytes: number;
  /** What holding an item costs, in bytes. */
  sizeOf(item: T): number;
  batchSize: number;
  /** Most bytes in one batch (default a quarter of maxBytes); a batch takes one item at least. */
  batchBytes?: number;
  retry: RetryPolicy;
  /**
   * Delivers one batch, or throws to have it retried. A deliverer that sends item by item
   * advances progress.done as items get through: a retry starts there, so nothing goes twice,
   * and a batch given up on counts only the items that did not go as dropped.
   */
  deliver(batch: T[], progress: DeliveryProgress): Promise<void>;
  counters: SinkCounters;
  /** Test seam for the jitter, in [0, 1). */
  random?: () => number;
  /** Deliver nothing until attach() is called. */
  paused?: boolean;
}

export class DeliveryQueue<T> {
  private items: T[] = [];
  /** sizeOf of each item, at the same index. */
  private sizes: number[] = [];
  private head = 0;
  private inFlight = 0;
  private waitingBytes = 0;
  private inFlightBytes = 0;
  private readonly maxBytes: number;
  private readonly batchBytes: number;
  private running = false;
  private closing = false;
  private abandoned = false;
  private cancelWait: (() => void) | null = null;
  private readonly idle = new Set<() => void>();
  private store: QueueStore<T> | null = null;
  private paused: boolean;

  constructor(private readonly o: DeliveryQueueOptions<T>) {
    this.paused = o.paused === true;
    this.maxBytes = Math.max(1, o.maxBytes);
    this.batchBytes = Math.max(1, Math.min(this.maxBytes, o.batchBytes ?? Math.floor(this.maxBytes / 4)));
  }

  /** Items waiting, including the batch being delivered. */
  get size(): number {
    return this.items.length - this.head + this.inFlight;
  }

  /** Bytes held, waiting and in the batch being delivered; never more than maxBytes. */
  get bytes(): number {
    return this.waitingBytes + this.inFlightBytes;
  }

  push(items: readonly T[]): void {
    if (items.length === 0) return;
    if (this.closing) {
      this.o.counters.drop(items.length, `${items.length} record(s) arrived after closing`, "closing");
      return;
    }
    const accepted = this.accept(items);
    this.store?.added(accepted);
    this.trim();
  }

  /**
   * Starts delivering, with the store following the queue from now on: what it kept from before
   * goes first, then what was pushed meanwhile (which the store takes now). A null store (it
   * could not be opened) leaves the queue as it would be without one.
   */
  attach(store: QueueStore<T> | null, kept: readonly T[]): void {
    if (!this.paused) return;
    this.paused = false;
    this.store = store;
    const waiting = this.items.slice(this.head);
    this.items = [];
    this.sizes = [];
    this.head = 0;
    this.waitingBytes = 0;
    this.accept(kept);
    this.accept(waiting);
    store?.added(waiting);
    this.trim();
  }

  private accept(items: readonly T[]): T[] {
    const accepted: T[] = [];
    let tooBig = 0;
    for (const item of items) {
      const size = (this.store ?? this.o).sizeOf(item);
      if (size > this.maxBytes) {
        tooBig++;
        continue;
      }
      accepted.push(item);
      this.items.push(item);
      this.sizes.push(size);
      this.waitingBytes += size;
    }
    if (tooBig > 0) this.o.counters.overflow(tooBig, `a record larger than the queue's ${byteText(this.maxBytes)} bound: dropped`);
    return accepted;
  }

  /** Drops the oldest waiting items while over a bound, and starts delivering. */
  private trim(): void {
    let overCount = 0;
    let overBytes = 0;
    while (this.head < this.items.length && (this.items.length - this.head > this.o.limit || this.bytes > this.maxBytes)) {
      if (this.items.length - this.head > this.o.limit) overCount++;
      else overBytes++;
      this.waitingBytes -= this.sizes[this.head]!;
      // Let go of it now: a slot before head is not reused until the arrays are compacted.
      this.items[this.head] = undefined as T;
      this.head++;
    }
    if (overCount + overBytes > 0) {
      const bound = overCount > 0 ? `${this.o.limit} records` : `over its ${byteText(this.maxBytes)} bound`;
      this.o.counters.overflow(overCount + overBytes, `queue full (${bound}): dropping the oldest`);
      this.store?.dropped(overCount + overBytes);
    }
    this.compact();
    if (!this.running && !this.paused) {
      this.running = true;
      void this.run();
    }
  }

  /** Resolves when nothing is queued, or after timeoutMs. True when nothing is left. */
  async drained(timeoutMs: number): Promise<boolean> {
    if (this.size === 0) return true;
    let done: () => void = () => {};
    const emptied = new Promise<void>((resolve) => {
      done = resolve;
      this.idle.add(done);
    });
    await withTimeout(emptied, timeoutMs, () => undefined);
    this.idle.delete(done);
    return this.size === 0;
  }

  /**
   * Stops taking items, delivers what it can within timeoutMs, then gives up on the rest
   * (counted as dropped). A delivery still running after that no longer counts.
   */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    if (await this.drained(timeoutMs)) return;
    const left = this.size;
    this.abandoned = true;
    const kept = this.store?.durable === true;
    this.items = [];
    this.sizes = [];
    this.head = 0;
    this.inFlight = 0;
    this.waitingBytes = 0;
    this.inFlightBytes = 0;
    this.cancelWait?.();
    if (kept) this.o.counters.keep(left, `${left} record(s) not delivered before closing: kept in ${this.store!.where}, to go out first when the sink starts again`);
    else this.o.counters.drop(left, `${left} record(s) not delivered before closing`, "closing");
    this.notifyIdle();
  }

  private async run(): Promise<void> {
    try {
      while (!this.abandoned && this.head < this.items.length) {
        let end = this.head;
        let bytes = 0;
        while (end < this.items.length && end - this.head < this.o.batchSize && (end === this.head || bytes + this.sizes[end]! <= this.batchBytes)) {
          bytes += this.sizes[end]!;
          end++;
        }
        const batch = this.items.slice(this.head, end);
        for (let i = this.head; i < end; i++) this.items[i] = undefined as T;
        this.head = end;
        this.inFlight = batch.length;
        this.waitingBytes -= bytes;
        this.inFlightBytes = bytes;
        this.compact();
        this.store?.taken(batch.length);
        await this.deliverWithRetries(batch);
        if (this.abandoned) return;
        this.store?.done();
        this.inFlight = 0;
        this.inFlightBytes = 0;
      }
    } finally {
      this.running = false;
      if (this.size === 0) {
        this.o.counters.emptied();
        this.notifyIdle();
      }
    }
  }

  private async deliverWithRetries(batch: T[]): Promise<void> {
    const progress: DeliveryProgress = { done: 0 };
    for (let failures = 1; ; failures++) {
      let error: unknown = null;
      try {
        await this.o.deliver(batch, progress);
      } catch (err) {
        error = err ?? new Error("delivery failed");
      }
      if (this.abandoned) return;
      if (error === null) {
        this.o.counters.delivered(batch.length);
        return;
      }
      const message = errorText(error);
      this.o.counters.failed(message);
      if (error instanceof PermanentDeliveryError || failures > this.o.retry.maxRetries) {
        // The failure itself was reported just above; the count says what it cost.
        const done = Math.min(Math.max(0, progress.done), batch.length);
        if (done > 0) this.o.counters.written += done;
        this.o.counters.drop(batch.length - done, undefined, "failed");
        return;
      }
      await this.wait(this.backoff(failures, error));
      if (this.abandoned) return;
    }
  }

  /** Exponential backoff with "equal jitter": half the step fixed, half random. */
  private backoff(failures: number, error: unknown): number {
    const { initialMs, maxMs } = this.o.retry;
    const step = Math.min(maxMs, initialMs * 2 ** Math.min(failures - 1, 30));
    let ms = step / 2 + (this.o.random ?? Math.random)() * (step / 2);
    if (error instanceof RetryLaterError) ms = Math.min(maxMs, Math.max(ms, error.afterMs));
    return ms;
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(finish, ms);
      (timer as { unref?: () => void }).unref?.();
      const self = this;
      function finish() {
        clearTimeout(timer);
        self.cancelWait = null;
        resolve();
      }
      this.cancelWait = finish;
    });
  }

  private compact(): void {
    if (this.head === this.items.length) {
      // Empty: let go of the arrays at once, so that no dropped item is held by them.
      this.items = [];
      this.sizes = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }

  private notifyIdle(): void {
    for (const done of this.idle) done();
    this.idle.clear();
  }
}
