/**
 * What one sensor record says about its socket, as the feed reads it: whether it is the socket's
 * first change, its ports and addresses, and its counters.
 */
import type { Endpoint, TcpState } from "../../model/endpoint.ts";
import type { SetStateRecord } from "./bpf/set-state-record.ts";
import type { TcpTuple } from "./diag-lookup.ts";

/** States of an active close, after which the kernel may keep a timewait socket with the same cookie. */
export const LINGERING: ReadonlySet<TcpState | null> = new Set<TcpState | null>(["FIN_WAIT1", "FIN_WAIT2", "CLOSING", "TIME_WAIT"]);

/** Puts a record's counters on its endpoint, where the record has them. */
export function withCounters(endpoint: Endpoint, r: SetStateRecord): void {
  if (!r.counters) return;
  endpoint.bytesSent = r.counters.bytesSent;
  endpoint.bytesReceived = r.counters.bytesReceived;
  endpoint.packetsSent = r.counters.packetsSent;
  endpoint.packetsReceived = r.counters.packetsReceived;
}

/** A socket's first change: connect or listen (from CLOSE), or an accepted socket's birth (from its listener). */
export function isBirth(r: SetStateRecord): boolean {
  return (r.oldState === "CLOSE" || r.oldState === "LISTEN") && r.newState !== "CLOSE";
}

/** A record's two ports as one number; null before connect gave the socket its local port. */
export function portsOf(r: SetStateRecord): number | null {
  return r.localPort === 0 ? null : r.localPort * 65_536 + r.remotePort;
}

export function tupleOf(r: SetStateRecord): TcpTuple {
  return { family: r.family, localAddress: r.localAddress, localPort: r.localPort, remoteAddress: r.remoteAddress, remotePort: r.remotePort };
}
