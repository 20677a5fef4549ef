/**
 * Host-side encoding of events and endpoints for the rule sandbox: rows of values instead of
 * objects with keys, and each process once per payload. Parsing is most of what a sandboxed call
 * costs, and rows are about a third of the bytes. The guest side (guest-source.ts) turns rows
 * back into the objects the API documents.
 */
import type { Endpoint, ProcessInfo } from "../engine/types.ts";
import type { EndpointEvent } from "../monitor/events.ts";

type Row = unknown[];

class ProcessTable {
  readonly rows: Row[] = [];
  private readonly index = new Map<ProcessInfo, number>();

  ref(p: ProcessInfo | null): number {
    if (!p) return -1;
    let i = this.index.get(p);
    if (i === undefined) {
      i = this.rows.length;
      this.index.set(p, i);
      this.rows.push([p.pid, p.name, p.path, p.cmdline, p.uid, p.user, p.startTime, p.ppid]);
    }
    return i;
  }
}

function pushEndpoint(row: Row, ep: Endpoint, procs: ProcessTable): void {
  row.push(
    ep.protocol, ep.family, ep.localAddress, ep.localPort, ep.remoteAddress, ep.remotePort, ep.state, ep.inode,
    ep.uid, ep.user, ep.bytesSent, ep.bytesReceived, ep.packetsSent, ep.packetsReceived, procs.ref(ep.process),
    ep.pids, ep.cookie,
  );
}

/** A batch of events: {p: process rows, e: [type, seq, time, extra, ...endpoint]}. */
export function encodeEvents(events: readonly EndpointEvent[]): string {
  const procs = new ProcessTable();
  const rows: Row[] = [];
  for (const e of events) {
    const extra = e.type === "state-changed" ? (e.previousState ?? null) : e.type === "counters" ? (e.counters ?? null) : e.shortLived ? 1 : 0;
    const row: Row = [e.type, e.seq, e.time, extra];
    pushEndpoint(row, e.endpoint, procs);
    rows.push(row);
  }
  return JSON.stringify({ p: procs.rows, e: rows });
}

/** A list of endpoints (for start and periodic): {p, e: [...endpoint]}. */
export function encodeEndpoints(endpoints: readonly Endpoint[]): string {
  const procs = new ProcessTable();
  const rows: Row[] = [];
  for (const ep of endpoints) {
    const row: Row = [];
    pushEndpoint(row, ep, procs);
    rows.push(row);
  }
  return JSON.stringify({ p: procs.rows, e: rows });
}
