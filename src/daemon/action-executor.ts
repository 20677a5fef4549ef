/**
 * Carries out what rules asked for. A log or an alert becomes a record. A close or a kill passes
 * protection, then the rule's rate limit, then dry run, and only then touches the system; every
 * decision, taken, refused or dry, is one line of the audit log, one record and one count.
 */
import type { Endpoint } from "../model/endpoint.ts";
import type { RuleAction, SystemAction } from "../model/rule-action.ts";
import type { SocketEngine } from "../engine/types.ts";
import { closeEndpoint, endpointLabel } from "../actions/close-endpoint.ts";
import { endProcess, type EndOutcome } from "../actions/end-process.ts";
import type { AuditLog } from "../actions/audit-log.ts";
import { actionRecord, ruleActionRecord, type SinkRecord } from "../outputs/index.ts";
import type { DaemonConfig } from "./config.ts";
import { Protection } from "./protection.ts";
import { ActionRateLimiter } from "./rate-limit.ts";
import type { Metrics } from "./metrics.ts";
import { METRICS } from "./metric-catalogue.ts";
import { withTimeout } from "../timers.ts";

/** The parts of the configuration that decide what is done. */
export type ActionPolicy = Pick<DaemonConfig, "protect" | "limits" | "dryRun" | "kill">;

export interface ActionExecutorOptions {
  policy: ActionPolicy;
  /** The engine that closes sockets; null until the daemon has made it. */
  engine: () => SocketEngine | null;
  /** The endpoints sockwarden knows now (the monitor's table): whose sockets a process holds, and sockwarden's own. */
  known: () => Iterable<Endpoint>;
  audit: AuditLog;
  metrics: Metrics;
  emit: (records: SinkRecord[]) => void;
  /** Whose sockets are never closed (default this process). */
  selfPid?: number;
  /** Monotonic milliseconds for the rate limits (default performance.now). */
  clock?: () => number;
}

/** An end to a process that was not carried out after all: told as the refusals before it are. */
const LATE_REFUSALS = new Set<EndOutcome["result"]>(["reused", "changed", "protected"]);

export class ActionExecutor {
  private protection!: Protection;
  private limiter!: ActionRateLimiter;
  private policy!: ActionPolicy;
  private audit: AuditLog;
  /** Ends of processes under way (each waits out its grace period). */
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly options: ActionExecutorOptions) {
    this.audit = options.audit;
    this.configure(options.policy);
  }

  /** A new configuration: new protections and limits (the counts of the old limits go with them). */
  configure(policy: ActionPolicy): void {
    this.policy = policy;
    this.protection = new Protection(policy.protect, this.options.selfPid ?? process.pid, this.options.known);
    this.limiter = new ActionRateLimiter(policy.limits.actionsPerMinute, policy.limits.perRule, this.options.clock);
  }

  /** Where actions are recorded from now on (a reload may name another file). */
  setAudit(audit: AuditLog): void {
    this.audit = audit;
  }

  execute(actions: readonly RuleAction[]): void {
    const records: SinkRecord[] = [];
    for (const a of actions) {
      if (a.action === "log" || a.action === "alert") {
        this.count(a.rule, a.action, "emitted");
        records.push(ruleActionRecord(a));
      } else {
        const record = this.act(a);
        if (record) records.push(record);
      }
    }
    if (records.length) this.options.emit(records);
  }

  /** Waits, at most `timeoutMs`, for the ends of processes under way. */
  async settle(timeoutMs: number): Promise<void> {
    if (!this.pending.size) return;
    await withTimeout(Promise.allSettled([...this.pending]), timeoutMs, () => undefined);
  }

  /** A close or kill through protection, rate limit and dry run; its record, or null when it comes later. */
  private act(a: SystemAction): SinkRecord | null {
    const close = a.action === "close";
    const what = close ? endpointLabel(a.endpoint) : `${a.process.name} (pid ${a.pid})`;
    const endpoint = close ? a.endpoint : null;
    const processInfo = close ? null : a.process;
    const record = (action: string, outcome: string, message: string, refused = false) =>
      actionRecord({ requestedBy: a.rule, action, outcome, message, endpoint, process: processInfo, refused });
    const audit = (action: string, outcome: string, message: string) =>
      this.audit.append({ action, endpoint, process: processInfo, reason: a.reason, requestedBy: a.rule, outcome, message });
    const refuse = (outcome: string, message: string) => {
      this.count(a.rule, a.action, outcome);
      audit(a.action, outcome, message);
      return record(a.action, outcome, message, true);
    };

    const protectedBecause = close ? this.protection.closeRefusal(a.endpoint) : this.protection.killRefusal(a.process, this.socketsOf(a.pid));
    if (protectedBecause) return refuse("protected", `not ${close ? "closing" : "ending"} ${what}: ${protectedBecause} (${a.reason})`);
    if (!this.limiter.allow(a.rule)) {
      return refuse("rate-limited", `rule ${a.rule} reached its limit of ${this.limiter.limitFor(a.rule)} actions a minute: would have ${close ? "closed" : "ended"} ${what} (${a.reason})`);
    }
    if (this.policy.dryRun) {
      const message = `would ${close ? "close" : "end"} ${what}: ${a.reason}`;
      this.count(a.rule, a.action, "dry-run");
      audit(`would-${a.action}`, "dry-run", message);
      return record(`would-${a.action}`, "dry-run", message);
    }
    if (close) {
      const engine = this.options.engine();
      if (!engine) throw new Error("a close was asked for before the engine was made");
      const outcome = closeEndpoint(engine, a.endpoint, { requestedBy: a.rule, reason: a.reason, audit: this.audit });
      this.count(a.rule, "close", outcome.result);
      return record("close", outcome.result, `${outcome.message}: ${a.reason}`);
    }
    // Protection is asked again right before each signal, about the process found then and
    // every socket it holds: in the table and, read fresh, those it opened since.
    const p = endProcess(a.process, {
      requestedBy: a.rule, reason: a.reason, audit: this.audit, graceMs: this.policy.kill.graceMs,
      guard: (found, handle) => this.protection.killRefusal(found, [...this.socketsOf(found.pid), ...(handle.sockets() ?? [])]),
    }).then((outcome) => {
      this.count(a.rule, "kill", outcome.result);
      // Refused at the last moment (another process at the PID, or one protected now).
      this.options.emit([record("kill", outcome.result, `${outcome.message}: ${a.reason}`, LATE_REFUSALS.has(outcome.result))]);
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
    return null;
  }

  /** The sockets the monitor's table says `pid` holds. */
  private socketsOf(pid: number): Endpoint[] {
    const out: Endpoint[] = [];
    for (const ep of this.options.known()) if (ep.pids.includes(pid)) out.push(ep);
    return out;
  }

  private count(rule: string, action: string, outcome: string): void {
    this.options.metrics.inc(METRICS.actions, { rule, action, outcome });
  }
}
