/**
 * A process's properties as aligned `Label: value` lines, the way TCPView's properties dialog
 * shows them: used by `sockwarden proc` and by the live view's properties panel. Pure: the same
 * details, width and clock always give the same lines.
 */
import type { ProcessDetails } from "../model/process.ts";
import { escapeControl } from "../text/escape-control.ts";
import { cutToWidth, displayWidth } from "./display-width.ts";

export interface PropertiesOptions {
  /** Columns available; long values wrap under their value column. Undefined: never wrap. */
  width?: number;
  /** Current time (ms since epoch); when given, the start time also says how long ago it was. */
  now?: number;
}

/** Label and value pairs in display order; unknown values are shown as `-`. */
export function processPropertyRows(d: ProcessDetails, now?: number): Array<[string, string]> {
  return [
    ["PID", String(d.pid)],
    ["Name", d.name],
    ["Path", d.path ?? "-"],
    ["Command line", d.cmdline === null ? "-" : d.cmdline === "" ? "(none)" : d.cmdline],
    ["User", userText(d.user, d.uid)],
    ["Started", startedText(d.startTime, now)],
    ["Parent", d.ppid === null || d.ppid === 0 ? "-" : d.ppidName ? `${d.ppid} (${d.ppidName})` : String(d.ppid)],
    ["Unit", d.unit === null ? "-" : d.unitUid !== null ? `${d.unit} (user unit of uid ${d.unitUid})` : d.unit],
    ["Cgroup", d.cgroup ?? "-"],
    ["State", d.state ?? "-"],
    ["Threads", d.threads === null ? "-" : String(d.threads)],
    ["Memory", d.rssKiB === null ? "-" : `${kibText(d.rssKiB)} resident`],
    ["Open files", d.fdCount === null ? "-" : String(d.fdCount)],
  ];
}

/** The properties as lines without trailing newlines, values aligned after the longest label. */
export function renderProcessProperties(d: ProcessDetails, options: PropertiesOptions = {}): string[] {
  const rows = processPropertyRows(d, options.now);
  const labelWidth = Math.max(...rows.map(([label]) => label.length)) + 2;
  let valueWidth = options.width === undefined ? Infinity : options.width - labelWidth;
  // In a column this narrow a wrapped value is harder to read than one long line.
  if (valueWidth < 16) valueWidth = Infinity;
  const lines: string[] = [];
  for (const [label, value] of rows) {
    // Command lines and names come from other processes: escaped so they cannot break the layout.
    const pieces = wrap(escapeControl(value), valueWidth);
    pieces.forEach((piece, i) => {
      const head = i === 0 ? `${label}:`.padEnd(labelWidth) : " ".repeat(labelWidth);
      lines.push((head + piece).trimEnd());
    });
  }
  return lines;
}

/** The fields of `proc --json`'s `process`, in order: names and order are part of the public interface. */
const JSON_FIELDS = [
  "pid", "name", "path", "cmdline", "uid", "user", "startTime", "ppid", "ppidName",
  "state", "threads", "rssKiB", "fdCount", "cgroup", "unit", "unitUid", "netns",
] as const satisfies readonly (keyof ProcessDetails)[];

export type ProcessDetailsJson = { [K in (typeof JSON_FIELDS)[number]]: ProcessDetails[K] };

export function processDetailsToJson(d: ProcessDetails): ProcessDetailsJson {
  return Object.fromEntries(JSON_FIELDS.map((k) => [k, d[k]])) as ProcessDetailsJson;
}

function userText(user: string | null, uid: number | null): string {
  if (uid === null) return user ?? "-";
  if (user === null || user === String(uid)) return `uid ${uid}`;
  return `${user} (uid ${uid})`;
}

function startedText(iso: string | null, now: number | undefined): string {
  if (iso === null) return "-";
  const at = Date.parse(iso);
  if (now === undefined || Number.isNaN(at)) return iso;
  return `${iso} (${durationText(now - at)} ago)`;
}

/** 42_000 -> "42s", 3_720_000 -> "1h 2m", 90_000_000 -> "1d 1h": two units at most. */
export function durationText(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const units: Array<[string, number]> = [
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ];
  const parts: string[] = [];
  let rest = s;
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0 || parts.length > 0) parts.push(`${n}${unit}`);
    if (parts.length === 2) break;
  }
  if (parts.length === 0) return "0s";
  // "1h 0m" reads worse than "1h".
  return parts.filter((p, i) => i === 0 || !p.startsWith("0")).join(" ");
}

function kibText(kib: number): string {
  if (kib < 1024) return `${kib} KiB`;
  if (kib < 1024 * 1024) return `${(kib / 1024).toFixed(1)} MiB`;
  return `${(kib / 1024 / 1024).toFixed(2)} GiB`;
}

/** Splits text into pieces of at most `width` terminal cells, at spaces where there is one. */
export function wrap(text: string, width: number): string[] {
  if (displayWidth(text) <= width) return [text];
  const pieces: string[] = [];
  let rest = text;
  while (displayWidth(rest) > width) {
    // Where `width` cells end, in UTF-16 units; at least one character, however wide.
    const fits = cutToWidth(rest, width).length || [...rest][0]!.length;
    const space = rest.lastIndexOf(" ", fits);
    // Break at the space when it leaves a reasonably full line; otherwise cut the word.
    const cut = space > 0 && displayWidth(rest.slice(0, space)) > width / 2 ? space : escapeBoundary(rest, fits);
    pieces.push(rest.slice(0, cut));
    rest = rest.slice(cut).replace(/^ /, "");
  }
  if (rest !== "") pieces.push(rest);
  return pieces;
}

/** An escape (`\x1b`, `\u{202e}`, `\\`) is never cut in two: the cut moves to its start. */
function escapeBoundary(text: string, cut: number): number {
  const escapes = /\\(?:x[0-9a-f]{2}|u\{[0-9a-f]+\}|\\)/g;
  // The longest escape is 10 characters: only the text around the cut matters.
  const near = text.slice(0, cut + 10);
  for (let m = escapes.exec(near); m && m.index < cut; m = escapes.exec(near)) {
    if (m.index + m[0].length > cut) return m.index > 0 ? m.index : cut;
  }
  return cut;
}
