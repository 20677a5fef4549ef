/**
 * The host's check of what a rule hands back. The guest's act.* functions already check their
 * arguments, but a rule controls everything inside its sandbox — including what the guest's own
 * JSON.stringify writes (a rule-installed Array.prototype.toJSON changes it) — so those checks
 * are a convenience for the rule's author. This is the guard: every row is read field by field,
 * against the shapes below, and anything else is refused with a reason.
 */
import type { Severity } from "../model/rule-action.ts";

/** Actions one call of a hook may take (the guest's own limit too); the rest are refused. */
export const MAX_ACTIONS_PER_CALL = 10_000;
/** Characters of a message or reason (the guest cuts longer texts to this, with an ellipsis). */
export const MAX_TEXT_CHARS = 4096;
const MAX_ADDRESS_CHARS = 64;

const SEVERITIES: ReadonlySet<string> = new Set<Severity>(["info", "warning", "critical"]);

/** A connection as the rule described it: enough for the host to find the real one. */
export interface EndpointClaim {
  protocol: "tcp" | "udp";
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  cookie: string | null;
}

export type ActionRow =
  | { kind: "log"; text: string }
  | { kind: "alert"; text: string; severity: Severity }
  /** `ref`: the index of the endpoint in what the host sent with the call, or -1. */
  | { kind: "close"; text: string; ref: number; claim: EndpointClaim }
  | { kind: "kill"; text: string; pid: number };

export interface CheckedRows {
  rows: ActionRow[];
  /** Why each refused row was refused, in order. */
  refused: string[];
}

/**
 * Reads rows the way the guest's dispatcher writes them; `refs` is how many endpoints went out,
 * `hookCalls` how many times the hook ran (a batch of events: once per event at most, as a
 * failing event ends one run and the next starts after it).
 */
export function checkActionRows(rows: unknown, refs: number, hookCalls = 1): CheckedRows {
  const out: CheckedRows = { rows: [], refused: [] };
  if (!Array.isArray(rows)) {
    out.refused.push("the rule's actions were not a list");
    return out;
  }
  const limit = MAX_ACTIONS_PER_CALL * Math.max(1, hookCalls);
  const n = Math.min(rows.length, limit);
  for (let i = 0; i < n; i++) {
    const r = checkRow(rows[i], refs);
    if (typeof r === "string") out.refused.push(`${r} (action ${i + 1} of the call)`);
    else out.rows.push(r);
  }
  if (rows.length > n) out.refused.push(`${rows.length - n} action(s) beyond the limit of ${MAX_ACTIONS_PER_CALL} per call`);
  return out;
}

function checkRow(row: unknown, refs: number): ActionRow | string {
  if (!Array.isArray(row)) return "refused: not an action";
  const kind = row[0];
  const text = row[1];
  if (kind !== "log" && kind !== "alert" && kind !== "close" && kind !== "kill") return `refused: unknown kind ${quote(kind)}`;
  if (typeof text !== "string") return `${kind} refused: the ${kind === "log" || kind === "alert" ? "message" : "reason"} is not text`;
  if (text.length > MAX_TEXT_CHARS) return `${kind} refused: a text of ${text.length} characters (at most ${MAX_TEXT_CHARS})`;
  switch (kind) {
    case "log":
      return row.length === 2 ? { kind, text } : "log refused: unexpected fields";
    case "alert": {
      const severity = row[2];
      if (row.length !== 3) return "alert refused: unexpected fields";
      if (typeof severity !== "string" || !SEVERITIES.has(severity)) return `alert refused: severity must be info, warning or critical, not ${quote(severity)}`;
      return { kind, text, severity: severity as Severity };
    }
    case "close": {
      if (row.length !== 4) return "close refused: unexpected fields";
      const ref = row[2];
      if (typeof ref !== "number" || !Number.isInteger(ref) || ref < -1 || ref >= refs) return `close refused: ${quote(ref)} is not an endpoint of this call`;
      const claim = checkClaim(row[3]);
      if (typeof claim === "string") return `close refused: ${claim}`;
      return { kind, text, ref, claim };
    }
    case "kill": {
      if (row.length !== 3) return "kill refused: unexpected fields";
      const pid = row[2];
      if (typeof pid !== "number" || !Number.isSafeInteger(pid) || pid <= 0) return `kill refused: ${quote(pid)} is not a process id`;
      return { kind, text, pid };
    }
  }
  return `refused: unknown kind ${quote(kind)}`;
}

function checkClaim(fields: unknown): EndpointClaim | string {
  if (!Array.isArray(fields) || fields.length !== 6) return "not an endpoint";
  const [protocol, localAddress, localPort, remoteAddress, remotePort, cookie] = fields as unknown[];
  if (protocol !== "tcp" && protocol !== "udp") return `protocol ${quote(protocol)}`;
  if (!isAddress(localAddress) || !isAddress(remoteAddress)) return "an address that is not one";
  if (!isPort(localPort) || !isPort(remotePort)) return "a port that is not one";
  if (cookie !== null && (typeof cookie !== "string" || !/^\d{1,20}$/.test(cookie))) return "a cookie that is not one";
  return { protocol, localAddress: localAddress as string, localPort: localPort as number, remoteAddress: remoteAddress as string, remotePort: remotePort as number, cookie: cookie as string | null };
}

function isAddress(v: unknown): boolean {
  return typeof v === "string" && v.length <= MAX_ADDRESS_CHARS;
}

function isPort(v: unknown): boolean {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 65535;
}

/** A short, printable rendering of a value the rule gave, for a refusal. */
function quote(v: unknown): string {
  let s: string;
  if (typeof v === "string") s = JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  else if (v === null || typeof v !== "object") s = String(v);
  else s = Array.isArray(v) ? "a list" : "an object";
  return s;
}
