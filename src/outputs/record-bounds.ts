/**
 * How big a sink record may be, and what one costs to hold. Every queue and fold in the outputs
 * is bounded in bytes by these numbers, whatever a rule returns or a process calls itself: a text
 * longer than its cap is cut, with a marker saying how much was cut, before any queue holds it,
 * so that one record is always far smaller than any queue's bound. (A record that is still larger
 * than a bound, e.g. an endpoint shared by thousands of processes in front of a tiny queue, is
 * dropped and counted by that queue.)
 */
import type { ProcessInfo } from "../model/process.ts";
import type { SinkRecord } from "./sink-record.ts";

/** Longest message a record carries out (rules' texts are 4096 at most; the daemon's own lines fit too). */
export const MAX_MESSAGE_CHARS = 8192;
/** Longest process text (command line, path, name, user, unit) a record carries out. */
export const MAX_FIELD_CHARS = 4096;

/**
 * What holding a record costs beyond its texts, measured on Bun: the record object with its time
 * string is about 200 bytes, one with an endpoint and a process about 550; rounded up.
 */
const RECORD_BYTES = 512;
const ENDPOINT_BYTES = 1024;
/** JavaScript strings may hold two bytes a character. */
const CHAR_BYTES = 2;

/** `text` when it fits in `max` characters; else its start and a marker saying how much was cut, `max` characters in all. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max < 40) return text.slice(0, max);
  // The marker's length depends on the count it shows: settle it (twice is always enough).
  let keep = max;
  for (let i = 0; i < 2; i++) keep = Math.max(0, max - marker(text.length - keep).length);
  // Never leave half of a surrogate pair behind.
  const last = keep > 0 ? text.charCodeAt(keep - 1) : 0;
  if (last >= 0xd800 && last <= 0xdbff) keep--;
  return text.slice(0, keep) + marker(text.length - keep);
}

const marker = (cut: number) => `\u2026 [${cut} characters cut]`;

/** The record itself when nothing in it is too long; otherwise a copy with the long texts cut. */
export function boundedRecord(r: SinkRecord): SinkRecord {
  const message = typeof r.message === "string" ? cutText(r.message, MAX_MESSAGE_CHARS) : String(r.message);
  const process = r.process ? boundedProcess(r.process) : r.process;
  const endpointProcess = r.endpoint?.process ? boundedProcess(r.endpoint.process) : null;
  if (message === r.message && process === r.process && (endpointProcess === null || endpointProcess === r.endpoint!.process)) return r;
  const out: SinkRecord = { ...r, message };
  if (process !== r.process) out.process = process;
  if (endpointProcess !== null && endpointProcess !== r.endpoint!.process) out.endpoint = { ...r.endpoint!, process: endpointProcess };
  return out;
}

function boundedProcess(p: ProcessInfo): ProcessInfo {
  const name = cutField(p.name);
  const path = cutField(p.path);
  const cmdline = cutField(p.cmdline);
  const user = cutField(p.user);
  const unit = cutField(p.unit);
  if (name === p.name && path === p.path && cmdline === p.cmdline && user === p.user && unit === p.unit) return p;
  const out = { ...p, name: name as string, path, cmdline, user };
  if (p.unit !== undefined) out.unit = unit;
  return out;
}

function cutField<T extends string | null | undefined>(v: T): T {
  return (typeof v === "string" ? cutText(v, MAX_FIELD_CHARS) : v) as T;
}

/** What holding the record costs, in bytes, counted generously: what byte bounds are measured in. */
export function recordBytes(r: SinkRecord): number {
  let chars = textLength(r.message) + textLength(r.rule) + textLength(r.action) + textLength(r.outcome);
  let bytes = RECORD_BYTES;
  if (r.process) chars += processChars(r.process);
  if (r.endpoint) {
    bytes += ENDPOINT_BYTES + 8 * (Array.isArray(r.endpoint.pids) ? r.endpoint.pids.length : 0);
    if (r.endpoint.process) chars += processChars(r.endpoint.process);
    chars += textLength(r.endpoint.namespace?.name);
  }
  return bytes + CHAR_BYTES * chars;
}

function processChars(p: ProcessInfo): number {
  return textLength(p.name) + textLength(p.path) + textLength(p.cmdline) + textLength(p.user) + textLength(p.unit) + 64;
}

function textLength(v: unknown): number {
  return typeof v === "string" ? v.length : 0;
}

/** 16777216 -> "16 MiB", 65536 -> "64 KiB": bounds as people read them. */
export function byteText(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KiB`;
  return `${n} bytes`;
}
