/**
 * Connections already reported closed, by key and by address pair, with the refresh that
 * retired them. With the sensor running a connection is told closed as it closes, yet the next
 * snapshots may still show it (a TIME_WAIT successor with the same cookie, a dump taken before
 * the close), a late change of the sensor may still name it, and its destroy notice may still
 * come: each must not report it again, nor open it anew.
 */
import type { Endpoint, Protocol } from "../model/endpoint.ts";
import { endpointKey, pairKey } from "./endpoint-key.ts";
import type { UnnumberedEvent } from "./events.ts";
import { rekeyed } from "./cookieless-rekey.ts";

/** Dumps of its protocol a retired key is kept after its socket left the table. */
const RETIRED_REFRESHES = 2;

/** When a key was retired, in dumps of its protocol and in refreshes. */
interface Retirement {
  protocol: Protocol;
  dumpAt: number;
  refreshAt: number;
  /** The key names one socket (a cookie, or an unconnected socket's inode), not an address pair. */
  socket: boolean;
  /**
   * The retired socket's cookie and when it was retired (wall ms): a pair retirement must not
   * hide a new connection that takes the same addresses and ports, which the kernel does at once
   * after a reset frees a port.
   */
  cookie: string | null;
  at: number;
  /** A destroy notice was put down to this retirement: a socket gets one. */
  noticeTaken?: boolean;
  /** The sensor opened a new connection on this key since (see reopened()). */
  reopened?: boolean;
}

export class Retirements {
  /**
   * By protocol: retirements age only in dumps of their own protocol, so a refresh that dumped
   * UDP alone (the sensor tells TCP) need not pass over the tens of thousands of TCP ones that a
   * busy server retires between two TCP dumps.
   */
  private readonly retired: Record<Protocol, Map<string, Retirement>> = { tcp: new Map(), udp: new Map() };
  private refreshes = 0;
  /** Dumps by protocol: a partial refresh ages only the socket retirements of what it dumped. */
  private readonly dumps: Record<Protocol, number> = { tcp: 0, udp: 0 };
  /** The dump count at which each protocol's retirements were last swept. */
  private readonly swept: Record<Protocol, number> = { tcp: 0, udp: 0 };

  constructor(private readonly clock: () => number) {}

  /** A refresh began: retirements by address pair age in refreshes. */
  refreshed(): void {
    this.refreshes++;
  }

  /** A snapshot dumped this protocol: retirements by key age in its dumps. */
  dumped(protocol: Protocol): void {
    this.dumps[protocol]++;
  }

  /**
   * Drops the snapshot's events about connections the sensor already reported closed, retires
   * what the snapshot saw close (a late transition must not open it again), and forgets retired
   * keys once their sockets are gone.
   */
  reconcile(events: UnnumberedEvent[], current: ReadonlyMap<string, Endpoint>): UnnumberedEvent[] {
    const kept: UnnumberedEvent[] = [];
    for (const e of rekeyed(events)) {
      if (this.isRetired(e.endpoint, true) && !(e.type === "closed" && this.closesReopened(e.endpoint))) {
        // A successor found by its addresses keeps the retirement under its own key.
        this.retired[e.endpoint.protocol].set(endpointKey(e.endpoint), this.retirement(e.endpoint, e.endpoint.cookie !== null || e.endpoint.remotePort === 0));
        continue;
      }
      if (e.type === "closed") this.retire(e.endpoint, e.time);
      kept.push(e);
    }
    // Only a dump ages a retirement; one kept because its socket was still in the table is
    // looked at again at its protocol's next dump.
    for (const protocol of ["tcp", "udp"] as const) {
      if (this.swept[protocol] === this.dumps[protocol]) continue;
      this.swept[protocol] = this.dumps[protocol];
      const retired = this.retired[protocol];
      for (const [key, r] of retired) {
        if (!current.has(key) && this.dumps[protocol] - r.dumpAt > RETIRED_REFRESHES) retired.delete(key);
      }
    }
    return kept;
  }

  /**
   * Retirements age in dumps of their protocol: a TCP connection the sensor closed may still be
   * seen (in TIME_WAIT) by the next resync, however many partial refreshes come before it.
   */
  private retirement(ep: Endpoint, socket: boolean, at: number = this.clock()): Retirement {
    return { protocol: ep.protocol, dumpAt: this.dumps[ep.protocol], refreshAt: this.refreshes, socket, cookie: ep.cookie, at };
  }

