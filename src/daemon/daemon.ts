/**
 * The watch-and-act daemon: engine -> monitor -> rules -> actions -> sinks and the audit log.
 * Rules' requests pass through protection and per-rule rate limits before anything is touched;
 * with dry-run nothing is, and every decision is still recorded.
 */
import type { Endpoint } from "../model/endpoint.ts";
import type { SocketEngine } from "../engine/types.ts";
import { Monitor } from "../monitor/monitor.ts";
import { MonitorLoop, type EventOrigin } from "../monitor/monitor-loop.ts";
import { requiresSensor, wantsTransitions } from "../monitor/sensor-choice.ts";
import type { Timers } from "../timers.ts";
import type { EndpointEvent } from "../monitor/events.ts";
import type { AuditLog } from "../actions/audit-log.ts";
import type { SinkRecord } from "../outputs/index.ts";
import type { DaemonConfig } from "./config.ts";
import { disposeRuleState, inRuleDirectory, loadRuleState, rescanRuleDirectories, wantsCounters, type RuleState } from "./rule-state.ts";
import { hiddenOwnerWarnings } from "./hidden-owners.ts";
import { ActionExecutor } from "./action-executor.ts";
import { Metrics } from "./metrics.ts";
import { METRICS } from "./metric-catalogue.ts";
import { DaemonFaults } from "./daemon-faults.ts";
import { tracing } from "../trace.ts";
import { endpointsByState, traceBatch } from "./batch-figures.ts";

/** What the daemon tells its sinks. */
export type DaemonRecord = SinkRecord;

export interface DaemonOptions {
  config: DaemonConfig;
  createEngine: () => SocketEngine;
  emit: (records: DaemonRecord[]) => void;
  audit: AuditLog;
  metrics?: Metrics;
  /** Reports the daemon's own troubles (a failed refresh, a watcher that stopped). */
  warn?: (message: string) => void;
  watchRuleFiles?: boolean;
  /** How often a fault that goes on is told again, with its count (default 60 s; test seam). */
  faultReportMs?: number;
  /** The refresh loop's timers (test seam; default the real setTimeout/clearTimeout). */
  timers?: Timers;
  /** Milliseconds, monotonic, for the refresh rhythm, fault periods, clock-jump checks and rate limits (test seam; default performance.now). */
  clock?: () => number;
}

export class Daemon {
  readonly metrics: Metrics;
  private config: DaemonConfig;
  private engine: SocketEngine | null = null;
  private monitor: Monitor | null = null;
  private loop: MonitorLoop | null = null;
  private state: RuleState | null = null;
  /** Protection, rate limits, dry run, then the close or kill, the audit line and the record. */
  private readonly actions: ActionExecutor;
  private stopped = false;
  /** Refresh failures, lost notices, clock jumps and rules' repeated failures, told with counts. */
  private readonly faults: DaemonFaults;
  /** The handling of the last refresh's events (rules run in their own processes). */
  private handling: Promise<void> = Promise.resolve();
  private readonly clock: () => number;
  /** Swaps of the rule set (reloads, rule directories' changes), one after another. */
  private swaps: Promise<unknown> = Promise.resolve();
  /** Rule sets replaced by a swap, still handling the events they were given before it. */
  private readonly retiring = new Set<RuleState>();

  constructor(private readonly options: DaemonOptions) {
    this.config = options.config;
    this.metrics = options.metrics ?? new Metrics();
    this.clock = options.clock ?? (() => performance.now());
    this.actions = new ActionExecutor({
      policy: this.config,
      engine: () => this.engine,
      known: () => this.monitor?.table().values() ?? [],
      audit: options.audit,
      metrics: this.metrics,
      emit: (records) => this.options.emit(records),
      clock: this.clock,
    });
    this.faults = new DaemonFaults({
      periodMs: options.faultReportMs ?? 60_000,
      clock: this.clock,
      metrics: this.metrics,
      warn: (l) => this.options.warn?.(l),
      emit: (records) => this.options.emit(records),
      lost: () => ({ notices: this.monitor?.lostNotices() ?? 0, transitions: this.monitor?.lostTransitions() ?? 0 }),
    });
  }

