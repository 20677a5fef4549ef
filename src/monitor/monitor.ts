/**
 * Successive snapshots of one engine become a numbered stream of endpoint events. Connections
 * that open and close between two refreshes are added from the kernel's destroy notices where the
 * engine offers them.
 */
import type { ClosedSocketFeed, Endpoint, SnapshotRequest, SocketEngine } from "../engine/types.ts";
import { endpointKey } from "./endpoint-key.ts";
import type { EndpointEvent } from "./events.ts";
import { compareEvents, diffSnapshots, type UnnumberedEvent } from "./snapshot-diff.ts";

export interface MonitorOptions {
  engine: SocketEngine;
  request: SnapshotRequest;
  /** Wall clock in ms; injectable for tests. */
  clock?: () => number;
  /** Listen for the kernel's socket-destroy notices (default true where the engine has them). */
  closedSockets?: boolean;
  /** Most notices held between refreshes; more are counted as lost. */
  maxPendingClosed?: number;
}

interface ClosedNotice {
  endpoint: Endpoint;
  time: number;
}

export class Monitor {
  /** Things to tell the user once, e.g. why short-lived connections may be missed. */
  readonly notes: string[] = [];
  private readonly clock: () => number;
  private known = new Map<string, Endpoint>();
  private lastTime = 0;
  private seq = 0;
  private feed: ClosedSocketFeed | null = null;
  private pendingClosed: ClosedNotice[] = [];
  private heldClosed: ClosedNotice[] = [];
  private lastEventTime = 0;
  private droppedNotices = 0;
  private readonly maxPending: number;

  constructor(private readonly options: MonitorOptions) {
    this.clock = options.clock ?? Date.now;
    this.maxPending = options.maxPendingClosed ?? 200_000;
    if (options.closedSockets !== false) {
      if (!options.engine.closedSockets) {
        this.notes.push(`connections shorter than one refresh are not seen: the ${options.engine.name} engine has no close notices`);
      } else {
        try {
          this.feed = options.engine.closedSockets();
        } catch (err) {
          this.notes.push(`connections shorter than one refresh are not seen: ${(err as Error).message}`);
        }
      }
    }
  }

  /** The first snapshot: the baseline later events are relative to. */
  start(): Endpoint[] {
    const snap = this.options.engine.snapshot(this.options.request);
    for (const n of snap.notes) this.notes.push(n);
    this.known = new Map(snap.endpoints.map((ep) => [endpointKey(ep), ep]));
    this.lastTime = snap.takenAt;
    this.collectClosed();
    this.pendingClosed = [];
    this.heldClosed = [];
    return snap.endpoints;
  }

  /** Numbered opened events for endpoints that already existed (e.g. at start). */
  announce(endpoints: readonly Endpoint[]): EndpointEvent[] {
    const time = this.lastTime || this.clock();
    this.lastEventTime = Math.max(this.lastEventTime, time);
    return endpoints.map((endpoint) => ({ type: "opened" as const, time, endpoint, seq: ++this.seq }));
  }

  /** The endpoints as of the last refresh. */
  current(): Endpoint[] {
    return [...this.known.values()];
  }

  /** The same, by endpointKey, without a copy: valid until the next refresh replaces it. */
  table(): ReadonlyMap<string, Endpoint> {
    return this.known;
  }

  /**
   * Reads the kernel's destroy notices queued so far. Call it often between refreshes (every
   * 100 ms or so) so that a burst of short connections does not overflow the kernel's buffer.
   */
  collectClosed(): void {
    if (!this.feed) return;
    const now = this.clock();
    for (const endpoint of this.feed.drain()) {
      if (this.pendingClosed.length >= this.maxPending) {
        this.droppedNotices++;
        continue;
      }
      this.pendingClosed.push({ endpoint, time: now });
    }
  }

  /** Notices lost, in the kernel (buffer overflow) or here (too many between refreshes). */
  lostNotices(): number {
    return this.droppedNotices + (this.feed?.lost() ?? 0);
  }

