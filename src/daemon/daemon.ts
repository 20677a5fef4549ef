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
import { formatReport } from "../rules/rule-set.ts";
import type { RuleAction, RuleReport } from "../model/rule-action.ts";
import { closeEndpoint, describe } from "../actions/close-endpoint.ts";
import { endProcess } from "../actions/end-process.ts";
import type { AuditLog } from "../actions/audit-log.ts";
import { endpointToJson } from "../format/endpoint-json.ts";
import type { SinkRecord } from "../outputs/index.ts";
import type { DaemonConfig } from "./config.ts";
import { disposeRuleState, inRuleDirectory, loadRuleState, rescanRuleDirectories, wantsCounters, GOOD_NEWS, type DaemonRuleReport, type RuleState } from "./rule-state.ts";
import { Protection } from "./protection.ts";
import { hiddenOwnerWarnings } from "./hidden-owners.ts";
import { ActionRateLimiter } from "./rate-limit.ts";
import { Metrics } from "./metrics.ts";
import { FaultReporter } from "./fault-report.ts";
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
  /** Milliseconds, monotonic, for the refresh rhythm, fault periods and clock-jump checks (test seam; default performance.now). */
  clock?: () => number;
}

/** A wall-clock change bigger than this between two refreshes is told as a jump. */
const CLOCK_JUMP_MS = 2000;
/** Rule failures that are folded into counts (quarantine and reload reports always go out). */
const FOLDED_REPORTS = new Set<string>(["error", "timeout", "memory", "rejected-action"]);

