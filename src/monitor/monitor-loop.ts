/**
 * Drives a Monitor on a timer: a refresh every interval, destroy notices collected in between,
 * pause and resume, and an interval that can change while running. With the sensor running, the
 * refresh every interval is partial (what the sensor does not cover) and a full one, the resync,
 * comes every resync period and at once after lost sensor changes. Timers are injectable so the
 * live view and the daemon can be run in tests without waiting.
 */
import type { Monitor } from "./monitor.ts";
import type { EndpointEvent } from "./events.ts";
import { realTimers, type Timers } from "../timers.ts";

export const MIN_INTERVAL_MS = 100;
export const MAX_INTERVAL_MS = 3_600_000;
export const MIN_RESYNC_MS = 1000;
export const MAX_RESYNC_MS = 86_400_000;
/**
 * Full refreshes with the sensor running. A full dump costs in proportion to the sockets: 0.45 s
 * of CPU at 100k sockets, measured on a busy 2-core machine (a UDP-only dump between, 0.3 ms).
 * What only a full dump corrects (changes the sensor missed without counting them lost) is at
 * most one period old; where the period was not asked for, RESYNC_TIME_SHARE may lengthen it.
 */
export const DEFAULT_RESYNC_MS = 30_000;
/**
 * Where no resync period was asked for (resyncAdaptive), the share of the time full refreshes may
 * take: the period grows past DEFAULT_RESYNC_MS where one costs more than this allows. A watcher
 * of 100k idle sockets spent 2.6-3.0% of a core, most of it in a full dump of 0.6-0.8 s every
 * 30 s (busy 2-core machine); at 1% such a machine is resynced every 60-80 s, a machine of 10k
 * sockets (a dump of ~70 ms) still every 30 s. Lost changes still bring one at once.
 */
export const RESYNC_TIME_SHARE = 0.01;
/** How often destroy notices are read between refreshes. */
const COLLECT_EVERY_MS = 100;
/**
 * The share of wall time full collections after refreshes may take. A full collection costs in
 * proportion to what is alive (about 25 ms at 100k endpoints on the reference machine), so how
 * often one runs follows what the last one cost.
 */
const FULL_COLLECTION_SHARE = 0.05;
/**
 * With collectAfterRefresh "when-grown": growth of the resident set since the last full
 * collection that makes another one due. A watcher of 100k idle sockets spent 3-4% of a core in
 * full collections the share rule allowed every 1-6 s (40-300 ms each, busy 2-core machine), all
 * finding nothing to free: memory that does not grow has nothing to give back. A daemon keeps the
 * share rule: its rules and outputs make garbage all the time (much of it strings outside the
 * collector's heap figures), and under this rule its memory-ceiling test rose from ~200 to
 * 250-295 MiB under load.
 */
const FULL_COLLECTION_GROWTH_BYTES = 32 << 20;
const FULL_COLLECTION_GROWTH_SHARE = 0.25;
/**
 * Under churn the sensor's changes are held this long after a batch was handled, so that each
 * call into the rules carries many events: every call costs a round trip to each rule runner,
 * which at 500 new connections a second, a few events a call, kept the daemon and its runners
 * busy most of the time. Only after COALESCE_AFTER batches in a row, each within this long of
 * the last: the first change after quiet, and those that follow it (a connect's SYN_SENT, then
 * ESTABLISHED, then the close a rule asked for: about three batches a connection), still go at
 * once, also for a few connections in quick succession.
 */
export const COALESCE_MS = 25;
export const COALESCE_AFTER = 16;

/** Where a batch of events came from: a refresh (a snapshot), or the sensor between refreshes. */
export type EventOrigin = "refresh" | "sensor";

export interface MonitorLoopOptions {
  intervalMs: number;
  /**
   * A refresh's events, or the sensor's between refreshes. Work that returns a promise holds the
   * next refresh until it settles: refreshes never overlap, and events are handed on in order.
   */
  onEvents(events: EndpointEvent[], origin: EventOrigin): void | Promise<void>;
  onError(err: unknown): void;
  /**
   * With the sensor running, milliseconds between full refreshes (default DEFAULT_RESYNC_MS);
   * the refreshes every interval in between are partial. Without the sensor every refresh is full.
   */
  resyncMs?: number;
  /**
   * The resync period was not asked for: it is at least what keeps full refreshes within
   * RESYNC_TIME_SHARE of the time, measured on the last one. An asked-for period is kept exactly.
   */
  resyncAdaptive?: boolean;
  timers?: Timers;
  clock?: () => number;
  /** The process's resident bytes (test seam); by default read from the OS. */
  residentBytes?: () => number;
  /**
   * Collect garbage after each refresh: a young-generation collection, and a full one when the
   * last one is long enough ago (see FULL_COLLECTION_SHARE) and, with "when-grown", only when the
   * process grew since (FULL_COLLECTION_GROWTH_BYTES). A refresh makes its garbage all at once (a
   * snapshot's worth of records and keys); collecting it then keeps a long-running process's
   * memory near its live size. Young collections alone did not: a daemon over 40k sockets grew
   * from 140 to 370 MiB between the collector's own full passes, and a full pass after every 1 s
   * refresh held it at 142 MiB for no measurable CPU.
   */
  collectAfterRefresh?: boolean | "when-grown";
}

