/**
 * Endpoint events: what changed between two looks at the machine's sockets.
 */
import type { Endpoint, TcpState } from "../model/endpoint.ts";

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
