/**
 * An endpoint known by its addresses, state and owner only: what an engine reports where the OS
 * gives no queues, counters or cookie (a sensor record before its lookup, a Windows table row).
 * Shared by the engines so the unknown fields are said once, in the model's order.
 */
import type { Endpoint } from "../model/endpoint.ts";

/** Shared by every unowned endpoint; never mutated. */
export const NO_PIDS: number[] = Object.freeze([]) as unknown as number[];

export type BareFields = Pick<
  Endpoint,
  "protocol" | "family" | "localAddress" | "localPort" | "remoteAddress" | "remotePort" | "state" | "uid" | "user" | "interfaceIndex" | "pids"
>;

export function bareEndpoint(f: BareFields): Endpoint {
  return {
    protocol: f.protocol,
    family: f.family,
    localAddress: f.localAddress,
    localPort: f.localPort,
    remoteAddress: f.remoteAddress,
    remotePort: f.remotePort,
    state: f.state,
    inode: 0,
    uid: f.uid,
    user: f.user,
    interfaceIndex: f.interfaceIndex,
    receiveQueue: null,
    sendQueue: null,
    bytesSent: null,
    bytesReceived: null,
    packetsSent: null,
    packetsReceived: null,
    rttMs: null,
    cookie: null,
    process: null,
    pids: f.pids,
  };
}