  retire(ep: Endpoint, at: number = this.clock()): void {
    // Set last: without a cookie, a connection's key is its address pair.
    const retired = this.retired[ep.protocol];
    retired.set(endpointKey(ep), this.retirement(ep, ep.cookie !== null || ep.remotePort === 0, at));
    if (ep.remotePort !== 0) retired.set(pairKey(ep), this.retirement(ep, false, at));
  }

  /**
   * The sensor told a new connection opened on a retired key (a change the kernel made after the
   * retirement). The retirement still keeps the retired connection's late changes out, but no
   * longer covers a close a dump tells there: that is the new connection's (its CLOSE lost), and
   * dropping it would leave the connection open for good.
   */
  reopened(ep: Endpoint): void {
    const retired = this.retired[ep.protocol];
    if (retired.size === 0) return;
    const own = retired.get(endpointKey(ep));
    if (own) own.reopened = true;
    const pair = ep.remotePort === 0 ? undefined : retired.get(pairKey(ep));
    if (pair) pair.reopened = true;
  }

  /**
   * Whether a dump's closed event is of a connection the sensor opened on a retired key. The
   * retirement under the event's own key says, where there is one: a socket the table held
   * without telling (a retired connection's TIME_WAIT, under its own cookie) goes as silently,
   * whatever was opened on its addresses since.
   */
  private closesReopened(ep: Endpoint): boolean {
    const retired = this.retired[ep.protocol];
    const own = retired.get(endpointKey(ep));
    if (own) return own.reopened === true;
    return ep.remotePort !== 0 && retired.get(pairKey(ep))?.reopened === true;
  }

  /**
   * Whether a socket was retired. A snapshot's sockets (`inDump`) are matched by their own key
   * or their address pair until the retirement ages out; the sensor's and the destroy notices'
   * by their address pair only for RETIRED_REFRESHES refreshes, since a new connection may take
   * the same addresses and ports soon after, long before the next resync.
   */
  isRetired(ep: Endpoint, inDump = false, time?: number): boolean {
    const retired = this.retired[ep.protocol];
    if (retired.size === 0) return false;
    const live = (r: Retirement | undefined): r is Retirement => r !== undefined && (inDump || r.socket || this.refreshes - r.refreshAt <= RETIRED_REFRESHES);
    // Another socket on the same addresses is another connection (a successor in TIME_WAIT keeps
    // its cookie), and so is a change the kernel made after the retirement. Without a cookie an
    // endpoint's own key is its address pair, so both lookups are held to this.
    // A dump's TIME_WAIT socket on a retired pair is the retired connection's successor even under
    // another cookie (made for the timewait socket when the sensor's lookup raced its birth): a
    // later connection on the pair would have been opened and retired by the sensor.
    const successor = inDump && ep.state === "TIME_WAIT";
    const sameConnection = (r: Retirement) => (successor || !(ep.cookie !== null && r.cookie !== null && ep.cookie !== r.cookie)) && (time === undefined || time <= r.at);
    const own = retired.get(endpointKey(ep));
    // A change the kernel made after a socket's retirement is news even under a retired cookie:
    // a lookup that ran after a reset can have handed the closed connection its successor's
    // cookie (the same four-tuple, taken again at once).
    if (live(own) && (own.socket ? time === undefined || time <= own.at : sameConnection(own))) return true;
    if (ep.remotePort === 0) return false;
    const pair = retired.get(pairKey(ep));
    return live(pair) && sameConnection(pair);
  }

  /**
   * Whether a destroy notice tells of a connection already reported closed. Its cookie need not
   * be the one the sensor's lookup or a dump saw: a socket looked up only once in TIME_WAIT has
   * no cookie of its own until the notice is made, and then a new one. So, with the sensor
   * running (`sensing`), the first notice on a retired address pair is that connection's
   * whatever its cookie; a second is another connection's (the kernel gives a reset's 4-tuple
   * out again).
   */
  noticeCovered(ep: Endpoint, sensing: boolean): boolean {
    const pair = ep.remotePort === 0 ? undefined : this.retired[ep.protocol].get(pairKey(ep));
    if (this.isRetired(ep)) {
      if (pair) pair.noticeTaken = true;
      return true;
    }
    if (!sensing || !pair || pair.noticeTaken || this.refreshes - pair.refreshAt > RETIRED_REFRESHES) return false;
    pair.noticeTaken = true;
    return true;
  }
}
