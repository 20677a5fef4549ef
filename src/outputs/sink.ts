/**
 * What every sink offers. A sink takes records without ever throwing or making the caller wait:
 * slow work (disk sync, network) is queued and done in the background, in order. What it could
 * not deliver is counted, never silently lost.
 */
import type { SinkRecord } from "./sink-record.ts";
import { TellFirst } from "../text/tell-first.ts";

/**
 * Why records were given up on: the queue was over its bound (records or bytes), delivery failed
 * for good (retries exhausted, refused, a broken pipe), or the sink was closing.
 */
export type DropReason = "overflow" | "failed" | "closing";
export const DROP_REASONS: readonly DropReason[] = ["overflow", "failed", "closing"];

export interface SinkStats {
  /** Records delivered (written and synced, sent, or accepted by the webhook). */
  written: number;
  /** Records waiting, including a batch being delivered now. */
  queued: number;
  /** What the waiting records cost, as {@link recordBytes} counts it (or the bytes of text not yet written). */
  queuedBytes: number;
  /** The most queuedBytes may reach. */
  maxQueuedBytes: number;
  /** Records given up on: queue overflow (oldest first), retries exhausted, refused, or closed. */
  dropped: number;
  /** `dropped` by reason; the reasons add up to it. */
  droppedBy: Record<DropReason, number>;
  /**
   * Failure episodes: a delivery failure that follows a success (or the start) counts once, and
   * the same error repeating while retrying does not count again.
   */
  failures: number;
  /** The most recent error, kept after recovery so that it can still be read. */
  lastError: string | null;
  /** For a sink with a spool on disk (spool.ts). */
  spool?: SpoolStats;
}

export interface SpoolStats {
  /** Bytes of its files now. */
  bytes: number;
  /** Records the last run left, sent first. */
  restored: number;
  /** Lines of the last run's files skipped: cut short (a crash mid-write) or not a record. */
  torn: number;
  /** Records not delivered when the sink closed, left in the spool for the next start. */
  kept: number;
}

export interface Sink {
  /** What the sink writes to, for messages and stats: `stdout`, `file:/var/log/...`. */
  readonly name: string;
  /** Takes records; never throws and never waits for I/O. */
  write(records: readonly SinkRecord[]): void;
  /**
   * Resolves once everything queued so far is delivered, or after timeoutMs, whichever is first:
   * true when nothing was left waiting, false when the time ran out first.
   */
  flush(timeoutMs: number): Promise<boolean>;
  /**
   * Delivers what it can within timeoutMs, then releases its resources. Records still queued at
   * the end are counted as dropped; records written after closing are dropped and counted.
   */
  close(timeoutMs: number): Promise<void>;
  stats(): SinkStats;
}

/** Called once per failure episode of a sink (not for every retry), e.g. to print to stderr. */
export type SinkProblemReporter = (sink: string, message: string) => void;

/** The counters behind {@link SinkStats}, with failure episodes and one report per episode. */
export class SinkCounters {
  written = 0;
  dropped = 0;
  readonly droppedBy: Record<DropReason, number> = { overflow: 0, failed: 0, closing: 0 };
  failures = 0;
  lastError: string | null = null;
  /** Records left in a spool when the sink closed. */
  kept = 0;
  private failing: string | null = null;
  private readonly overflowing = new TellFirst();

  constructor(
    private readonly sink: string,
    private readonly report?: SinkProblemReporter,
  ) {}

  delivered(n: number): void {
    this.written += n;
    this.failing = null;
  }

  /** A failed delivery attempt. The same message again, before a success, is the same episode. */
  failed(message: string): void {
    this.lastError = message;
    if (this.failing === message) return;
    this.failing = message;
    this.failures++;
    this.tell(message);
  }

  /**
   * Records given up on. The message, when given, is reported; a delivery failure that already
   * was (through failed()) passes none.
   */
  drop(n: number, message?: string, why: DropReason = "failed"): void {
    if (n <= 0) return;
    this.dropped += n;
    this.droppedBy[why] += n;
    if (message) this.tell(message);
  }

  /** Records not delivered at closing, kept on disk for the next start: told, not dropped. */
  keep(n: number, message: string): void {
    if (n <= 0) return;
    this.kept += n;
    this.tell(message);
  }

  /**
   * Records dropped because the queue is over its bound; reported once per episode, which ends
   * when the queue has emptied (not merely made room: a queue that stays full tells once, and
   * the counts are told by whoever reads the stats).
   */
  overflow(n: number, message: string): void {
    if (n <= 0) return;
    this.dropped += n;
    this.droppedBy.overflow += n;
    if (this.overflowing.add(n)) this.tell(message);
  }

  /** The queue has emptied: a later overflow is reported anew. */
  emptied(): void {
    this.overflowing.end();
  }

  snapshot(queued: number, queuedBytes = 0, maxQueuedBytes = 0): SinkStats {
    return {
      written: this.written, queued, queuedBytes, maxQueuedBytes, dropped: this.dropped, droppedBy: { ...this.droppedBy },
      failures: this.failures, lastError: this.lastError,
    };
  }

  private tell(message: string): void {
    try {
      this.report?.(this.sink, message);
    } catch {
      // A reporter that fails must not take the sink with it.
    }
  }
}

/** Resolves after ms (at once when ms <= 0). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => (ms <= 0 ? resolve() : setTimeout(resolve, ms)));
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
