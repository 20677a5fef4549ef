/**
 * The live view's state, with no terminal, no clock and no I/O, so that every behaviour can be
 * tested by feeding it events: rows keyed by the monitor's endpoint key with their highlight and
 * its age in refreshes, the sort column and direction, the filter, the selection, and the
 * switches (paused, interval, names, connected only). The controller applies monitor events
 * and key presses to it; the renderer draws it.
 *
 * Rows are keyed by endpoint key (the kernel's socket cookie), never by PID: a PID reused by a
 * new process owns new sockets, hence new rows, while the old rows keep the old process's name.
 */
import type { Endpoint } from "../../model/endpoint.ts";
import type { ProcessDetails } from "../../model/process.ts";
import { endpointKey } from "../../monitor/endpoint-key.ts";
import type { EndpointEvent } from "../../monitor/events.ts";
import { isConnected } from "../../filter/endpoint-filter.ts";
import { isBlankEndpoint } from "../blank-endpoint.ts";
import { COLUMN_IDS, compareBy, filterTerms, matchesTerms, type ColumnId, type NameMode } from "./columns.ts";

/** How many refreshes a new, changed or closed row stays highlighted (closed rows then go). */
export const HIGHLIGHT_REFRESHES = 3;

/** The intervals `+` and `-` step through, in milliseconds. */
export const INTERVAL_STEPS_MS = [250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000] as const;

export type Highlight = "new" | "changed" | "closed";

export interface LiveRow {
  readonly key: string;
  /** The endpoint as last seen; for a closed row, as it was when it closed. */
  endpoint: Endpoint;
  highlight: Highlight | null;
  /** Refreshes since the highlight was set. */
  age: number;
}

export interface PropertiesPanel {
  kind: "properties";
  /** The row's endpoint, for the panel's heading. */
  endpoint: Endpoint;
  pid: number;
  /** What /proc says now; null when the process has exited. */
  details: ProcessDetails | null;
  /** The PID now names another process than the row's (it exited and the PID was reused). */
  reused: boolean;
  scroll: number;
}

export type Overlay = { kind: "help"; scroll: number } | PropertiesPanel;

export interface Confirmation {
  action: "close-endpoint" | "end-process";
  endpoint: Endpoint;
  prompt: string;
}

export interface StatusMessage {
  text: string;
  error: boolean;
}

export interface LiveModelOptions {
  intervalMs?: number;
  names?: boolean;
  connectedOnly?: boolean;
  sortColumn?: ColumnId;
  descending?: boolean;
  /** The command line's selection (process, ports, addresses...): rows outside it never show. */
  scope?: (ep: Endpoint) => boolean;
  /** Host names found so far (filled in the background); read, never written. */
  hosts?: ReadonlyMap<string, string>;
}

export class LiveModel {
  readonly rows = new Map<string, LiveRow>();
  sortColumn: ColumnId;
  descending: boolean;
  filter = "";
  editingFilter = false;
  paused = false;
  intervalMs: number;
  namesOn: boolean;
  connectedOnly: boolean;
  overlay: Overlay | null = null;
  confirm: Confirmation | null = null;
  message: StatusMessage | null = null;
  /** Refreshes applied since the start. */
  refreshes = 0;
  /** First row on screen; kept by `fitScroll`. */
  top = 0;
  /** The table's columns as last drawn (the terminal's width decides which): `<` and `>` step through these. */
  shownColumns: readonly ColumnId[] | null = null;
  readonly hosts: ReadonlyMap<string, string>;
  private readonly scope: (ep: Endpoint) => boolean;
  private selectedKey: string | null = null;
  private cursor = 0;
  private version = 0;
  private cache: { version: number; rows: LiveRow[] } | null = null;

