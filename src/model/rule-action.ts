/**
 * What the rules runtime hands to the rest of sockwarden: the actions rules asked for (checked
 * and resolved to real endpoints and processes) and reports about the rules themselves.
 */
import type { Endpoint } from "./endpoint.ts";
import type { ProcessInfo } from "./process.ts";

export type Severity = "info" | "warning" | "critical";

export interface RuleAction {
  rule: string;
  action: "log" | "alert" | "close" | "kill";
  reason: string;
  severity?: Severity;
  endpoint?: Endpoint;
  process?: ProcessInfo | null;
  pid?: number;
  /** The event that led to it, when there is one. */
  seq?: number;
}

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
