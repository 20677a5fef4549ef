/**
 * The one record every sink receives: an alert or log line from a rule, an action taken, or a
 * report about a rule (error, quarantine, reload). Field names are part of the NDJSON and webhook
 * output, so scripts can rely on them.
 */
import type { Endpoint } from "../model/endpoint.ts";
import type { ProcessInfo } from "../model/process.ts";
import type { AlertAction, LogAction, RuleReport, Severity } from "../model/rule-action.ts";
import { endpointToJson, type EndpointJson } from "../format/endpoint-json.ts";

export type SinkRecordKind = "alert" | "log" | "action" | "report";

export interface SinkRecord {
  /** ISO-8601 time the record was made (for a folded summary: when the summary was made). */
  time: string;
  kind: SinkRecordKind;
  /** The rule that asked for it, when a rule did. */
  rule?: string;
  severity?: Severity;
  message: string;
  /** For kind "action": close | kill | would-close ... */
  action?: string;
  /** For kind "action": closed | gone | failed ...; for "report": the report's kind. */
  outcome?: string;
  endpoint?: EndpointJson | null;
  process?: ProcessInfo | null;
  /**
   * Set on a folded summary only: how many identical alerts it stands for, none of which were
   * sent on their own. Summing `count ?? 1` over every record gives the number of alerts raised.
   */
  count?: number;
  /** With `count`: the times of the first and last alert folded into it. */
  firstTime?: string;
  lastTime?: string;
}

function base(kind: SinkRecordKind, message: string, time: Date): SinkRecord {
  return { time: time.toISOString(), kind, message };
}

/** A rule's log or alert as a record; close and kill go through {@link actionRecord}. */
export function ruleActionRecord(a: LogAction | AlertAction, time = new Date()): SinkRecord {
  return { time: time.toISOString(), kind: a.action, rule: a.rule, severity: a.action === "alert" ? (a.severity ?? "warning") : "info", message: a.reason };
}

export interface ActionRecordInput {
  /** Who asked: a rule's name, "cli" ... */
  requestedBy?: string;
  action: string;
  outcome: string;
  message: string;
  endpoint?: Endpoint | null;
  process?: ProcessInfo | null;
  /** Not taken (protected, over a rate limit, another process at the PID): told as a warning alert. */
  refused?: boolean;
}

/**
 * An action that was taken, refused, or would have been taken in a dry run. The endpoint and
 * process are always there, null when the action has none, so that readers need not guess.
 */
export function actionRecord(input: ActionRecordInput, time = new Date()): SinkRecord {
  const head: Pick<SinkRecord, "kind" | "severity"> = input.refused ? { kind: "alert", severity: "warning" } : { kind: "action" };
  return {
    time: time.toISOString(),
    ...head,
    action: input.action,
    outcome: input.outcome,
    message: input.message,
    ...(input.requestedBy !== undefined && { rule: input.requestedBy }),
    endpoint: input.endpoint ? endpointToJson(input.endpoint) : null,
    process: input.process ?? input.endpoint?.process ?? null,
  };
}

/** A report about a rule (it failed, was quarantined, reloaded ...). */
export function ruleReportRecord(report: RuleReport, time = new Date()): SinkRecord {
  const where = report.line !== null ? `${report.file}:${report.line}${report.column !== null ? `:${report.column}` : ""}` : report.file;
  const r = base("report", `${report.message} (${where})`, time);
  r.rule = report.rule;
  r.outcome = report.kind;
  r.severity = report.kind === "reloaded" ? "info" : report.kind === "quarantined" ? "critical" : "warning";
  return r;
}

/** A line of the daemon's own (not a rule's), e.g. "started with 3 rules". */
export function logRecord(message: string, severity: Severity = "info", time = new Date()): SinkRecord {
  const r = base("log", message, time);
  r.severity = severity;
  return r;
}