export class Daemon {
  readonly metrics: Metrics;
  private config: DaemonConfig;
  private engine: SocketEngine | null = null;
  private monitor: Monitor | null = null;
  private loop: MonitorLoop | null = null;
  private state: RuleState | null = null;
  private protection: Protection;
  private audit: AuditLog;
  private limiter: ActionRateLimiter;
  private readonly pending = new Set<Promise<unknown>>();
  private stopped = false;
  /** The daemon's own troubles (refresh failures, lost notices, clock jumps), told with counts. */
  private readonly faults: FaultReporter;
  /** Repeated rule failures, told to the sinks with counts. */
  private readonly ruleFaults: FaultReporter<RuleReport>;
  private lostNotices = 0;
  private lostTransitions = 0;
  /** The handling of the last refresh's events (rules run in their own processes). */
  private handling: Promise<void> = Promise.resolve();
  private lastWall = 0;
  private lastMono = 0;
  private readonly clock: () => number;
  /** Swaps of the rule set (reloads, rule directories' changes), one after another. */
  private swaps: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: DaemonOptions) {
    this.config = options.config;
    this.audit = options.audit;
    this.metrics = options.metrics ?? new Metrics();
    this.protection = new Protection(this.config.protect, process.pid, () => this.monitor?.table().values() ?? []);
    this.limiter = new ActionRateLimiter(this.config.limits.actionsPerMinute, this.config.limits.perRule);
    this.clock = options.clock ?? (() => performance.now());
    const periodMs = options.faultReportMs ?? 60_000;
    const clock = this.clock;
    this.faults = new FaultReporter({ periodMs, clock, emit: (l) => this.options.warn?.(l.text) });
    this.ruleFaults = new FaultReporter<RuleReport>({
      periodMs,
      clock,
      emit: (l) => {
        // The first failure goes out as it is; later lines stand for `count` failures each.
        if (l.kind === "first" || !l.data) return;
        const r = l.data;
        this.options.emit([{ time: new Date().toISOString(), kind: "report", rule: r.rule, severity: "warning", outcome: r.kind, count: l.count, message: `${l.text.slice(0, 2000)}` }]);
      },
    });
  }

  /** Loads the rules (throws when one does not load), takes the first look, starts the loop. */
  async start(): Promise<void> {
    this.state = await this.loadRules(this.config);
    this.engine = this.options.createEngine();
    this.monitor = new Monitor({
      engine: this.engine,
      request: { protocols: new Set(["tcp", "udp"]), families: new Set([4, 6]), withProcesses: true },
      transitions: wantsTransitions(this.config.sensor),
      requireSensor: requiresSensor(this.config.sensor),
      counters: wantsCounters(this.state.rules),
    });
    const initial = this.monitor.start();
    // After the first look, so that its notes (e.g. processes that cannot be read) are told too.
    for (const n of this.monitor.notes) this.options.warn?.(n);
    for (const n of hiddenOwnerWarnings(this.state.rules.loaded, initial, this.monitor.unreadableProcesses)) this.options.warn?.(n);
    this.state.rules.followKnownEndpoints(() => this.monitor!.table());
    this.execute(await this.state.rules.start(initial));
    this.updateGauges(initial);
    this.loop = new MonitorLoop(this.monitor, {
      intervalMs: this.config.interval * 1000,
      resyncMs: this.config.resync * 1000,
      onEvents: (events, origin) => (this.handling = this.onEvents(events, origin)),
      collectAfterRefresh: true,
      timers: this.options.timers,
      clock: this.clock,
      onError: (err) => {
        this.metrics.inc("sockwarden_refresh_errors_total", "Refreshes that failed");
        this.faults.fault("refresh failed", (err as Error).message);
        this.checkFaults();
      },
    });
    this.loop.start();
  }

  private loadRules(config: DaemonConfig): Promise<RuleState> {
    let state: RuleState | null = null;
    const onFileChange = this.options.watchRuleFiles === false ? null : (label: string, present: boolean) => {
      if (state !== null) this.ruleFileChanged(state, label, present);
    };
    return loadRuleState(config, { onReport: (r) => this.onReport(r), onFileChange, warn: (m) => this.options.warn?.(m) }).then((loaded) => (state = loaded));
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
    for (const r of rescan.reports) this.onReport(r);
  }

  /**
   * Applies a new configuration (SIGHUP). If its rules do not all load, nothing changes and the
   * error is thrown for the caller to report: the running configuration goes on.
   */
  reload(config: DaemonConfig): Promise<void> {
    return this.serially(async () => {
      const next = await this.loadRules(config);
      if (await this.swapRules(next, config)) this.metrics.inc("sockwarden_reloads_total", "Configuration reloads that took effect");
    });
  }

  /** Hands the running to `next`; false when the daemon stopped meanwhile. */
  private async swapRules(next: RuleState, config: DaemonConfig): Promise<boolean> {
    // The refresh the old rules are handling finishes with them, and its actions are carried
    // out: its events will not come again, and the new rules would never see them.
    await this.idle();
    if (this.stopped) {
      // Stopped while the new rules were loading: nothing is running to hand them to.
      disposeRuleState(next);
      return false;
    }
    // Counts of the old rules' failures go out before the old rules go.
    this.ruleFaults.flush();
    const old = this.state;
    this.state = next;
    this.config = config;
    this.protection = new Protection(config.protect, process.pid, () => this.monitor?.table().values() ?? []);
    this.limiter = new ActionRateLimiter(config.limits.actionsPerMinute, config.limits.perRule);
    this.loop?.setInterval(config.interval * 1000);
    this.loop?.setResync(config.resync * 1000);
    if (this.monitor) {
      const monitor = this.monitor;
      monitor.counters = wantsCounters(next.rules);
      next.rules.followKnownEndpoints(() => monitor.table());
      this.execute(await next.rules.start(monitor.current()));
    }
    if (old) disposeRuleState(old);
    return true;
  }

  /** Where actions are recorded from now on (a reload may name another file). */
  setAudit(audit: AuditLog): void {
    this.audit = audit;
  }

  /** The engine's local datagram sockets (for the syslog sink's /dev/log), once started. */
  openLocalDatagram(path: string): { send(data: Uint8Array): void; close(): void } {
    if (!this.engine?.openLocalDatagram) throw new Error("local sockets are not available");
    return this.engine.openLocalDatagram(path);
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
    if (origin === "refresh") this.faults.ok("refresh failed", "refreshes work again");
    this.checkFaults();
    const started = performance.now();
    for (const e of events) this.metrics.inc("sockwarden_events_total", "Endpoint events seen", { type: e.type });
    const monitor = this.monitor;
    // The rule set reads the monitor's table of endpoints; a list is made only for a periodic hook.
    const rules = this.state.rules;
    const asked = await rules.dispatch(events);
    // Stopped while the rules ran: what they asked for goes with them.
    if (this.stopped) return;
    const ruled = performance.now();
    // What the events asked for is done before any periodic hook runs: a close is due at once.
    this.execute(asked);
    const acted = performance.now();
    const periodic = await rules.tick(() => monitor.current());
    if (this.stopped) return;
    this.metrics.inc("sockwarden_rule_seconds_total", "Time spent in rules", {}, (ruled - started + performance.now() - acted) / 1000);
    this.execute(periodic);
    if (tracing) traceBatch(events, origin, started, ruled, acted);
    // Once a refresh: the sensor's batches come many a second, and each count goes over the
    // whole table.
    if (origin !== "refresh") return;
    this.updateGauges(monitor.table().values());
    this.metrics.set("sockwarden_refresh_seconds", "Duration of the last refresh's processing", {}, (performance.now() - started) / 1000);
  }

  private updateGauges(endpoints: Iterable<Endpoint>): void {
    this.metrics.replace("sockwarden_endpoints", "Endpoints by protocol and state", endpointsByState(endpoints));
  }

  /**
   * Faults noticed from outside a refresh's work: notices the kernel dropped (ENOBUFS) or that
   * piled up, and jumps of the wall clock; then what is due of the counts.
   */
  private checkFaults(): void {
    const lost = this.monitor?.lostNotices() ?? 0;
    if (lost > this.lostNotices) {
      this.metrics.setCounter("sockwarden_lost_notices_total", "Times socket-destroy notices were lost (kernel queue overflow, ENOBUFS, or too many between refreshes)", {}, lost);
      this.faults.fault("socket-destroy notices lost", "the kernel's queue of notices overflowed (ENOBUFS) or a notice did not decode; connections shorter than one refresh may go unseen", lost - this.lostNotices);
      this.lostNotices = lost;
    }
    const lostChanges = this.monitor?.lostTransitions() ?? 0;
    if (lostChanges > this.lostTransitions) {
      this.metrics.setCounter("sockwarden_sensor_lost_total", "TCP state changes the eBPF sensor lost (its ring full); a refresh follows at once", {}, lostChanges);
      this.faults.fault("sensor changes lost", "the eBPF sensor's ring overflowed; a refresh was taken at once to set the table right", lostChanges - this.lostTransitions);
      this.lostTransitions = lostChanges;
    }
    const wall = Date.now();
    const mono = this.clock();
    if (this.lastMono > 0) {
      const drift = wall - this.lastWall - (mono - this.lastMono);
      if (Math.abs(drift) > CLOCK_JUMP_MS) {
        this.metrics.inc("sockwarden_clock_jumps_total", "Jumps of the wall clock seen between refreshes");
        this.faults.fault("wall clock jumped", `${drift > 0 ? "forward" : "back"} by ${Math.round(Math.abs(drift) / 1000)} s; rate limits, rule schedules and alert folding follow the monotonic clock`);
      }
    }
    this.lastWall = wall;
    this.lastMono = mono;
    this.faults.tick();
    this.ruleFaults.tick();
  }

  private onReport(report: DaemonRuleReport): void {
    // formatReport prints any kind it is given.
    const r = report as RuleReport;
    if (!GOOD_NEWS.has(r.kind)) this.metrics.inc("sockwarden_rule_errors_total", "Rule failures and refused actions", { rule: r.rule, kind: r.kind });
    if (FOLDED_REPORTS.has(r.kind)) {
      const key = `rule ${r.rule} ${r.kind === "error" ? "failed" : r.kind}`;
      const first = !this.ruleFaults.ongoing(key);
      this.ruleFaults.fault(key, formatReport(r), 1, r);
      // Only the first of an episode goes out now; the rest are counted and told periodically.
      if (!first) return;
    } else {
      // A quarantine or reload: the counts before it come first.
      for (const kind of FOLDED_REPORTS) this.ruleFaults.flush(`rule ${r.rule} ${kind === "error" ? "failed" : kind}`);
    }
    this.options.emit([{ time: new Date().toISOString(), kind: "report", rule: r.rule, severity: GOOD_NEWS.has(r.kind) ? "info" : "warning", outcome: r.kind, message: formatReport(r) }]);
  }

  /** Carries out what rules asked for, through protection, rate limits and dry run. */
  private execute(actions: RuleAction[]): void {
    const records: DaemonRecord[] = [];
    const now = () => new Date().toISOString();
    for (const a of actions) {
      if (a.action === "log" || a.action === "alert") {
        this.count(a.rule, a.action, "emitted");
        records.push({ time: now(), kind: a.action, rule: a.rule, severity: a.action === "alert" ? (a.severity ?? "warning") : "info", message: a.reason });
        continue;
      }
      const what = a.action === "close" ? describe(a.endpoint!) : `${a.process?.name ?? "process"} (pid ${a.pid})`;
      const protectedBecause = a.action === "close" ? this.protection.endpoint(a.endpoint!) : this.protection.kill(a.process!, this.socketsOf(a.pid!));
      const base = { rule: a.rule, endpoint: a.endpoint ? endpointToJson(a.endpoint) : null, process: a.process ?? a.endpoint?.process ?? null };
      const refuse = (outcome: string, message: string) => {
        this.count(a.rule, a.action, outcome);
        this.audit.append({ action: a.action, endpoint: a.endpoint ?? null, process: a.process ?? null, reason: a.reason, requestedBy: a.rule, outcome, message });
        records.push({ time: now(), kind: "alert", severity: "warning", action: a.action, outcome, message, ...base });
      };
      if (protectedBecause) {
        refuse("protected", `not ${a.action === "close" ? "closing" : "ending"} ${what}: ${protectedBecause} (${a.reason})`);
        continue;
      }
      if (!this.limiter.allow(a.rule)) {
        refuse("rate-limited", `rule ${a.rule} reached its limit of ${this.limiter.limitFor(a.rule)} actions a minute: would have ${a.action === "close" ? "closed" : "ended"} ${what} (${a.reason})`);
        continue;
      }
      if (this.config.dryRun) {
        const message = `would ${a.action === "close" ? "close" : "end"} ${what}: ${a.reason}`;
        this.count(a.rule, a.action, "dry-run");
        this.audit.append({ action: `would-${a.action}`, endpoint: a.endpoint ?? null, process: a.process ?? null, reason: a.reason, requestedBy: a.rule, outcome: "dry-run", message });
        records.push({ time: now(), kind: "action", action: `would-${a.action}`, outcome: "dry-run", message, ...base });
        continue;
      }
      if (a.action === "close") {
        const outcome = closeEndpoint(this.engine!, a.endpoint!, { requestedBy: a.rule, reason: a.reason, audit: this.audit });
        this.count(a.rule, "close", outcome.result);
        records.push({ time: now(), kind: "action", action: "close", outcome: outcome.result, message: `${outcome.message}: ${a.reason}`, ...base });
      } else {
        // Protection is asked again right before each signal, about the process found then and
        // every socket it holds: in the table and, read fresh, those it opened since.
        const p = endProcess(a.process!, {
          requestedBy: a.rule, reason: a.reason, audit: this.audit, graceMs: this.config.kill.graceMs,
          guard: (found, handle) => this.protection.kill(found, [...this.socketsOf(found.pid), ...(handle.sockets() ?? [])]),
        }).then((outcome) => {
          this.count(a.rule, "kill", outcome.result);
          // Refused at the last moment (another process at the PID, or one protected now): told
          // as the refusals before it are, as a warning.
          const refused = outcome.result === "reused" || outcome.result === "changed" || outcome.result === "protected";
          const kind = refused ? { kind: "alert" as const, severity: "warning" as const } : { kind: "action" as const };
          this.options.emit([{ time: now(), ...kind, action: "kill", outcome: outcome.result, message: `${outcome.message}: ${a.reason}`, ...base }]);
        });
        this.pending.add(p);
        void p.finally(() => this.pending.delete(p));
      }
    }
    if (records.length) this.options.emit(records);
  }

  /** The sockets the monitor's table says `pid` holds. */
  private socketsOf(pid: number): Endpoint[] {
    const out: Endpoint[] = [];
    for (const ep of this.monitor?.table().values() ?? []) if (ep.pids.includes(pid)) out.push(ep);
    return out;
  }

  private count(rule: string, action: string, outcome: string): void {
    this.metrics.inc("sockwarden_actions_total", "Actions rules asked for, by outcome", { rule, action, outcome });
  }

  /** Stops refreshing, waits (bounded) for actions under way, releases everything. */
  async stop(timeoutMs = 1500): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.loop?.stop();
    // A last look, so that notices lost (or a clock jump) since the last refresh are counted too.
    this.checkFaults();
    this.faults.flush();
    this.ruleFaults.flush();
    if (this.pending.size) await Promise.race([Promise.allSettled([...this.pending]), new Promise((r) => setTimeout(r, timeoutMs))]);
    if (this.state) disposeRuleState(this.state);
    this.monitor?.close();
  }
}
