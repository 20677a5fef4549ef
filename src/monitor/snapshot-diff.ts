/**
 * Turns two successive snapshots into events. Pure: no clock, no I/O, so it can be tested on
 * synthetic snapshot sequences.
 */
import type { Endpoint } from "../model/endpoint.ts";
import { compareEndpoints } from "../model/endpoint-order.ts";
import { endpointKey } from "./endpoint-key.ts";
import type { CounterDelta, EndpointEvent, EventType } from "./events.ts";

export interface DiffContext {
  time: number;
  /** Milliseconds since the previous snapshot, for rates. */
  elapsedMs: number;
}

/** An event before it is numbered. */
export type UnnumberedEvent = Omit<EndpointEvent, "seq">;

/** Within one moment, events come in this order, then in listing order. */
const ORDER: Record<EventType, number> = { opened: 0, "state-changed": 1, counters: 2, closed: 3 };

export function compareEvents(a: UnnumberedEvent, b: UnnumberedEvent): number {
  return a.time - b.time || ORDER[a.type] - ORDER[b.type] || compareEndpoints(a.endpoint, b.endpoint);
}

export function diffSnapshots(
  previous: ReadonlyMap<string, Endpoint>,
  next: readonly Endpoint[],
  ctx: DiffContext,
): { events: UnnumberedEvent[]; current: Map<string, Endpoint> } {
  const current = new Map<string, Endpoint>();
  const found: UnnumberedEvent[] = [];
  for (const ep of next) {
    const key = endpointKey(ep);
    current.set(key, ep);
    const before = previous.get(key);
    if (!before) {
      found.push({ type: "opened", time: ctx.time, endpoint: ep });
      continue;
    }
    // A dump does not know when a socket opened; the sensor may have told.
    if (!ep.openedAt && before.openedAt) ep.openedAt = before.openedAt;
    // An owner found later (or a process that exited) keeps what was known before.
    if (ep.process === null && before.process !== null && ep.inode === before.inode) {
      ep.process = before.process;
      ep.pids = before.pids;
    }
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
