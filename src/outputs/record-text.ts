/**
 * Text forms of a sink record: one line for people (stdout, syslog's MSG) and one JSON line for
 * programs (stdout --ndjson, the file sink).
 */
import type { SinkRecord } from "./sink-record.ts";
import { ANSI } from "../format/colour.ts";
import { escapeControl } from "../text/escape-control.ts";

export function ndjsonLine(r: SinkRecord): string {
  return JSON.stringify(r) + "\n";
}

/**
 * What happened, without the time: `alert warning smtp-guard: curl talks SMTP (pid 4242 curl;
 * tcp 10.0.0.5:43122 -> 93.184.216.34:25) x12 from 10:00:00.120Z to 10:00:09.800Z` (`x1 at 10:00:00.120Z`
 * when the alerts folded into a summary were all at one moment).
 * Rules' texts, process names and the rest are shown through escapeControl, so that one record
 * is always one line and nothing in it drives a terminal or a log reader.
 */
export function recordSummary(r: SinkRecord): string {
  let head: string = r.kind;
  if (r.kind === "action" && r.action) head += ` ${r.action}${r.outcome ? ` ${r.outcome}` : ""}`;
  else if (r.kind === "report" && r.outcome) head += ` ${r.outcome}`;
  else if (r.severity) head += ` ${r.severity}`;
  const who = r.rule ? `${r.rule}: ` : "";
  // An action's message names its endpoint and process already ("closed tcp A -> B (curl, pid
  // 7)"): what the message says is not said again.
  const details: string[] = [];
  const proc = r.process ?? r.endpoint?.process ?? null;
  if (proc && !r.message.includes(`pid ${proc.pid}`)) details.push(`pid ${proc.pid} ${proc.name}`);
  if (r.endpoint) {
    const e = r.endpoint;
    const host = (a: string, p: number) => (e.family === 6 ? `[${a}]:${p}` : `${a}:${p}`);
    const pair = `${e.protocol} ${host(e.localAddress, e.localPort)} -> ${host(e.remoteAddress, e.remotePort)}`;
    if (!r.message.includes(pair)) details.push(pair);
  }
  let text = `${head} ${who}${r.message}`;
  if (details.length > 0) text += ` (${details.join("; ")})`;
  if (r.count !== undefined) {
    text += ` x${r.count}`;
    if (r.firstTime && r.lastTime) {
      // One moment is one time, whatever the count.
      text += r.firstTime === r.lastTime ? ` at ${clockOf(r.firstTime)}` : ` from ${clockOf(r.firstTime)} to ${clockOf(r.lastTime)}`;
    }
  }
  return escapeControl(text);
}

/** `TIME summary`, coloured by severity when asked. */
export function humanLine(r: SinkRecord, colour: boolean): string {
  const text = `${escapeControl(r.time)} ${recordSummary(r)}`;
  if (!colour) return text + "\n";
  const c = r.severity === "critical" ? ANSI.red : r.severity === "warning" ? ANSI.yellow : "";
  return c ? `${c}${text}${ANSI.reset}\n` : text + "\n";
}

function clockOf(iso: string): string {
  const t = iso.indexOf("T");
  return t >= 0 ? iso.slice(t + 1) : iso;
}
