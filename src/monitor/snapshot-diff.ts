/**
 * Turns two successive snapshots into events, in event order. Pure: no clock, no I/O, and
 * neither snapshot is changed (the engine's endpoints stay as the engine made them; what a
 * socket carries over from the previous look goes on a copy), so it can be tested on synthetic
 * snapshot sequences.
 */
import type { Endpoint } from "../model/endpoint.ts";
import { endpointKey } from "./endpoint-key.ts";
import { compareEvents, type CounterDelta, type UnnumberedEvent } from "./events.ts";

export interface DiffContext {
  time: number;
  /** Milliseconds since the previous snapshot, for rates. */
  elapsedMs: number;
}

/**
 * The events that turn `previous` into `next`, sorted by compareEvents, and the table of `next`
 * by endpointKey. The table's endpoints and the events' are the same objects.
 */
export function diffSnapshots(
  previous: ReadonlyMap<string, Endpoint>,
  next: readonly Endpoint[],
  ctx: DiffContext,
): { events: UnnumberedEvent[]; current: Map<string, Endpoint> } {
  const current = new Map<string, Endpoint>();
  const found: UnnumberedEvent[] = [];
  for (const seen of next) {
    const key = endpointKey(seen);
    const before = previous.get(key);
    if (!before) {
      current.set(key, seen);
      found.push({ type: "opened", time: ctx.time, endpoint: seen });
      continue;
    }
    const ep = carriedOver(before, seen);
    current.set(key, ep);
    if (ep.state !== before.state) {
      found.push({ type: "state-changed", time: ctx.time, endpoint: ep, previousState: before.state });
    }
    const delta = counterDelta(before, ep, ctx.elapsedMs);
    if (delta) found.push({ type: "counters", time: ctx.time, endpoint: ep, counters: delta });
  }
  for (const [key, ep] of previous) {
    if (!current.has(key)) found.push({ type: "closed", time: ctx.time, endpoint: ep });
  }
  found.sort(compareEvents);
  return { events: found, current };
}

/**
 * A socket seen again, with what an earlier look knew and this one cannot: the socket itself
 * when nothing is missing, else a copy (most sockets need none, so most cost no allocation).
 */
function carriedOver(before: Endpoint, seen: Endpoint): Endpoint {
  // A dump does not know when a socket opened; the sensor may have told.
  const openedAt = !seen.openedAt && before.openedAt;
  // An owner found later (or a process that exited) keeps what was known before; so does a
  // socket its owner let go (closed with the connection still ending: no inode, no holder), whose
  // connection is still that process's.
  const owner = seen.process === null && before.process !== null && (seen.inode === before.inode || seen.inode === 0);
  // A TIME_WAIT socket has no counters: the connection's last known ones stay.
  const counters = seen.bytesSent === null && before.bytesSent !== null;
  if (!openedAt && !owner && !counters) return seen;
  const ep: Endpoint = { ...seen };
  if (openedAt) ep.openedAt = before.openedAt;
  if (counters) {
    ep.bytesSent = before.bytesSent;
    ep.bytesReceived = before.bytesReceived;
    ep.packetsSent = before.packetsSent;
    ep.packetsReceived = before.packetsReceived;
  }
  if (owner) {
    ep.process = before.process;
    ep.pids = before.pids;
  }
  return ep;
}

/** What moved between two readings, or null when nothing did (or counters are unknown). */
export function counterDelta(before: Endpoint, after: Endpoint, elapsedMs: number): CounterDelta | null {
  const d = (a: number | null, b: number | null) => (a === null || b === null || b < a ? 0 : b - a);
  const bytesSent = d(before.bytesSent, after.bytesSent);
  const bytesReceived = d(before.bytesReceived, after.bytesReceived);
  const packetsSent = d(before.packetsSent, after.packetsSent);
  const packetsReceived = d(before.packetsReceived, after.packetsReceived);
  if (bytesSent === 0 && bytesReceived === 0 && packetsSent === 0 && packetsReceived === 0) return null;
  const seconds = Math.max(elapsedMs, 1) / 1000;
  return {
    bytesSent,
    bytesReceived,
    packetsSent,
    packetsReceived,
    intervalMs: elapsedMs,
    bytesSentPerSecond: Math.round(bytesSent / seconds),
    bytesReceivedPerSecond: Math.round(bytesReceived / seconds),
  };
}