  /** Loads the rules (throws when one does not load), takes the first look, starts the loop. */
  async start(): Promise<void> {
    this.state = await this.loadRules(this.config);
    this.engine = this.options.createEngine();
    const monitor = (this.monitor = new Monitor({
      engine: this.engine,
      request: { protocols: new Set(["tcp", "udp"]), families: new Set([4, 6]), withProcesses: true },
      transitions: wantsTransitions(this.config.sensor),
      requireSensor: requiresSensor(this.config.sensor),
      counters: wantsCounters(this.state.rules),
    }));
    const initial = monitor.start();
    // After the first look, so that its notes (e.g. processes that cannot be read) are told too.
    for (const n of this.monitor.notes) this.options.warn?.(n);
    for (const n of hiddenOwnerWarnings(this.state.rules.loaded, initial, this.monitor.unreadableProcesses)) this.options.warn?.(n);
    this.state.rules.followKnownEndpoints(() => monitor.table());
    this.actions.execute(await this.state.rules.start(initial));
    this.updateGauges(initial);
    this.loop = new MonitorLoop(this.monitor, {
      intervalMs: this.config.interval * 1000,
      resyncMs: this.config.resync * 1000,
      resyncAdaptive: !this.config.resyncAsked,
      onEvents: (events, origin) => (this.handling = this.onEvents(events, origin)),
      collectAfterRefresh: true,
      timers: this.options.timers,
      clock: this.clock,
      onError: (err) => this.faults.refreshFailed(err),
    });
    this.loop.start();
  }

  private loadRules(config: DaemonConfig): Promise<RuleState> {
    let state: RuleState | null = null;
    const onFileChange = this.options.watchRuleFiles === false ? null : (label: string, present: boolean) => {
      if (state !== null) this.ruleFileChanged(state, label, present);
    };
    return loadRuleState(config, { onReport: (r) => this.faults.ruleReport(r), onFileChange, warn: (m) => this.options.warn?.(m) }).then((loaded) => (state = loaded));
  }

  /**
   * A watched file changed, appeared or went: a loaded rule's file is reloaded alone; a file that
   * appears in or goes from a rule directory brings the rules from the configuration again.
   */
  private ruleFileChanged(state: RuleState, label: string, present: boolean): void {
    if (this.state !== state || this.stopped) return;
    const loaded = state.rules.loaded.some((r) => r.label === label);
    if (loaded && present) void state.rules.reload(label);
    else if (loaded !== present && inRuleDirectory(state, label)) void this.serially(() => this.rescanDirectories());
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.swaps.then(work);
    this.swaps = run.catch(() => {});
    return run;
  }

  /**
   * Loads the rules again with the rule directories' files as they are now. A new file that does
   * not load is told, and the rules running go on as they were.
   */
  private async rescanDirectories(): Promise<void> {
    const before = this.state;
    if (!before || this.stopped) return;
    const config = this.config;
    const rescan = await rescanRuleDirectories(before, config, (c) => this.loadRules(c));
    if (rescan.next && !(await this.swapRules(rescan.next, config))) return;
    for (const r of rescan.reports) this.faults.ruleReport(r);
  }

  /**
   * Applies a new configuration (SIGHUP). If its rules do not all load, nothing changes and the
   * error is thrown for the caller to report: the running configuration goes on.
   */
  reload(config: DaemonConfig): Promise<void> {
    return this.serially(async () => {
      const next = await this.loadRules(config);
      if (await this.swapRules(next, config)) this.metrics.inc(METRICS.reloads);
    });
  }

