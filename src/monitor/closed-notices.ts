/**
 * The kernel's socket-destroy notices, held between refreshes and folded into a refresh's
 * events. They are how connections shorter than one refresh are seen at all, and how a known
 * connection's closed event gets the counters of its very end, which no later look can give.
 */
import type { ClosedSocketFeed } from "../engine/types.ts";
import type { Endpoint } from "../model/endpoint.ts";
import { isBlankEndpoint } from "./blank-endpoint.ts";
import { endpointKey, pairKey } from "./endpoint-key.ts";
import type { UnnumberedEvent } from "./events.ts";
import { listenerFor, listenersByPort } from "./listener-owner.ts";

interface ClosedNotice {
  endpoint: Endpoint;
  time: number;
}

export class ClosedNotices {
  private pending: ClosedNotice[] = [];
  /** Notices of sockets never seen, kept one refresh for their timewait successor to appear. */
  private held: ClosedNotice[] = [];
  private dropped = 0;

  /** `feed` null: the engine has no notices, or they could not be had. */
  constructor(
    private readonly feed: ClosedSocketFeed | null,
    private readonly clock: () => number,
    /** Most notices held between refreshes; more are counted as lost. */
    private readonly maxPending: number,
  ) {}

  /** Reads the notices queued so far (see Monitor.collectClosed). */
  collect(): void {
    if (!this.feed) return;
    const now = this.clock();
    for (const endpoint of this.feed.drain()) {
      // A socket never bound, or a listener already unhashed: no event could say which it was.
      // A known one's close is told by the next look or the sensor, with its addresses.
      if (isBlankEndpoint(endpoint)) continue;
      if (this.pending.length >= this.maxPending) {
        this.dropped++;
        continue;
      }
      this.pending.push({ endpoint, time: now });
    }
  }

  /** Drains and forgets every notice so far: the first snapshot already shows what they leave. */
  discard(): void {
    this.collect();
    this.pending = [];
    this.held = [];
  }

  /** Notices lost, in the kernel (buffer overflow) or here (too many between refreshes). */
  lost(): number {
    return this.dropped + (this.feed?.lost() ?? 0);
  }

  /**
   * Folds the notices into a refresh's events: a socket that was known gets its final counters
   * on its closed event; one that lives on (a connection entering FIN_WAIT2 or TIME_WAIT is
   * destroyed and replaced by a timewait socket) is left to the diff. A notice for a socket
   * never seen waits one refresh, since its timewait successor can appear in the next dump; if
   * it does not, it becomes an opened/closed pair marked shortLived. `covered` tells a notice
   * of a connection already reported closed, which is passed over.
   */
  merge(
    events: UnnumberedEvent[],
    previous: ReadonlyMap<string, Endpoint>,
    current: ReadonlyMap<string, Endpoint>,
    covered: (ep: Endpoint) => boolean,
  ): UnnumberedEvent[] {
    if (this.pending.length === 0 && this.held.length === 0) return events;
    const closedByKey = new Map<string, UnnumberedEvent>();
    for (const e of events) if (e.type === "closed") closedByKey.set(endpointKey(e.endpoint), e);
    const pairs: UnnumberedEvent[] = [];
    const held: ClosedNotice[] = [];
    const seen = new Set<string>();
    const listeners = listenersByPort(current, previous);
    const candidates = [...this.held.map((n) => ({ ...n, held: true })), ...this.pending.map((n) => ({ ...n, held: false }))];
    const living = livingPairs(current, candidates);
    for (const notice of candidates) {
      if (covered(notice.endpoint)) continue;
      const key = endpointKey(notice.endpoint);
      if (seen.has(key) || current.has(key) || living.has(pairKey(notice.endpoint))) continue;
      seen.add(key);
      const closed = closedByKey.get(key);
      if (closed) {
        closed.endpoint = withFinalCounters(closed.endpoint, notice.endpoint);
        continue;
      }
      if (previous.has(key)) continue;
      if (!notice.held) {
        held.push(notice);
        continue;
      }
      const ep = notice.endpoint;
      const owner = listenerFor(ep, listeners);
      if (owner) {
        ep.process = owner.process;
        ep.pids = owner.pids;
      }
      pairs.push({ type: "opened", time: notice.time, endpoint: ep, shortLived: true });
      pairs.push({ type: "closed", time: notice.time, endpoint: ep, shortLived: true });
    }
    this.pending = [];
    this.held = held;
    // Each short connection's pair stays together, before this refresh's own events.
    return [...pairs, ...events];
  }

  close(): void {
    this.feed?.close();
  }
}

/**
 * Which of the notices' address pairs a current endpoint still has. Only endpoints on a notice's
 * local port can: the others are passed over without building their keys, which at tens of
 * thousands of endpoints was most of what merging the notices cost.
 */
function livingPairs(current: ReadonlyMap<string, Endpoint>, notices: readonly { endpoint: Endpoint }[]): Set<string> {
  const wanted = new Set<string>();
  const ports = new Set<number>();
  for (const n of notices) {
    wanted.add(pairKey(n.endpoint));
    ports.add(n.endpoint.localPort);
  }
  const living = new Set<string>();
  for (const ep of current.values()) {
    if (!ports.has(ep.localPort)) continue;
    const key = pairKey(ep);
    if (wanted.has(key)) living.add(key);
  }
  return living;
}

function withFinalCounters(last: Endpoint, final: Endpoint): Endpoint {
  return {
    ...last,
    bytesSent: final.bytesSent ?? last.bytesSent,
    bytesReceived: final.bytesReceived ?? last.bytesReceived,
    packetsSent: final.packetsSent ?? last.packetsSent,
    packetsReceived: final.packetsReceived ?? last.packetsReceived,
  };
}