  /** Takes a snapshot and returns what changed since the previous one, numbered. */
  refresh(): EndpointEvent[] {
    this.collectClosed();
    const snap = this.options.engine.snapshot(this.options.request);
    const time = snap.takenAt;
    const { events, current } = diffSnapshots(this.known, snap.endpoints, { time, elapsedMs: time - this.lastTime });
    const previous = this.known;
    this.known = current;
    this.lastTime = time;
    events.sort(compareEvents);
    const merged = this.mergeClosed(events, previous, current);
    // A short connection held back one refresh carries its notice's time; keep times in step
    // with sequence numbers so that consumers can rely on both growing.
    return merged.map((e) => {
      this.lastEventTime = Math.max(e.time, this.lastEventTime);
      return { ...e, time: this.lastEventTime, seq: ++this.seq };
    });
  }

  /**
   * Folds destroy notices into the diff: a socket that was known gets its final counters on its
   * closed event; one that lives on (a connection entering FIN_WAIT2 or TIME_WAIT is destroyed
   * and replaced by a timewait socket) is left to the diff. A notice for a socket never seen
   * waits one refresh, since its timewait successor can appear in the next dump; if it does not,
   * it becomes an opened/closed pair marked shortLived.
   */
  private mergeClosed(events: UnnumberedEvent[], previous: Map<string, Endpoint>, current: Map<string, Endpoint>): UnnumberedEvent[] {
    if (this.pendingClosed.length === 0 && this.heldClosed.length === 0) return events;
    const closedByKey = new Map<string, UnnumberedEvent>();
    for (const e of events) if (e.type === "closed") closedByKey.set(endpointKey(e.endpoint), e);
    const pairs: UnnumberedEvent[] = [];
    const held: ClosedNotice[] = [];
    const seen = new Set<string>();
    const listeners = listenersByPort(current, previous);
    const candidates = [...this.heldClosed.map((n) => ({ ...n, held: true })), ...this.pendingClosed.map((n) => ({ ...n, held: false }))];
    const living = livingPairs(current, candidates);
    for (const notice of candidates) {
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
    this.pendingClosed = [];
    this.heldClosed = held;
    // Each short connection's pair stays together, before this refresh's own events.
    return [...pairs, ...events];
  }

  close(): void {
    this.feed?.close();
    this.options.engine.close();
  }
}

/** The address pair of a connection, whatever socket object carries it now. */
/**
 * Which of the notices' address pairs a current endpoint still has. Only endpoints on a notice's
 * local port can: the others are passed over without building their keys, which at tens of
 * thousands of endpoints was most of what merging the notices cost.
 */
function livingPairs(current: Map<string, Endpoint>, notices: readonly { endpoint: Endpoint }[]): Set<string> {
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

function pairKey(ep: Endpoint): string {
  return `${ep.protocol}|${ep.localAddress}|${ep.localPort}|${ep.remoteAddress}|${ep.remotePort}`;
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

type ListenerIndex = Map<number, Endpoint[]>;

function listenersByPort(...sets: Map<string, Endpoint>[]): ListenerIndex {
  const index: ListenerIndex = new Map();
  for (const set of sets) {
    for (const ep of set.values()) {
      if (ep.protocol !== "tcp" || ep.state !== "LISTEN" || !ep.process) continue;
      const list = index.get(ep.localPort);
      if (list) list.push(ep);
      else index.set(ep.localPort, [ep]);
    }
  }
  return index;
}

/**
 * The accepted side of a short connection belongs to whoever listens on its local port: the
 * best owner there is once the socket itself is gone.
 */
function listenerFor(ep: Endpoint, index: ListenerIndex): Endpoint | null {
  if (ep.protocol !== "tcp") return null;
  for (const l of index.get(ep.localPort) ?? []) {
    if (l.localAddress === ep.localAddress || l.localAddress === "0.0.0.0" || l.localAddress === "::") return l;
  }
  return null;
}
