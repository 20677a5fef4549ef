/**
 * Folds bursts of identical alerts (same rule, same message, same process) into one record. The
 * first alert of a burst goes out at once; the ones that follow within the window are counted,
 * and when the window closes (or on flush) one summary goes out with `count` (how many it stands
 * for), `firstTime` and `lastTime`. While the burst lasts, one summary follows per window; a key
 * that stays quiet for a whole window is forgotten, and its next alert goes out at once again.
 * Nothing is dropped: every alert is either sent or counted in a summary that is sent.
 *
 * What the folder holds is bounded in keys and in bytes (each burst's key and latest alert):
 * past either bound the oldest burst is summarised early and forgotten, so that a rule raising
 * ever new alerts (each a new key) costs a bounded amount of memory, and still loses nothing.
 */
import type { SinkRecord, SinkRecordKind } from "./sink-record.ts";
import { boundedRecord, recordBytes } from "./record-bounds.ts";
import { TellFirst } from "../text/tell-first.ts";

export interface AlertFolderOptions {
  /** Where records go (a SinkSet's write). */
  emit(records: SinkRecord[]): void;
  /** Default 10,000 ms. */
  windowMs?: number;
  /** Kinds that fold (default alerts only); others pass straight through. */
  kinds?: readonly SinkRecordKind[];
  /** Bursts tracked at once; beyond it the oldest is summarised early (default 10,000). */
  maxKeys?: number;
  /** Bytes the tracked bursts may hold (keys and latest alerts); beyond it, the same (default 8 MiB). */
  maxBytes?: number;
  /** Milliseconds now, for windows (test seam; default Date.now). */
  clock?: () => number;
  /**
   * Wall-clock milliseconds for the summaries' `time` (default: `clock`). The daemon measures
   * windows on a monotonic clock and stamps summaries with the wall clock, so that a wall clock
   * set back does not hold summaries back for as long.
   */
  wallClock?: () => number;
  /** Close windows on a timer (default true); without it, call tick(). */
  timer?: boolean;
}

interface Burst {
  windowStart: number;
  /** The first alert was sent; `untold` counts those folded in the current window, not sent yet. */
  told: TellFirst;
  firstTime: string;
  lastTime: string;
  latest: SinkRecord | null;
  /** What the burst holds, as counted in the folder's bytes. */
  bytes: number;
}

/** A burst's own fields and its entry in the map, beyond its key and latest alert. */
const BURST_BYTES = 256;

export const ALERT_FOLDER_DEFAULTS = { windowMs: 10_000, maxKeys: 10_000, maxBytes: 8 << 20 } as const;

export interface AlertFolderStats {
  /** Alerts counted into summaries rather than sent alone. */
  folded: number;
  summaries: number;
  /** Bursts being tracked now. */
  open: number;
  /** What the open bursts hold, in bytes; never more than maxBytes. */
  bytes: number;
  /** Bursts summarised (or forgotten) early because the folder was at its bound of keys or bytes. */
  evicted: number;
}

export class AlertFolder {
  private readonly windowMs: number;
  private readonly kinds: ReadonlySet<SinkRecordKind>;
  private readonly maxKeys: number;
  private readonly maxBytes: number;
  private bytes = 0;
  private evicted = 0;
  private readonly clock: () => number;
  private readonly wallClock: () => number;
  private readonly bursts = new Map<string, Burst>();
  private readonly interval: ReturnType<typeof setInterval> | null = null;
  private foldedTotal = 0;
  private summaries = 0;

  constructor(private readonly o: AlertFolderOptions) {
    this.windowMs = Math.max(1, o.windowMs ?? ALERT_FOLDER_DEFAULTS.windowMs);
    this.kinds = new Set(o.kinds ?? ["alert"]);
    this.maxKeys = Math.max(1, o.maxKeys ?? ALERT_FOLDER_DEFAULTS.maxKeys);
    this.maxBytes = Math.max(1, o.maxBytes ?? ALERT_FOLDER_DEFAULTS.maxBytes);
    this.clock = o.clock ?? Date.now;
    this.wallClock = o.wallClock ?? this.clock;
    if (o.timer !== false) {
      this.interval = setInterval(() => this.tick(), Math.min(this.windowMs, 1000));
      (this.interval as { unref?: () => void }).unref?.();
    }
  }

