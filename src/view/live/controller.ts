/**
 * Runs the live view: a Monitor refreshed by a MonitorLoop feeds the model, keys from the
 * terminal change it or ask for actions, and every change is drawn. Everything outside is
 * injected (monitor, terminal, actions, process details, host names, timers, clock), so the whole
 * view runs in tests on fakes.
 *
 * The terminal is restored on every way out: `q`, Ctrl+C, end of input, `stop()` (signals) and
 * `fail()` (errors caught here or reported by the caller's uncaught-error handler).
 */
import type { Endpoint } from "../../model/endpoint.ts";
import type { ProcessDetails } from "../../model/process.ts";
import type { EndpointEvent } from "../../monitor/events.ts";
import type { Monitor } from "../../monitor/monitor.ts";
import { MonitorLoop, type EventOrigin } from "../../monitor/monitor-loop.ts";
import { realTimers, type Timers } from "../../timers.ts";
import { SCREEN, SGR } from "./ansi.ts";
import type { ColumnId } from "./columns.ts";
import { handleKey, type LiveCommand } from "./key-handler.ts";
import { parseKeys } from "./keys.ts";
import { LiveModel, sameProcess } from "./model.ts";
import { bodyHeight, renderScreen } from "./render.ts";
import type { LiveTerminal } from "./terminal.ts";


/** How often destroy notices are read while paused, as the loop does between refreshes. */
const COLLECT_EVERY_MS = 100;
/**
 * Least time between two draws for the sensor's changes: they are taken into the table at once,
 * but a burst of them (hundreds a second) is drawn as one screen, not one screen per change.
 */
const SENSOR_DRAW_GAP_MS = 50;

export interface ActionResult {
  ok: boolean;
  message: string;
}

/** Closing a connection and ending a process, as the view asks for them after confirmation. */
export interface LiveActions {
  closeEndpoint(ep: Endpoint): Promise<ActionResult>;
  endProcess(ep: Endpoint): Promise<ActionResult>;
}

/** Host names resolved in the background; `hosts` fills in as answers come. */
export interface HostNameSource {
  readonly hosts: ReadonlyMap<string, string>;
  want(endpoints: Iterable<Endpoint>): void;
  close(): void;
}

export interface LiveOptions {
  monitor: Monitor;
  terminal: LiveTerminal;
  actions: LiveActions;
  processDetails(pid: number): ProcessDetails | null;
  hostNames?: HostNameSource;
  intervalMs: number;
  /** With the sensor running, ms between full snapshots (MonitorLoop's resyncMs). */
  resyncMs?: number;
  names: boolean;
  connectedOnly: boolean;
  sortColumn?: ColumnId;
  /** The command line's selection; rows outside it never show. */
  scope?: (ep: Endpoint) => boolean;
  colour: boolean;
  /** Show the monitor's notes (why owners or short connections may be missing) at start. */
  notes?: boolean;
  hostName?: string;
  timers?: Timers;
  /** Monotonic clock for the loop. */
  clock?: () => number;
  /** Wall clock for "started ... ago". */
  now?: () => number;
}

export class LiveController {
  readonly model: LiveModel;
  private loop: MonitorLoop | null = null;
  private done = false;
  private settle: { resolve(): void; reject(err: unknown): void } | null = null;
  private hostsSeen = 0;
  private collectTimer: unknown = null;
  private drawTimer: unknown = null;
  private lastDrawAt = -Infinity;

  constructor(private readonly o: LiveOptions) {
    this.model = new LiveModel({
      intervalMs: o.intervalMs,
      names: o.names,
      connectedOnly: o.connectedOnly,
      sortColumn: o.sortColumn,
      scope: o.scope,
      hosts: o.hostNames?.hosts,
    });
  }