/** Least time between two refreshes brought forward by lost sensor changes. */
const LOSS_REFRESH_SPACING_MS = 1000;

export class MonitorLoop {
  private intervalMs: number;
  private timer: unknown = null;
  private running = false;
  private pausedFlag = false;
  private nextRefreshAt = 0;
  private resyncMs: number;
  private resyncAdaptive: boolean;
  private nextResyncAt = 0;
  private lastLossRefreshAt = -Infinity;
  private readonly timers: Timers;
  private readonly clock: () => number;
  private nextFullCollectionAt = 0;
  /** Resident bytes after the last full collection; none yet makes the first one full. */
  private residentAfterFull = -Infinity;
  private youngCollections = 0;
  private fullCollections = 0;
  /**
   * A refresh's events are being handled (asynchronously): no refresh starts meanwhile, but
   * destroy notices are still read, so that a long handling does not overflow the kernel's queue.
   */
  private busy = false;
  /** When the last sensor batch was handled, and how many came in a row without quiet between. */
  private lastSensorDone = -Infinity;
  private sensorStreak = 0;
  private holdTimer: unknown = null;

  constructor(
    private readonly monitor: Monitor,
    private readonly options: MonitorLoopOptions,
  ) {
    this.intervalMs = clampInterval(options.intervalMs);
    this.resyncMs = clampResync(options.resyncMs ?? DEFAULT_RESYNC_MS);
    this.resyncAdaptive = options.resyncAdaptive ?? false;
    this.timers = options.timers ?? realTimers;
    this.clock = options.clock ?? (() => performance.now());
  }

  get interval(): number {
    return this.intervalMs;
  }

  get resync(): number {
    return this.resyncMs;
  }

  get paused(): boolean {
    return this.pausedFlag;
  }

  /** Garbage collections run after refreshes, by kind. */
  get collections(): { young: number; full: number } {
    return { young: this.youngCollections, full: this.fullCollections };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.nextRefreshAt = this.clock() + this.intervalMs;
    this.nextResyncAt = this.clock() + this.resyncMs;
    if (this.monitor.sensing) this.monitor.onTransitions(() => this.deliverTransitions());
    this.schedule();
  }

  /**
   * Hands on the state changes the sensor reported, at once. While paused or while a refresh's
   * events are handled they wait (in the engine's queue) for the next tick or refresh. Under
   * churn they are held for a short while after a batch (COALESCE_MS).
   */
  private deliverTransitions(): void {
    if (!this.running || this.pausedFlag || this.busy || !this.monitor.sensing) return;
    if (this.holdTimer !== null) return;
    const now = this.clock();
    if (now - this.lastSensorDone > COALESCE_MS) this.sensorStreak = 0;
    else if (this.sensorStreak >= COALESCE_AFTER) {
      this.holdTimer = this.timers.setTimeout(() => {
        this.holdTimer = null;
        // A hold that finds nothing waiting ends the streak: the next change after it goes at once.
        this.lastSensorDone = -Infinity;
        this.sensorStreak = COALESCE_AFTER;
        this.deliverNow();
      }, Math.max(1, this.lastSensorDone + COALESCE_MS - now));
      return;
    }
    this.deliverNow();
  }

  private deliverNow(): void {
    if (!this.running || this.pausedFlag || this.busy || !this.monitor.sensing) return;
    try {
      const events = this.monitor.takeTransitions();
      // Changes were lost: the next refresh is now, so the table is right again at once; but not
      // more than once a second. Under a flood that overflows the ring, back-to-back dumps kept the
      // reader from the ring and made it overflow again (12,000 changes lost in 20 s); the
      // interval's own refresh is full while a loss is pending.
      if (this.monitor.resyncDue) {
        const now = this.clock();
        if (now - this.lastLossRefreshAt >= LOSS_REFRESH_SPACING_MS) {
          this.lastLossRefreshAt = now;
          this.refreshNow();
        }
      }
      if (events.length === 0) return;
      this.sensorStreak++;
      const handled = this.options.onEvents(events, "sensor");
      if (!handled) this.lastSensorDone = this.clock();
      if (handled) {
        this.busy = true;
        // No collection here: transitions come in small batches, many a second.
        const after = () => {
          this.busy = false;
          this.lastSensorDone = this.clock();
          // Changes that came while these were handled go now, not at the next tick.
          this.deliverTransitions();
          this.reschedule();
        };
        void handled.then(after, (err: unknown) => {
          this.options.onError(err);
          after();
        });
      }
    } catch (err) {
      this.options.onError(err);
    }
  }

  stop(): void {
    this.running = false;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    if (this.holdTimer !== null) this.timers.clearTimeout(this.holdTimer);
    this.holdTimer = null;
  }

  /** While paused no refresh happens; destroy notices are still collected so none are lost. */
  pause(): void {
    this.pausedFlag = true;
  }