  /** Hands the running to `next`; false when the daemon stopped meanwhile. */
  private async swapRules(next: RuleState, config: DaemonConfig): Promise<boolean> {
    // The events the old rules are handling finish with them, and their actions are carried
    // out: those events will not come again, and the new rules would never see them.
    await this.idle();
    if (this.stopped) {
      // Stopped while the new rules were loading: nothing is running to hand them to.
      disposeRuleState(next);
      return false;
    }
    // Counts of the old rules' failures go out before the old rules go.
    this.faults.flushRules();
    const old = this.state;
    // Events handed on as the wait above ended (the loop passes on what queued up meanwhile the
    // moment a handling ends) are with the old rules, and disposing them answers nothing: those
    // closes would be lost. The old rules go once that handling is over; it is the last one that
    // can have them, and the swap does not wait for it, so a stream of events cannot hold it up.
    const lastWithOld = this.handling;
    this.state = next;
    this.config = config;
    this.actions.configure(config);
    this.loop?.setInterval(config.interval * 1000);
    this.loop?.setResync(config.resync * 1000, !config.resyncAsked);
    if (this.monitor) {
      const monitor = this.monitor;
      monitor.counters = wantsCounters(next.rules);
      next.rules.followKnownEndpoints(() => monitor.table());
      this.actions.execute(await next.rules.start(monitor.current()));
    }
    if (old) this.retire(old, lastWithOld);
    return true;
  }

  private retire(old: RuleState, lastWithOld: Promise<void>): void {
    this.retiring.add(old);
    void lastWithOld.catch(() => {}).then(() => {
      if (this.retiring.delete(old)) disposeRuleState(old);
    });
  }

  /** Where actions are recorded from now on (a reload may name another file). */
  setAudit(audit: AuditLog): void {
    this.actions.setAudit(audit);
  }

  /** Settles once the last refresh's events are handled: for tests that move time by hand. */
  idle(): Promise<void> {
    return this.handling.catch(() => {});
  }

  get ruleNames(): string[] {
    return this.state?.rules.names ?? [];
  }

  private async onEvents(events: EndpointEvent[], origin: EventOrigin = "refresh"): Promise<void> {
    if (!this.state || !this.monitor) return;
    if (origin === "refresh") this.faults.refreshWorked();
    this.faults.check();
    const started = performance.now();
    for (const e of events) this.metrics.inc(METRICS.events, { type: e.type });
    const monitor = this.monitor;
    // The rule set reads the monitor's table of endpoints; a list is made only for a periodic hook.
    const rules = this.state.rules;
    const asked = await rules.dispatch(events);
    // Stopped while the rules ran: what they asked for goes with them.
    if (this.stopped) return;
    const ruled = performance.now();
    // What the events asked for is done before any periodic hook runs: a close is due at once.
    this.actions.execute(asked);
    const acted = performance.now();
    const periodic = await rules.tick(() => monitor.current());
    if (this.stopped) return;
    this.metrics.inc(METRICS.ruleSeconds, {}, (ruled - started + performance.now() - acted) / 1000);
    this.actions.execute(periodic);
    if (tracing) traceBatch(events, origin, started, ruled, acted);
    // Once a refresh: the sensor's batches come many a second, and each count goes over the
    // whole table.
    if (origin !== "refresh") return;
    this.updateGauges(monitor.table().values());
    this.metrics.set(METRICS.refreshSeconds, {}, (performance.now() - started) / 1000);
  }

  private updateGauges(endpoints: Iterable<Endpoint>): void {
    this.metrics.replace(METRICS.endpoints, endpointsByState(endpoints));
  }

  /** Stops refreshing, waits (bounded) for actions under way, releases everything. */
  async stop(timeoutMs = 1500): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.loop?.stop();
    this.faults.finish();
    await this.actions.settle(timeoutMs);
    if (this.state) disposeRuleState(this.state);
    for (const old of this.retiring) disposeRuleState(old);
    this.retiring.clear();
    this.monitor?.close();
  }
}
