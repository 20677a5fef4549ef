/**
 * The daemon's troubles, told with counts rather than once each: refreshes that fail, notices the
 * kernel dropped, sensor changes lost, jumps of the wall clock (told to the warning stream), and
 * rules that fail again and again (told to the sinks). Each is counted in the metrics too.
 */
import type { RuleReport } from "../model/rule-action.ts";
import { formatReport } from "../rules/rule-set.ts";
import type { SinkRecord } from "../outputs/index.ts";
import { FaultReporter } from "./fault-report.ts";
import type { Metrics } from "./metrics.ts";
import { METRICS } from "./metric-catalogue.ts";
import { GOOD_NEWS, type DaemonRuleReport } from "./rule-state.ts";

/** A wall-clock change bigger than this between two refreshes is told as a jump. */
const CLOCK_JUMP_MS = 2000;
/** Rule failures that are folded into counts (quarantine and reload reports always go out). */
const FOLDED_REPORTS = new Set<string>(["error", "timeout", "memory", "rejected-action"]);

export interface DaemonFaultsOptions {
  /** How often a fault that goes on is told again, with its count. */
  periodMs: number;
  /** Milliseconds, monotonic. */
  clock: () => number;
  /** The wall clock, in milliseconds (default Date.now). */
  wall?: () => number;
  metrics: Metrics;
  /** The daemon's own troubles. */
  warn: (line: string) => void;
  /** Rules' troubles, as records for the sinks. */
  emit: (records: SinkRecord[]) => void;
  /** Running totals the monitor keeps: destroy notices and sensor changes lost (0 before it runs). */
  lost: () => { notices: number; transitions: number };
}

export class DaemonFaults {
  private readonly faults: FaultReporter;
  private readonly ruleFaults: FaultReporter<RuleReport>;
  private lostNotices = 0;
  private lostTransitions = 0;
  private lastWall = 0;
  private lastMono = 0;

  constructor(private readonly o: DaemonFaultsOptions) {
    const { periodMs, clock } = o;
    this.faults = new FaultReporter({ periodMs, clock, emit: (l) => o.warn(l.text) });
    this.ruleFaults = new FaultReporter<RuleReport>({
      periodMs,
      clock,
      emit: (l) => {
        // The first failure goes out as it is; later lines stand for `count` failures each.
        if (l.kind === "first" || !l.data) return;
        const r = l.data;
        o.emit([{ time: new Date().toISOString(), kind: "report", rule: r.rule, severity: "warning", outcome: r.kind, count: l.count, message: `${l.text.slice(0, 2000)}` }]);
      },
    });
  }

  refreshFailed(err: unknown): void {
    this.o.metrics.inc(METRICS.refreshErrors);
    this.faults.fault("refresh failed", (err as Error).message);
    this.check();
  }

  refreshWorked(): void {
    this.faults.ok("refresh failed", "refreshes work again");
  }

  /**
   * Faults noticed from outside a refresh's work: notices the kernel dropped (ENOBUFS) or that
   * piled up, and jumps of the wall clock; then what is due of the counts.
   */
  check(): void {
    const { notices, transitions } = this.o.lost();
    if (notices > this.lostNotices) {
      this.o.metrics.setCounter(METRICS.lostNotices, {}, notices);
      this.faults.fault("socket-destroy notices lost", "the kernel's queue of notices overflowed (ENOBUFS) or a notice did not decode; connections shorter than one refresh may go unseen", notices - this.lostNotices);
      this.lostNotices = notices;
    }
    if (transitions > this.lostTransitions) {
      this.o.metrics.setCounter(METRICS.sensorLost, {}, transitions);
      this.faults.fault("sensor changes lost", "the eBPF sensor's ring overflowed; a refresh was taken at once to set the table right", transitions - this.lostTransitions);
      this.lostTransitions = transitions;
    }
    const wall = (this.o.wall ?? Date.now)();
    const mono = this.o.clock();
    if (this.lastMono > 0) {
      const drift = wall - this.lastWall - (mono - this.lastMono);
      if (Math.abs(drift) > CLOCK_JUMP_MS) {
        this.o.metrics.inc(METRICS.clockJumps);
        this.faults.fault("wall clock jumped", `${drift > 0 ? "forward" : "back"} by ${Math.round(Math.abs(drift) / 1000)} s; rate limits, rule schedules and alert folding follow the monotonic clock`);
      }
    }
    this.lastWall = wall;
    this.lastMono = mono;
    this.faults.tick();
    this.ruleFaults.tick();
  }

  /** A report about a rule: repeated failures are folded into counts, the rest go out at once. */
  ruleReport(report: DaemonRuleReport): void {
    // formatReport prints any kind it is given.
    const r = report as RuleReport;
    if (!GOOD_NEWS.has(r.kind)) this.o.metrics.inc(METRICS.ruleErrors, { rule: r.rule, kind: r.kind });
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
    this.o.emit([{ time: new Date().toISOString(), kind: "report", rule: r.rule, severity: GOOD_NEWS.has(r.kind) ? "info" : "warning", outcome: r.kind, message: formatReport(r) }]);
  }

  /** The counts of rules' failures, told now (before the rules that failed go). */
  flushRules(): void {
    this.ruleFaults.flush();
  }

  /** A last look, so that what was lost (or a clock jump) since the last refresh is counted too; then every count. */
  finish(): void {
    this.check();
    this.faults.flush();
    this.ruleFaults.flush();
  }
}