  resume(): void {
    if (!this.pausedFlag) return;
    this.pausedFlag = false;
    this.nextRefreshAt = this.clock();
    this.reschedule();
  }

  setInterval(ms: number): void {
    this.intervalMs = clampInterval(ms);
    this.nextRefreshAt = Math.min(this.nextRefreshAt, this.clock() + this.intervalMs);
    this.reschedule();
  }

  /** A new resync period; `adaptive` as MonitorLoopOptions.resyncAdaptive (default: as it was). */
  setResync(ms: number, adaptive?: boolean): void {
    if (adaptive !== undefined) this.resyncAdaptive = adaptive;
    this.resyncMs = clampResync(ms);
    this.nextResyncAt = Math.min(this.nextResyncAt, this.clock() + this.resyncMs);
    this.reschedule();
  }

  /** Refreshes at once (e.g. a key press); the regular rhythm continues from now. */
  refreshNow(): void {
    this.nextRefreshAt = this.clock();
    this.reschedule();
  }

  private reschedule(): void {
    if (!this.running) return;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.schedule();
  }

  private collectGarbage(): void {
    const started = this.clock();
    const resident = this.options.residentBytes ?? (() => process.memoryUsage.rss());
    const grownTo = this.residentAfterFull + Math.max(FULL_COLLECTION_GROWTH_BYTES, this.residentAfterFull * FULL_COLLECTION_GROWTH_SHARE);
    const grown = this.options.collectAfterRefresh !== "when-grown" || resident() >= grownTo;
    if (started < this.nextFullCollectionAt || !grown) {
      Bun.gc(false);
      this.youngCollections++;
      return;
    }
    Bun.gc(true);
    this.fullCollections++;
    this.nextFullCollectionAt = started + (this.clock() - started) / FULL_COLLECTION_SHARE;
    this.residentAfterFull = resident();
  }

  private schedule(): void {
    // While paused (or handling a refresh) no refresh is due, however late: only the notices are
    // read, at their pace.
    const wait = this.pausedFlag || this.busy ? COLLECT_EVERY_MS : Math.max(0, Math.min(COLLECT_EVERY_MS, this.nextDue() - this.clock()));
    this.timer = this.timers.setTimeout(() => this.tick(), wait);
  }

  /** When the next refresh of either kind is due. */
  private nextDue(): number {
    return this.monitor.sensing ? Math.min(this.nextRefreshAt, this.nextResyncAt) : this.nextRefreshAt;
  }

  private tick(): void {
    this.timer = null;
    if (!this.running) return;
    try {
      const now = this.clock();
      if (!this.pausedFlag && !this.busy && now >= this.nextDue()) {
        // The next refresh is due one interval after this one was due, not after it finished,
        // so the rhythm does not drift; a refresh that overran starts the next one at once.
        if (now >= this.nextRefreshAt) this.nextRefreshAt = Math.max(this.nextRefreshAt + this.intervalMs, now);
        // Lost changes do not move the resync rhythm: the refresh they bring forward is full.
        const resync = now >= this.nextResyncAt;
        if (resync) this.nextResyncAt = Math.max(this.nextResyncAt + this.resyncMs, now);
        const full = !this.monitor.sensing || resync;
        const began = this.clock();
        const events = this.monitor.refresh(full ? "full" : "partial");
        if (resync && this.monitor.sensing && this.resyncAdaptive) {
          // What this one cost sets the earliest the next may come.
          this.nextResyncAt = Math.max(this.nextResyncAt, began + (this.clock() - began) / RESYNC_TIME_SHARE);
        }
        const handled = this.options.onEvents(events, "refresh");
        if (handled) {
          this.busy = true;
          void handled.then(
            () => this.afterRefresh(),
            (err: unknown) => {
              this.options.onError(err);
              this.afterRefresh();
            },
          );
        } else if (this.options.collectAfterRefresh) {
          this.collectGarbage();
        }
      } else {
        this.monitor.collectClosed();
        this.deliverTransitions();
      }
    } catch (err) {
      this.options.onError(err);
    }
    if (this.running) this.schedule();
  }

  /**
   * A full collection blocks the event loop (10-76 ms measured on a loaded 2-core box), so the
   * sensor's changes wait behind it; but what the rules and outputs made since the last one is
   * garbage too, and a daemon whose rules flood its outputs passed its stated memory ceiling when
   * only full refreshes (every 30 s) were followed by one. After a partial refresh the collection
   * is a young one unless a full one is due by the time-share rule (see collectGarbage).
   */
  private afterRefresh(): void {
    this.busy = false;
    if (this.options.collectAfterRefresh) this.collectGarbage();
    this.deliverTransitions();
    // A refresh that came due meanwhile starts at once.
    this.reschedule();
  }
}

export function clampResync(ms: number): number {
  if (!Number.isFinite(ms)) return DEFAULT_RESYNC_MS;
  return Math.min(MAX_RESYNC_MS, Math.max(MIN_RESYNC_MS, ms));
}

export function clampInterval(ms: number): number {
  if (!Number.isFinite(ms)) return 1000;
  return Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, ms));
}
