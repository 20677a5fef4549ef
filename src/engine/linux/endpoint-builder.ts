/**
 * Turns sock_diag records into normalized endpoints, handing out last dump's endpoint again for a
 * socket whose record has not changed.
 */
import type { Endpoint, Family, Protocol, TcpState } from "../../model/endpoint.ts";
import { AF_INET6, KERNEL_TCP_STATES, cookieString, type DiagRecord } from "./sock-diag-codec.ts";
import type { UserTable } from "./users.ts";
import { NO_PIDS } from "../bare-endpoint.ts";

export class EndpointBuilder {
  private previousByCookie = new Map<number, Endpoint>();
  /** The endpoints of the dump being read, by cookie; null between dumps. */
  private currentByCookie: Map<number, Endpoint> | null = null;
  /** Every protocol a dump has asked for: a dump of all of them is a full one. */
  private readonly protocolsAsked = new Set<Protocol>();

  constructor(private readonly users: UserTable) {}

  /** Starts a dump whose endpoints may be those of the last one. */
  beginDump(): void {
    this.currentByCookie = new Map();
  }

  /**
   * Ends the dump; returns whether it was a full one. A dump of fewer protocols than were asked
   * for before (UDP between the sensor's resyncs) leaves the endpoints to reuse as the last full
   * dump made them.
   */
  endDump(protocols: ReadonlySet<Protocol>): boolean {
    for (const p of protocols) this.protocolsAsked.add(p);
    const full = protocols.size === this.protocolsAsked.size;
    if (full && this.currentByCookie) this.previousByCookie = this.currentByCookie;
    this.currentByCookie = null;
    return full;
  }

  /** The endpoint of a record; with `reuse`, inside a dump, last dump's when nothing changed. */
  toEndpoint(protocol: Protocol, r: DiagRecord, reuse = false): Endpoint {
    const state: TcpState | null = protocol === "tcp" ? (KERNEL_TCP_STATES[r.state] ?? "CLOSE") : null;
    const cookie = r.cookieHigh * 0x100000000 + r.cookieLow;
    if (reuse && cookie !== 0 && this.currentByCookie) {
      const same = this.unchanged(protocol, r, state, cookie);
      const ep = same ?? this.newEndpoint(protocol, r, state);
      this.currentByCookie.set(cookie, ep);
      return ep;
    }
    return this.newEndpoint(protocol, r, state);
  }

  /**
   * Between snapshots an idle socket's record does not change: the endpoint from the last
   * snapshot is handed out again instead of a new one, which keeps a watcher of 100k idle sockets
   * from making 100k objects (and as much garbage) every refresh.
   */
  private unchanged(protocol: Protocol, r: DiagRecord, state: TcpState | null, cookie: number): Endpoint | null {
    const old = this.previousByCookie.get(cookie);
    if (
      !old ||
      old.protocol !== protocol ||
      old.state !== state ||
      old.inode !== r.inode ||
      old.localPort !== r.sourcePort ||
      old.remotePort !== r.destinationPort ||
      old.receiveQueue !== r.receiveQueue ||
      old.sendQueue !== r.sendQueue ||
      old.packetsSent !== r.segsOut ||
      old.packetsReceived !== r.segsIn ||
      old.bytesReceived !== r.bytesReceived ||
      old.bytesSent !== bytesSentOf(r) ||
      old.rttMs !== rttOf(r, state)
    ) {
      return null;
    }
    return old;
  }

  private newEndpoint(protocol: Protocol, r: DiagRecord, state: TcpState | null): Endpoint {
    const family: Family = r.family === AF_INET6 ? 6 : 4;
    // Request and TIME_WAIT sockets have no owner and report uid 0 and inode 0.
    const hasOwner = r.inode !== 0;
    return {
      protocol,
      family,
      localAddress: r.source,
      localPort: r.sourcePort,
      remoteAddress: r.destination,
      remotePort: r.destinationPort,
      state,
      inode: r.inode,
      uid: hasOwner ? r.uid : null,
      user: hasOwner ? this.users.name(r.uid) : null,
      interfaceIndex: r.interfaceIndex,
      receiveQueue: r.receiveQueue,
      sendQueue: r.sendQueue,
      bytesSent: bytesSentOf(r),
      bytesReceived: r.bytesReceived,
      packetsSent: r.segsOut,
      packetsReceived: r.segsIn,
      rttMs: rttOf(r, state),
      cookie: r.cookieLow === 0 && r.cookieHigh === 0 ? null : cookieString(r.cookieLow, r.cookieHigh),
      process: null,
      pids: NO_PIDS,
    };
  }
}

/** bytes_sent exists since Linux 4.19; older kernels only have bytes_acked. */
function bytesSentOf(r: DiagRecord): number | null {
  return r.hasTcpInfo ? (r.bytesSent ?? r.bytesAcked) : null;
}

function rttOf(r: DiagRecord, state: TcpState | null): number | null {
  return r.rttMicros !== null && state !== "LISTEN" ? r.rttMicros / 1000 : null;
}
