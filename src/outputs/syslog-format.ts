/**
 * Syslog message formats. RFC 5424 for the network (and on request locally):
 *   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID PARAM="value" ...] MSG
 * and the traditional local form that syslog(3) writes to /dev/log:
 *   <PRI>Mmm dd hh:mm:ss APP-NAME[PROCID]: MSG
 * which is what journald and rsyslog's local socket parse (journald reads RFC 5424 on /dev/log
 * as plain text: systemd/systemd#19251).
 */
import type { SinkRecord } from "./sink-record.ts";
import { recordSummary } from "./record-text.ts";
import { escapeControl } from "../text/escape-control.ts";

export const FACILITIES = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9,
  authpriv: 10, ftp: 11, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21,
  local6: 22, local7: 23,
} as const;
export type Facility = keyof typeof FACILITIES;

export type SyslogFormat = "rfc5424" | "rfc3164";

/**
 * Structured data ID. Without a registered enterprise number, RFC 5424 IDs take the form
 * name@number; 32473 is the number RFC 5612 sets aside for examples and documentation.
 */
export const DEFAULT_SD_ID = "sockwarden@32473";

/** Severity numbers of RFC 5424 table 2. */
const SEVERITY = { critical: 2, error: 3, warning: 4, notice: 5, info: 6 } as const;

export function syslogSeverity(r: SinkRecord): number {
  if (r.severity) return SEVERITY[r.severity];
  if (r.kind === "alert") return SEVERITY.warning;
  if (r.kind === "action") return r.outcome === "failed" ? SEVERITY.error : SEVERITY.notice;
  if (r.kind === "report") return SEVERITY.warning;
  return SEVERITY.info;
}

export interface SyslogHeader {
  facility: Facility;
  hostname: string;
  appName: string;
  procId: number | string;
  sdId?: string;
}

/** Printable US-ASCII without spaces, cut to the field's length; "-" (nil) when empty. */
function headerField(s: string, max: number): string {
  const clean = s.replace(/[^\x21-\x7e]/g, "").slice(0, max);
  return clean === "" ? "-" : clean;
}

/**
 * A process name or rule's text as a PARAM-VALUE: control characters shown as escapes first (the
 * MSG's rule), then the escapes of RFC 5424 6.3.3 ('"', '\' and ']' take a backslash), which a
 * receiver undoes to get the escaped text back.
 */
function paramValue(s: string): string {
  return escapeControl(s).replace(/[\\"\]]/g, (c) => `\\${c}`);
}

/** The record's fields that programs filter on, as SD-PARAMs. */
export function structuredData(r: SinkRecord, sdId = DEFAULT_SD_ID): string {
  const params: [string, string | number | undefined][] = [
    ["kind", r.kind],
    ["rule", r.rule],
    ["severity", r.severity],
    ["action", r.action],
    ["outcome", r.outcome],
    ["count", r.count],
    ["firstTime", r.firstTime],
    ["lastTime", r.lastTime],
  ];
  const proc = r.process ?? r.endpoint?.process ?? null;
  if (proc) params.push(["pid", proc.pid], ["process", proc.name]);
  if (r.endpoint) {
    const e = r.endpoint;
    params.push(["protocol", e.protocol], ["localAddress", e.localAddress], ["localPort", e.localPort]);
    params.push(["remoteAddress", e.remoteAddress], ["remotePort", e.remotePort]);
    if (e.state) params.push(["state", e.state]);
  }
  let sd = `[${headerField(sdId, 32)}`;
  for (const [name, value] of params) if (value !== undefined) sd += ` ${name}="${paramValue(String(value))}"`;
  return sd + "]";
}

/** One RFC 5424 message, without framing. */
export function rfc5424(r: SinkRecord, h: SyslogHeader): string {
  const pri = FACILITIES[h.facility] * 8 + syslogSeverity(r);
  const time = Number.isNaN(Date.parse(r.time)) ? "-" : r.time;
  return (
    `<${pri}>1 ${time} ${headerField(h.hostname, 255)} ${headerField(h.appName, 48)} ` +
    `${headerField(String(h.procId), 128)} ${headerField(r.kind, 32)} ${structuredData(r, h.sdId)} ${recordSummary(r)}`
  );
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** The syslog(3) form for the local socket; the time is local time, as syslog(3) writes it. */
export function rfc3164(r: SinkRecord, h: SyslogHeader): string {
  const pri = FACILITIES[h.facility] * 8 + syslogSeverity(r);
  const t = new Date(Number.isNaN(Date.parse(r.time)) ? Date.now() : Date.parse(r.time));
  const two = (n: number) => String(n).padStart(2, "0");
  const stamp = `${MONTHS[t.getMonth()]} ${String(t.getDate()).padStart(2, " ")} ${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}`;
  const tag = headerField(h.appName, 32);
  return `<${pri}>${stamp} ${tag}[${headerField(String(h.procId), 16)}]: ${recordSummary(r)}`;
}

/** Text cut to at most maxBytes of UTF-8, never inside a character. */
export function utf8Limited(text: string, maxBytes: number): Buffer {
  const buf = Buffer.from(text);
  if (buf.length <= maxBytes) return buf;
  let end = maxBytes;
  // Step back over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end);
}
