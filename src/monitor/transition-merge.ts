/**
 * A known endpoint brought up to date by a state change the sensor reported. The change's own
 * figures are newer than the last look's: its counters were read from the socket at the change
 * (at CLOSE they are the final ones, which no later look can give), and its opening time is one
 * a look never knows. What the change lacks (null counters, no process) keeps the known value.
 */
import type { Endpoint, TcpState } from "../model/endpoint.ts";

export function mergeTransition(before: Endpoint, change: Endpoint, state: TcpState | null): Endpoint {
  const next: Endpoint = { ...before, state };
  if (!next.process && change.process) {
    next.process = change.process;
    next.pids = change.pids;
  }
  if (change.bytesSent !== null) next.bytesSent = change.bytesSent;
  if (change.bytesReceived !== null) next.bytesReceived = change.bytesReceived;
  if (change.packetsSent !== null) next.packetsSent = change.packetsSent;
  if (change.packetsReceived !== null) next.packetsReceived = change.packetsReceived;
  if (!next.openedAt && change.openedAt) next.openedAt = change.openedAt;
  return next;
}
