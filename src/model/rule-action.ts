/**
 * What the rules runtime hands to the rest of sockwarden: the actions rules asked for (checked
 * and resolved to real endpoints and processes) and reports about the rules themselves.
 */
import type { Endpoint } from "./endpoint.ts";
import type { ProcessInfo } from "./process.ts";

export type Severity = "info" | "warning" | "critical";

interface RequestOf<A extends string> {
  rule: string;
  action: A;
  reason: string;
}

/** A line for the sinks, nothing more. */
export type LogAction = RequestOf<"log">;

export interface AlertAction extends RequestOf<"alert"> {
  severity: Severity;
}

/** A close of an endpoint sockwarden reported. */
export interface CloseAction extends RequestOf<"close"> {
  endpoint: Endpoint;
  /** The event that named it, when it came from one. */
  seq?: number;
}

/** An end to a process that held a known endpoint. */
export interface KillAction extends RequestOf<"kill"> {
  process: ProcessInfo;
  pid: number;
}

/** What a rule asked for, told apart by `action`: only a close has an endpoint, only a kill a process. */
export type RuleAction = LogAction | AlertAction | CloseAction | KillAction;

/** The requests that touch the system: they pass protection, rate limits and dry run first. */
export type SystemAction = CloseAction | KillAction;

export interface RuleReport {
  rule: string;
  file: string;
  /** "restarted": the rule lost its state through another rule's fault (its message says which). */
  kind: "error" | "timeout" | "memory" | "quarantined" | "rejected-action" | "reloaded" | "reload-failed" | "restarted";
  message: string;
  line: number | null;
  column: number | null;
  seq?: number;
}