  /** Same shape as Sink.write, so the folder can stand in front of a SinkSet. */
  write(records: readonly SinkRecord[]): void {
    const now = this.clock();
    const out: SinkRecord[] = [];
    for (const given of records) {
      if (!this.kinds.has(given.kind) || given.count !== undefined) {
        out.push(given);
        continue;
      }
      // Cut before keying: the key holds the message.
      const r = boundedRecord(given);
      const key = foldKey(r);
      let burst = this.bursts.get(key);
      if (burst && now - burst.windowStart >= this.windowMs) {
        this.closeWindow(key, burst, now, out);
        burst = this.bursts.get(key);
      }
      if (!burst) {
        const bytes = BURST_BYTES + 2 * key.length;
        this.makeRoom(bytes, now, out);
        burst = { windowStart: now, told: new TellFirst(), firstTime: r.time, lastTime: r.time, latest: null, bytes };
        this.bursts.set(key, burst);
        this.bytes += bytes;
      }
      if (burst.told.add()) {
        out.push(r);
        continue;
      }
      // The first alert folded in this window starts its summary's span.
      if (burst.told.untold === 1) burst.firstTime = r.time;
      burst.lastTime = r.time;
      this.setLatest(burst, r);
      this.foldedTotal++;
      // The new latest alert may be bigger than the one before: back under the bound, oldest first
      // (which may be this very burst; then its summary goes out now).
      if (this.bytes > this.maxBytes) this.makeRoom(0, now, out);
    }
    this.send(out);
  }

  /** Sends the summaries of windows that have closed. */
  tick(): void {
    const now = this.clock();
    const out: SinkRecord[] = [];
    for (const [key, burst] of this.bursts) if (now - burst.windowStart >= this.windowMs) this.closeWindow(key, burst, now, out);
    this.send(out);
  }

  /** Sends every pending summary now, whatever its window (before stopping, or on demand). */
  flush(): void {
    const now = this.clock();
    const out: SinkRecord[] = [];
    for (const burst of this.bursts.values()) {
      if (burst.told.untold > 0) {
        out.push(this.summary(burst, now));
        this.setLatest(burst, null);
        burst.windowStart = now;
      }
    }
    this.send(out);
  }

  /** Flushes and stops the timer. */
  close(): void {
    if (this.interval) clearInterval(this.interval);
    this.flush();
    this.bursts.clear();
    this.bytes = 0;
  }

  stats(): AlertFolderStats {
    return { folded: this.foldedTotal, summaries: this.summaries, open: this.bursts.size, bytes: this.bytes, evicted: this.evicted };
  }

  /** A window ends: a summary when alerts were folded (and a new window begins), else forget. */
  private closeWindow(key: string, burst: Burst, now: number, out: SinkRecord[]): void {
    if (burst.told.untold === 0) {
      this.forget(key, burst);
      return;
    }
    out.push(this.summary(burst, now));
    this.setLatest(burst, null);
    burst.windowStart = now;
  }

  /**
   * Summarises and forgets the oldest bursts until a new one of `bytes` fits under both bounds
   * (`bytes` 0: until the folder is back under its bound of bytes).
   */
  private makeRoom(bytes: number, now: number, out: SinkRecord[]): void {
    const keys = bytes > 0 ? 1 : 0;
    while (this.bursts.size > 0 && (this.bursts.size + keys > this.maxKeys || this.bytes + bytes > this.maxBytes)) {
      const [key, burst] = this.bursts.entries().next().value!;
      if (burst.told.untold > 0) out.push(this.summary(burst, now));
      this.forget(key, burst);
      this.evicted++;
    }
  }

  private setLatest(burst: Burst, r: SinkRecord | null): void {
    const before = burst.latest ? recordBytes(burst.latest) : 0;
    const after = r ? recordBytes(r) : 0;
    burst.latest = r;
    burst.bytes += after - before;
    this.bytes += after - before;
  }

  private forget(key: string, burst: Burst): void {
    this.bursts.delete(key);
    this.bytes -= burst.bytes;
  }

  private summary(burst: Burst, now: number): SinkRecord {
    this.summaries++;
    return { ...burst.latest!, time: new Date(this.wallClock()).toISOString(), count: burst.told.take(), firstTime: burst.firstTime, lastTime: burst.lastTime };
  }

  private send(out: SinkRecord[]): void {
    if (out.length > 0) this.o.emit(out);
  }
}

/** Same rule, same message, same process. */
export function foldKey(r: SinkRecord): string {
  const pid = r.process?.pid ?? r.endpoint?.process?.pid ?? "-";
  return `${r.kind}\u0000${r.rule ?? ""}\u0000${pid}\u0000${r.message}`;
}
