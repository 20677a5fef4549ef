/**
 * A bounded, ordered queue with one delivery in flight at a time, shared by the sinks that do
 * slow I/O (file, syslog, webhook). Items are taken in batches; a failed batch is retried, with
 * exponential backoff and jitter, before anything behind it, so order is kept. When more items
 * wait than the limit allows, the oldest are dropped, and every item given up on is counted.
 */
import { SinkCounters, errorText, within } from "./sink.ts";

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
  batchSize: number;
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
}

export class DeliveryQueue<T> {
  private items: T[] = [];
  private head = 0;
  private inFlight = 0;
  private running = false;
  private closing = false;
  private abandoned = false;
  private cancelWait: (() => void) | null = null;
  private readonly idle = new Set<() => void>();

  constructor(private readonly o: DeliveryQueueOptions<T>) {}

  /** Items waiting, including the batch being delivered. */
  get size(): number {
    return this.items.length - this.head + this.inFlight;
  }

  push(items: readonly T[]): void {
    if (items.length === 0) return;
    if (this.closing) {
      this.o.counters.drop(items.length, `${items.length} record(s) arrived after closing`);
      return;
    }
    for (const item of items) this.items.push(item);
    const over = this.items.length - this.head - this.o.limit;
    if (over > 0) {
      this.head += over;
      this.o.counters.overflow(over, `queue full (${this.o.limit} records): dropping the oldest`);
    }
    this.compact();
    if (!this.running) {
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
    await within(emptied, timeoutMs);
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
    this.items = [];
    this.head = 0;
    this.inFlight = 0;
    this.cancelWait?.();
    this.o.counters.drop(left, `${left} record(s) not delivered before closing`);
    this.notifyIdle();
  }

  private async run(): Promise<void> {
    try {
      while (!this.abandoned && this.head < this.items.length) {
        const batch = this.items.slice(this.head, this.head + this.o.batchSize);
        this.head += batch.length;
        this.inFlight = batch.length;
        this.compact();
        if (this.items.length - this.head < this.o.limit) this.o.counters.roomAgain();
        await this.deliverWithRetries(batch);
        if (this.abandoned) return;
        this.inFlight = 0;
      }
    } finally {
      this.running = false;
      if (this.size === 0) this.notifyIdle();
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
        this.o.counters.drop(batch.length - done);
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
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  private notifyIdle(): void {
    for (const done of this.idle) done();
    this.idle.clear();
  }
}
