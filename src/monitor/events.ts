/**
 * Endpoint events: what changed between two looks at the machine's sockets.
 */
import type { Endpoint, TcpState } from "../model/endpoint.ts";
import { compareEndpoints } from "../model/endpoint-order.ts";

export const EVENT_TYPES = ["opened", "closed", "state-changed", "counters"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Traffic moved since the previous refresh, with per-second rates over that span. */
export interface CounterDelta {
  bytesSent: number;
  bytesReceived: number;
  packetsSent: number;
  packetsReceived: number;
  intervalMs: number;
  bytesSentPerSecond: number;
  bytesReceivedPerSecond: number;
}

export interface EndpointEvent {
  type: EventType;
  /** Monotonic, starting at 1 for each monitor. */
  seq: number;
  /** Wall-clock time of the refresh (or of the kernel's notice) that saw it, ms since epoch. */
  time: number;
  endpoint: Endpoint;
  /** For state-changed: the state before. */
  previousState?: TcpState | null;
  /** For counters: what moved. */
  counters?: CounterDelta;
  /**
   * The socket opened and closed between two refreshes: it is known only from the kernel's
   * destroy notice.
   */
  shortLived?: boolean;
}

/** An event before it is numbered. */
export type UnnumberedEvent = Omit<EndpointEvent, "seq">;

/** Within one moment, events come in this order, then in listing order. */
const ORDER: Record<EventType, number> = { opened: 0, "state-changed": 1, counters: 2, closed: 3 };

/** The order of one refresh's events: the diff sorts by it once, and what joins them keeps it. */
export function compareEvents(a: UnnumberedEvent, b: UnnumberedEvent): number {
  return a.time - b.time || ORDER[a.type] - ORDER[b.type] || compareEndpoints(a.endpoint, b.endpoint);
}