  /** Shows the view until the user quits; rejects (with the terminal restored) on an error. */
  run(): Promise<void> {
    const { monitor, terminal } = this.o;
    return new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
      try {
        const initial = monitor.start();
        this.model.load(initial);
        if (this.o.notes !== false && monitor.notes.length > 0) {
          this.model.message = { text: `note: ${monitor.notes.join("; ")}`, error: false };
        }
        if (this.model.namesOn) this.o.hostNames?.want(initial);
        terminal.open({
          onData: (data) => this.guard(() => this.onInput(data)),
          onResize: () => this.guard(() => this.redraw()),
          onEnd: () => this.stop(),
        });
        this.loop = new MonitorLoop(monitor, {
          intervalMs: this.model.intervalMs,
          resyncMs: this.o.resyncMs,
          onEvents: (events, origin) => this.guard(() => this.onEvents(events, origin)),
          // A failed refresh (e.g. a transient netlink error) is shown; the next one is tried.
          onError: (err) => this.guard(() => this.show(`refresh failed: ${(err as Error).message}`, true)),
          timers: this.o.timers,
          clock: this.o.clock,
        });
        this.loop.start();
        this.draw();
      } catch (err) {
        this.fail(err);
      }
    });
  }

  /** Leaves the view normally (a signal, end of input). */
  stop(): void {
    this.finish(null);
  }

  /** Leaves the view because of an error: the terminal is restored, then run() rejects. */
  fail(err: unknown): void {
    this.finish(err ?? new Error("unknown error"));
  }

  private finish(err: unknown): void {
    if (this.done) return;
    this.done = true;
    this.loop?.stop();
    this.stopCollecting();
    if (this.drawTimer !== null) this.timers.clearTimeout(this.drawTimer);
    this.drawTimer = null;
    this.o.terminal.restore();
    this.o.hostNames?.close();
    try {
      this.o.monitor.close();
    } catch {
      // Closing is best effort; the process is about to end.
    }
    if (err === null) this.settle?.resolve();
    else this.settle?.reject(err);
  }

  private guard(fn: () => void): void {
    if (this.done) return;
    try {
      fn();
    } catch (err) {
      this.fail(err);
    }
  }

  private get timers(): Timers {
    return this.o.timers ?? realTimers;
  }

  private get now(): number {
    return (this.o.clock ?? (() => performance.now()))();
  }

  private onEvents(events: EndpointEvent[], origin: EventOrigin = "refresh"): void {
    if (origin === "sensor") this.model.applyEvents(events);
    else this.model.applyRefresh(events, this.o.monitor.current());
    if (this.model.namesOn) this.o.hostNames?.want(events.map((e) => e.endpoint));
    if (origin === "sensor") this.drawSoon();
    else this.draw();
  }

  /** Draws now, or once SENSOR_DRAW_GAP_MS has passed since the last draw. */
  private drawSoon(): void {
    if (this.drawTimer !== null) return;
    const wait = this.lastDrawAt + SENSOR_DRAW_GAP_MS - this.now;
    if (wait <= 0) {
      this.draw();
      return;
    }
    this.drawTimer = this.timers.setTimeout(() => {
      this.drawTimer = null;
      this.guard(() => this.draw());
    }, wait);
  }

  private onInput(data: string): void {
    const page = bodyHeight(this.o.terminal.size().rows);
    for (const key of parseKeys(data)) {
      const command = handleKey(this.model, key, page);
      if (command) this.execute(command);
      if (this.done) return;
    }
    this.draw();
  }

  private execute(command: LiveCommand): void {
    const loop = this.loop!;
    switch (command.type) {
      case "quit":
        this.stop();
        return;
      case "pause":
        if (command.paused) this.pause(loop);
        else this.resume(loop);
        return;
      case "interval":
        loop.setInterval(command.ms);
        return;
      case "refresh":
        // TCPView refreshes on F5 even while paused; the loop does not, so refresh directly.
        if (this.model.paused) this.onEvents(this.o.monitor.refresh());
        else loop.refreshNow();
        return;
      case "names":
        if (command.on) this.o.hostNames?.want([...this.model.rows.values()].map((r) => r.endpoint));
        return;
      case "properties":
        this.openProperties(command.endpoint);
        return;
      case "close-endpoint":
        this.runAction(`closing the connection…`, () => this.o.actions.closeEndpoint(command.endpoint));
        return;
      case "end-process":
        this.runAction(`ending ${command.endpoint.process?.name ?? "the process"}…`, () => this.o.actions.endProcess(command.endpoint));
        return;
      case "redraw":
        this.redraw();
        return;
    }
  }

  /**
   * Paused, the loop is stopped and no refresh runs until F5 or resume; destroy notices are
   * still read every 100 ms so that none are lost before the next refresh.
   */
  private pause(loop: MonitorLoop): void {
    loop.stop();
    const timers = this.o.timers ?? realTimers;
    const collect = () => {
      this.collectTimer = timers.setTimeout(() => {
        this.guard(() => this.o.monitor.collectClosed());
        if (this.model.paused && !this.done) collect();
      }, COLLECT_EVERY_MS);
    };
    collect();
  }

  private resume(loop: MonitorLoop): void {
    this.stopCollecting();
    loop.start();
    loop.refreshNow();
  }

  private stopCollecting(): void {
    if (this.collectTimer !== null) (this.o.timers ?? realTimers).clearTimeout(this.collectTimer);
    this.collectTimer = null;
  }

  private openProperties(ep: Endpoint): void {
    const listed = ep.process;
    if (!listed) return;
    const details = this.o.processDetails(listed.pid);
    this.model.overlay = {
      kind: "properties",
      endpoint: ep,
      pid: listed.pid,
      details,
      reused: details !== null && !sameProcess(listed.startTime, details.startTime),
      scroll: 0,
    };
  }

  private runAction(pending: string, action: () => Promise<ActionResult>): void {
    this.show(pending, false);
    let result: Promise<ActionResult>;
    try {
      result = action();
    } catch (err) {
      result = Promise.resolve({ ok: false, message: (err as Error).message });
    }
    result.then(
      (r) =>
        this.guard(() => {
          this.show(r.message, !r.ok);
          // Show the result of the action at once, unless the user froze the table.
          if (r.ok && !this.model.paused) this.loop?.refreshNow();
          this.draw();
        }),
      (err) => this.guard(() => this.show((err as Error).message, true)),
    );
  }

  private show(text: string, error: boolean): void {
    this.model.message = { text, error };
    this.draw();
  }

  private redraw(): void {
    this.o.terminal.write(SCREEN.clear);
    this.draw();
  }

  private draw(): void {
    if (this.done) return;
    this.lastDrawAt = this.now;
    const hosts = this.o.hostNames?.hosts;
    if (hosts && hosts.size !== this.hostsSeen) {
      this.hostsSeen = hosts.size;
      if (this.model.namesOn) this.model.changed();
    }
    const { columns, rows } = this.o.terminal.size();
    this.model.fitScroll(bodyHeight(rows));
    const lines = renderScreen(this.model, {
      width: columns,
      height: rows,
      colour: this.o.colour,
      now: (this.o.now ?? Date.now)(),
      hostName: this.o.hostName,
    });
    this.o.terminal.write(SCREEN.home + lines.map((l) => l + SGR.reset + SCREEN.clearToEnd).join("\r\n"));
  }
}
