/**
 * CSV with a header row, every field of the JSON shape flattened; RFC 4180 quoting. Cells are
 * escaped with escapeControl before quoting: CSV is opened in terminals and spreadsheets, and a
 * process name's newline or escape sequence must not reach them. The exact text is in JSON.
 */
import type { Endpoint } from "../model/endpoint.ts";
import { escapeControl } from "../text/escape-control.ts";

const HEADER = [
  "protocol", "family", "localAddress", "localPort", "remoteAddress", "remotePort", "state",
  "inode", "uid", "user", "bytesSent", "bytesReceived", "packetsSent", "packetsReceived",
  "pid", "processName", "processPath", "processCmdline", "processUser", "processStartTime",
  "ppid", "pids",
];

export function renderCsv(endpoints: readonly Endpoint[]): string {
  const lines = [HEADER.join(",")];
  for (const ep of endpoints) {
    const p = ep.process;
    lines.push(
      [
        ep.protocol, ep.family, ep.localAddress, ep.localPort, ep.remoteAddress, ep.remotePort,
        ep.state, ep.inode, ep.uid, ep.user, ep.bytesSent, ep.bytesReceived, ep.packetsSent,
        ep.packetsReceived, p?.pid, p?.name, p?.path, p?.cmdline, p?.user, p?.startTime, p?.ppid,
        ep.pids.join(" "),
      ]
        .map(csvField)
        .join(","),
    );
  }
  return lines.join("\n") + "\n";
}

export function csvField(v: unknown): string {
  if (v === null || v === undefined) return "";
  const s = escapeControl(String(v));
  return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}
