/**
 * Repeated faults told with a count, not once per occurrence. The first occurrence of an episode
 * is told at once; further ones are counted, and told as one line per period while they go on
 * ("12 more times in the last 60 s, 13 in all"); the episode ends when the caller says the thing
 * works again, or after a quiet period, with a last line if there is something left to tell.
 * Periods are measured on a monotonic clock, so a wall-clock jump neither stalls nor floods them.
 */
import { TellFirst } from "../text/tell-first.ts";

export type FaultLineKind = "first" | "repeat" | "end";

export interface FaultLine<T> {
  kind: FaultLineKind;
  key: string;
  /** The text to show, with the counts in it. */
  text: string;
  /** Occurrences this line stands for that no earlier line told. */
  count: number;
  /** Occurrences in the episode so far. */
  total: number;
  /** What the latest occurrence carried (its detail and the caller's data). */
  detail: string;
  data: T | undefined;
}

export interface FaultReporterOptions<T> {
  emit(line: FaultLine<T>): void;
  /** At most one line per fault this often while it goes on (default 60 s). */
  periodMs?: number;
  /** A fault not seen for this long has ended (default: periodMs). */
  quietMs?: number;
  /** Milliseconds, monotonic (test seam; default performance.now). */
  clock?: () => number;
}

interface Episode<T> {
  told: TellFirst;
  started: number;
  lastSeen: number;
  lastLine: number;
  detail: string;
  data: T | undefined;
}

export class FaultReporter<T = undefined> {
  private readonly episodes = new Map<string, Episode<T>>();
  private readonly totals = new Map<string, number>();
  private readonly periodMs: number;
  private readonly quietMs: number;
  private readonly clock: () => number;

  constructor(private readonly o: FaultReporterOptions<T>) {
    this.periodMs = Math.max(1, o.periodMs ?? 60_000);
    this.quietMs = Math.max(1, o.quietMs ?? this.periodMs);
    this.clock = o.clock ?? (() => performance.now());
  }

  /** `n` occurrences of fault `key` now; `detail` says what went wrong this time. */
  fault(key: string, detail: string, n = 1, data?: T): void {
    if (n <= 0) return;
    const now = this.clock();
    this.totals.set(key, (this.totals.get(key) ?? 0) + n);
    let e = this.episodes.get(key);
    if (!e) {
      e = { told: new TellFirst(), started: now, lastSeen: now, lastLine: now, detail, data };
      this.episodes.set(key, e);
    }
    e.lastSeen = now;
    e.detail = detail;
    e.data = data;
    if (e.told.add(n)) {
      this.send("first", key, `${key}: ${detail}${n > 1 ? ` (${n} times)` : ""}`, n, n, detail, data);
      return;
    }
    if (now - e.lastLine >= this.periodMs) this.repeat(key, e, now);
  }

  /** The thing works again: the episode ends with a line saying how many times it failed. */
  ok(key: string, recovered = "works again"): void {
    const e = this.episodes.get(key);
    if (!e) return;
    this.episodes.delete(key);
    const secs = seconds(this.clock() - e.started);
    const { total, untold } = e.told;
    this.send("end", key, `${key} ${times(total)} in ${secs} s${untold ? ` (${untold} not told before)` : ""}; ${recovered}`, untold, total, e.detail, e.data);
  }

  /** Tells what is due: counts of faults that go on, and ends of those that went quiet. */
  tick(): void {
    const now = this.clock();
    for (const [key, e] of this.episodes) {
      if (now - e.lastSeen >= this.quietMs) {
        this.episodes.delete(key);
        if (e.told.untold > 0) this.repeat(key, e, now, true);
      } else if (e.told.untold > 0 && now - e.lastLine >= this.periodMs) {
        this.repeat(key, e, now);
      }
    }
  }

  /** Tells every count not told yet (before stopping, or before a line that must follow them). */
  flush(key?: string): void {
    const now = this.clock();
    for (const [k, e] of this.episodes) {
      if (key !== undefined && k !== key) continue;
      if (e.told.untold > 0) this.repeat(k, e, now);
    }
    if (key !== undefined) this.episodes.delete(key);
  }

  /** True while an episode of the fault is open. */
  ongoing(key: string): boolean {
    return this.episodes.has(key);
  }

  /** Occurrences of a fault since the start, told or not. */
  total(key: string): number {
    return this.totals.get(key) ?? 0;
  }

  private repeat(key: string, e: Episode<T>, now: number, ended = false): void {
    const span = seconds(now - e.lastLine);
    const count = e.told.take();
    const text = `${key}: ${times(count, "more ")} in the last ${span} s, ${e.told.total} in all${ended ? ", then no more" : ""}: ${e.detail}`;
    e.lastLine = now;
    this.send(ended ? "end" : "repeat", key, text, count, e.told.total, e.detail, e.data);
  }

  private send(kind: FaultLineKind, key: string, text: string, count: number, total: number, detail: string, data: T | undefined): void {
    try {
      this.o.emit({ kind, key, text, count, total, detail, data });
    } catch {
      // Telling about a fault must not become one.
    }
  }
}

function times(n: number, more = ""): string {
  return `${n} ${more}time${n === 1 ? "" : "s"}`;
}

function seconds(ms: number): string {
  const s = ms / 1000;
  return s >= 10 ? String(Math.round(s)) : s.toFixed(1);
}