  constructor(options: LiveModelOptions = {}) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.namesOn = options.names ?? true;
    this.connectedOnly = options.connectedOnly ?? true;
    this.sortColumn = options.sortColumn ?? "process";
    this.descending = options.descending ?? false;
    this.scope = options.scope ?? (() => true);
    this.hosts = options.hosts ?? new Map();
  }

  get names(): NameMode {
    return { on: this.namesOn, hosts: this.hosts };
  }

  /** The endpoints that exist at start: shown without highlight, as TCPView does. */
  load(endpoints: readonly Endpoint[]): void {
    for (const ep of endpoints) this.rows.set(endpointKey(ep), { key: endpointKey(ep), endpoint: ep, highlight: null, age: 0 });
    this.changed();
  }

  /**
   * One refresh: existing highlights age by one (closed rows that reach the limit go), then the
   * refresh's events set new ones. `current`, when given, is every endpoint as of this refresh,
   * so that rows without an event still get late-found owners.
   */
  applyRefresh(events: readonly EndpointEvent[], current?: readonly Endpoint[]): void {
    this.refreshes++;
    for (const [key, row] of this.rows) {
      if (row.highlight === null) continue;
      row.age++;
      if (row.age < HIGHLIGHT_REFRESHES) continue;
      if (row.highlight === "closed") this.rows.delete(key);
      else row.highlight = null;
    }
    this.applyEvents(events);
    if (current) {
      for (const ep of current) {
        const row = this.rows.get(endpointKey(ep));
        if (row && row.highlight !== "closed") row.endpoint = ep;
      }
    }
    this.changed();
  }

  /**
   * Events the sensor reported between refreshes: they set highlights as a refresh's do, and
   * age none (highlights last a number of refreshes, however many changes come between them).
   */
  applyEvents(events: readonly EndpointEvent[]): void {
    for (const e of events) {
      const key = endpointKey(e.endpoint);
      const row = this.rows.get(key);
      if (isBlankEndpoint(e.endpoint)) {
        // A notice without addresses: a known row closes as it was last seen; no row is made of it.
        if (e.type === "closed" && row && row.highlight !== "closed") {
          row.highlight = "closed";
          row.age = 0;
        }
        continue;
      }
      switch (e.type) {
        case "opened":
          // A key seen again (an address pair reused where there is no cookie) is a new row.
          this.rows.set(key, { key, endpoint: e.endpoint, highlight: "new", age: 0 });
          break;
        case "closed":
          if (row) {
            row.endpoint = e.endpoint;
            row.highlight = "closed";
            row.age = 0;
          } else {
            this.rows.set(key, { key, endpoint: e.endpoint, highlight: "closed", age: 0 });
          }
          break;
        case "state-changed":
          if (row?.highlight === "new") {
            // Still new: a connection the sensor saw open and then establish stays green.
            row.endpoint = e.endpoint;
          } else if (row && row.highlight !== "closed") {
            row.endpoint = e.endpoint;
            row.highlight = "changed";
            row.age = 0;
          } else if (!row) {
            this.rows.set(key, { key, endpoint: e.endpoint, highlight: "changed", age: 0 });
          }
          break;
        case "counters":
          if (row && row.highlight !== "closed") row.endpoint = e.endpoint;
          break;
      }
    }
    this.changed();
  }

  /** Marks cached rows stale (e.g. host names arrived while names are shown). */
  changed(): void {
    this.version++;
  }

  /** The rows on show, filtered and sorted; the selection follows its row. */
  view(): readonly LiveRow[] {
    if (this.cache?.version !== this.version) {
      const terms = filterTerms(this.filter);
      const names = this.names;
      const rows: LiveRow[] = [];
      for (const row of this.rows.values()) {
        const ep = row.endpoint;
        if (!this.scope(ep)) continue;
        if (this.connectedOnly && !isConnected(ep)) continue;
        if (!matchesTerms(ep, terms, names)) continue;
        rows.push(row);
      }
      const order = compareBy(this.sortColumn, this.descending);
      rows.sort((a, b) => order(a.endpoint, b.endpoint) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      this.cache = { version: this.version, rows };
      this.syncSelection(rows);
    }
    return this.cache.rows;
  }

  private syncSelection(rows: readonly LiveRow[]): void {
    const at = this.selectedKey === null ? -1 : rows.findIndex((r) => r.key === this.selectedKey);
    // A selected row that went (closed and aged out, or filtered away) hands the selection to
    // whatever row now stands where it stood.
    this.cursor = at >= 0 ? at : Math.max(0, Math.min(this.cursor, rows.length - 1));
    this.selectedKey = rows[this.cursor]?.key ?? null;
  }

  /** Index of the selected row in `view()`; 0 when there are no rows. */
  cursorIndex(): number {
    this.view();
    return this.cursor;
  }

  selected(): LiveRow | null {
    const rows = this.view();
    return rows[this.cursor] ?? null;
  }

  /** Moves the selection by `delta` rows, stopping at either end. */
  move(delta: number): void {
    this.moveTo(this.cursorIndex() + delta);
  }

  moveTo(index: number): void {
    const rows = this.view();
    this.cursor = Math.max(0, Math.min(index, rows.length - 1));
    this.selectedKey = rows[this.cursor]?.key ?? null;
  }

  /** Keeps the selected row within the `pageSize` rows on screen, scrolling as little as possible. */
  fitScroll(pageSize: number): void {
    this.top = scrollTop(this.top, this.cursorIndex(), Math.max(1, pageSize), this.view().length);
  }

  /** Sort by a column; choosing the current sort column again reverses the direction. */
  sortBy(id: ColumnId): void {
    if (id === this.sortColumn) this.descending = !this.descending;
    else {
      this.sortColumn = id;
      this.descending = false;
    }
    this.changed();
  }

  /**
   * The column on show left (-1) or right (+1) of the current sort column, ascending. A column
   * the terminal's width or an empty namespace column keeps off the screen is passed over: sorting
   * by it would order the rows by something no one can see.
   */
  shiftSort(step: -1 | 1): void {
    const shown = this.shownColumns ?? COLUMN_IDS;
    const n = COLUMN_IDS.length;
    let i = COLUMN_IDS.indexOf(this.sortColumn);
    for (let tries = 0; tries < n; tries++) {
      i = (i + step + n) % n;
      if (shown.includes(COLUMN_IDS[i]!)) break;
    }
    this.sortColumn = COLUMN_IDS[i]!;
    this.descending = false;
    this.changed();
  }

  reverseSort(): void {
    this.descending = !this.descending;
    this.changed();
  }

  setFilter(text: string): void {
    this.filter = text;
    this.changed();
  }

  toggleNames(): void {
    this.namesOn = !this.namesOn;
    this.changed();
  }

  toggleConnectedOnly(): void {
    this.connectedOnly = !this.connectedOnly;
    this.changed();
  }

  /** The next longer (+1) or shorter (-1) interval of INTERVAL_STEPS_MS. */
  stepInterval(step: -1 | 1): number {
    const steps = INTERVAL_STEPS_MS;
    let i: number;
    if (step > 0) {
      i = steps.findIndex((s) => s > this.intervalMs);
      if (i < 0) i = steps.length - 1;
    } else {
      i = steps.length - 1;
      while (i > 0 && steps[i]! >= this.intervalMs) i--;
    }
    this.intervalMs = steps[i]!;
    return this.intervalMs;
  }

  /** Counts for the title line: rows on show, and rows the filter and "connected" could show. */
  counts(): { shown: number; total: number } {
    let total = 0;
    for (const row of this.rows.values()) if (this.scope(row.endpoint)) total++;
    return { shown: this.view().length, total };
  }
}

/** The first row to show so that `cursor` is on a page of `pageSize` rows out of `count`. */
export function scrollTop(top: number, cursor: number, pageSize: number, count: number): number {
  let t = top;
  if (cursor < t) t = cursor;
  if (cursor >= t + pageSize) t = cursor - pageSize + 1;
  // No empty space below the last row while there are rows above the top.
  t = Math.min(t, Math.max(0, count - pageSize));
  return Math.max(0, t);
}

/**
 * Whether a process read now is the one a row was listed with: same PID is not enough, since a
 * PID is reused once its process exits; the start time tells them apart.
 */
export function sameProcess(listedStartTime: string | null, nowStartTime: string | null): boolean {
  return listedStartTime === null || nowStartTime === null || listedStartTime === nowStartTime;
}
