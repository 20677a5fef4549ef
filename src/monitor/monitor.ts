/**
 * Successive snapshots of one engine become a numbered stream of endpoint events. Connections
 * that open and close between two refreshes are added from the kernel's destroy notices where the
 * engine offers them. Where the engine reports state changes as they happen (transitions), those
 * become events at once and each snapshot reconciles: a connection is reported once, whichever
 * source saw it first. With the sensor running, a refresh can be partial: it dumps only what the
 * sensor does not cover (UDP, and TCP where counters are wanted) and compares only those
 * protocols; a full refresh (a resync) dumps everything.
 */
import type { ClosedSocketFeed, SnapshotRequest, SocketEngine, SocketTransition, TransitionFeed } from "../engine/types.ts";
import type { Endpoint, Protocol } from "../model/endpoint.ts";
import { UnsupportedError } from "../errors.ts";
import { endpointKey } from "./endpoint-key.ts";
import { isBlankEndpoint } from "./blank-endpoint.ts";
import type { EndpointEvent } from "./events.ts";
import { compareEvents, diffSnapshots, type UnnumberedEvent } from "./snapshot-diff.ts";
import { mergeTransition } from "./transition-merge.ts";

export interface MonitorOptions {
  engine: SocketEngine;
  request: SnapshotRequest;
  /** Wall clock in ms; injectable for tests. */
  clock?: () => number;
  /** Listen for the kernel's socket-destroy notices (default true where the engine has them). */
  closedSockets?: boolean;
  /** Most notices held between refreshes; more are counted as lost. */
  maxPendingClosed?: number;
  /** Take state changes as they happen where the engine can report them (default false). */
  transitions?: boolean;
  /** Where the sensor cannot start, throw (an UnsupportedError) instead of a note and polling. */
  requireSensor?: boolean;
  /**
   * TCP counters are wanted at every refresh (counters events, the live view's columns): with
   * the sensor running, partial refreshes dump TCP too. Default false.
   */
  counters?: boolean;
}

/** Whether a refresh dumps every requested protocol or only what the sensor does not cover. */
export type RefreshScope = "full" | "partial";

/** Dumps of its protocol a retired key is kept after its socket left the table. */
const RETIRED_REFRESHES = 2;

/** The sensor reports TCP only. */
const SENSED: ReadonlySet<Protocol> = new Set(["tcp"]);

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
  /** When TCP was last dumped: counters' rates are over the time since. */
  private lastTcpTime = 0;
  private seq = 0;
  private feed: ClosedSocketFeed | null = null;
  private pendingClosed: ClosedNotice[] = [];
  private heldClosed: ClosedNotice[] = [];
  private lastEventTime = 0;
  private droppedNotices = 0;
  private readonly maxPending: number;
  private transitionFeed: TransitionFeed | null = null;
  /**
   * Wall time at which the latest snapshot with TCP in it began: older transitions of its sockets
   * are stale. A dump without TCP says nothing about them, so it leaves this alone.
   */
  private snapshotStartedAt = 0;
  /**
   * Connections already reported closed, by key and by address pair, with the refresh that
   * retired them: the next snapshots may still show them (a TIME_WAIT successor with the same
   * cookie, a dump taken before the close) and the destroy notice may still come.
   */
  private readonly retired = new Map<string, Retirement>();
  private refreshes = 0;
  /** Keys of sockets the sensor opened since the latest snapshot with TCP in it began. */
  private sensedKeys = new Set<string>();
  /** Dumps by protocol: a partial refresh ages only the socket retirements of what it dumped. */
  private readonly dumps: Record<Protocol, number> = { tcp: 0, udp: 0 };
  private countersWanted: boolean;
  /** endpointKey by address pair, for transitions that carry no cookie; built when first needed. */
  private pairIndex: Map<string, string> | null = null;
  /** Known listeners with their process, by port; built when first needed after a refresh. */
  private listenerIndex: ListenerIndex | null = null;
  private lostTransitionsSeen = 0;
  private resyncWanted = false;
  private unreadable = 0;

  constructor(private readonly options: MonitorOptions) {
    this.clock = options.clock ?? Date.now;
    this.maxPending = options.maxPendingClosed ?? 200_000;
    this.countersWanted = options.counters ?? false;
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
    if (options.transitions) {
      if (!options.engine.transitions) {
        const why = `the ${options.engine.name} engine has no sensor of state changes`;
        if (options.requireSensor) this.refuse(new UnsupportedError(`eBPF sensor unavailable: ${why}`));
        this.notes.push(`${why}; polling every refresh`);
      } else {
        try {
          this.transitionFeed = options.engine.transitions();
          for (const n of this.transitionFeed.notes) this.notes.push(n);
        } catch (err) {
          if (options.requireSensor) this.refuse(err);
          this.notes.push(`${(err as Error).message}; polling every refresh instead`);
        }
      }
    }
  }

  /** The sensor was asked for and cannot run: release what was opened and say why, on one line. */
  private refuse(err: unknown): never {
    this.feed?.close();
    this.options.engine.close();
    const message = `${(err as Error).message}; --sensor auto would poll instead`;
    throw err instanceof UnsupportedError ? new UnsupportedError(message, { cause: err }) : err;
  }

  /** Whether state changes come as they happen (the sensor started). */
  get sensing(): boolean {
    return this.transitionFeed !== null;
  }

  /** Calls `ready` when state changes are waiting to be taken with takeTransitions(). */
  onTransitions(ready: () => void): void {
    this.transitionFeed?.onReady(ready);
  }

  /** State changes reported since the last look, as numbered events (none without a sensor). */
  takeTransitions(): EndpointEvent[] {
    return this.number(this.applyTransitions());
  }

  /** Transitions lost (the kernel's output full, or too many waiting here). */
  lostTransitions(): number {
    return this.transitionFeed?.lost() ?? 0;
  }

  /** Transitions were lost since the last refresh: only a full snapshot can tell what they were. */
  get resyncDue(): boolean {
    return this.resyncWanted;
  }

  /** Whether partial refreshes dump TCP too, for its counters (may change, e.g. on a reload). */
  get counters(): boolean {
    return this.countersWanted;
  }

  set counters(wanted: boolean) {
    this.countersWanted = wanted;
  }

  /**
   * What a refresh of this scope dumps: everything requested, unless the sensor runs and the
   * refresh is partial; then what the sensor does not cover, and TCP too when counters are wanted.
   */
  protocolsFor(scope: RefreshScope): ReadonlySet<Protocol> {
    const requested = this.options.request.protocols;
    if (scope === "full" || !this.transitionFeed || this.countersWanted) return requested;
    return new Set([...requested].filter((p) => !SENSED.has(p)));
  }

  /** Processes whose sockets the first snapshot could not read (other users', without privileges). */
  get unreadableProcesses(): number {
    return this.unreadable;
  }

  /** The first snapshot: the baseline later events are relative to. */
  start(): Endpoint[] {
    this.snapshotStartedAt = this.clock();
    const snap = this.options.engine.snapshot(this.options.request);
    for (const n of snap.notes) this.notes.push(n);
    this.unreadable = snap.unreadableProcesses;
    this.known = new Map(snap.endpoints.map((ep) => [endpointKey(ep), ep]));
    this.pairIndex = null;
    this.lastTime = snap.takenAt;
    this.lastTcpTime = snap.takenAt;
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
      // A socket never bound, or a listener already unhashed: no event could say which it was.
      // A known one's close is told by the next look or the sensor, with its addresses.
      if (isBlankEndpoint(endpoint)) continue;
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

  /**
   * Takes a snapshot and returns what changed since the previous one, numbered. A partial
   * refresh (see protocolsFor) compares only the protocols it dumped: the others stay as the
   * sensor left them. Lost sensor changes make any refresh full.
   */
  refresh(scope: RefreshScope = "full"): EndpointEvent[] {
    this.collectClosed();
    // Changes already reported come first, so the snapshot is compared with what they made.
    const sensed = this.applyTransitions();
    this.refreshes++;
    const full = scope === "full" || this.resyncWanted;
    this.resyncWanted = false;
    const requested = this.options.request.protocols;
    const protocols = this.protocolsFor(full ? "full" : "partial");
    const withTcp = protocols.has("tcp");
    const previous = this.known;
    let events: UnnumberedEvent[] = [];
    let current = previous;
    if (protocols.size > 0) {
      const started = this.clock();
      const snap = this.options.engine.snapshot(protocols === requested ? this.options.request : { ...this.options.request, protocols });
      const time = snap.takenAt;
      const ctx = { time, elapsedMs: time - (withTcp ? this.lastTcpTime : this.lastTime) };
      if (protocols.size === requested.size) {
        const diff = diffSnapshots(previous, snap.endpoints, ctx);
        current = diff.current;
        events = diff.events;
        this.known = current;
      } else {
        events = this.diffInPlace(protocols, snap.endpoints, ctx);
      }
      for (const p of protocols) this.dumps[p]++;
      // The indexes by address pair and of listeners serve TCP transitions only: a dump
      // without TCP leaves what they index unchanged.
      if (withTcp) {
        this.snapshotStartedAt = started;
        this.sensedKeys.clear();
        this.lastTcpTime = time;
        this.pairIndex = null;
        this.listenerIndex = null;
      }
      this.lastTime = time;
    }
    if (this.transitionFeed) events = this.reconcile(events, current);
    events.sort(compareEvents);
    const merged = this.mergeClosed(events, previous, current);
    return this.number([...sensed, ...merged]);
  }

  /**
   * Compares the dumped protocols' part of the table with their new snapshot and updates the
   * table in place; the other protocols' endpoints are neither compared nor copied. The table is
   * passed over once, to find what of the dumped protocols is gone.
   */
  private diffInPlace(protocols: ReadonlySet<Protocol>, endpoints: readonly Endpoint[], ctx: { time: number; elapsedMs: number }): UnnumberedEvent[] {
    const before = new Map<string, Endpoint>();
    for (const [key, ep] of this.known) if (protocols.has(ep.protocol)) before.set(key, ep);
    const diff = diffSnapshots(before, endpoints, ctx);
    for (const key of before.keys()) if (!diff.current.has(key)) this.known.delete(key);
    for (const [key, ep] of diff.current) this.known.set(key, ep);
    return diff.events;
  }

  /**
   * A short connection held back one refresh carries its notice's time; keep times in step with
   * sequence numbers so that consumers can rely on both growing.
   */
  private number(events: UnnumberedEvent[]): EndpointEvent[] {
    return events.map((e) => {
      this.lastEventTime = Math.max(e.time, this.lastEventTime);
      return { ...e, time: this.lastEventTime, seq: ++this.seq };
    });
  }

  /**
   * Drops the snapshot's events about connections the sensor already reported closed, retires
   * what the snapshot saw close (a late transition must not open it again), and forgets retired
   * keys once their sockets are gone.
   */
  private reconcile(events: UnnumberedEvent[], current: Map<string, Endpoint>): UnnumberedEvent[] {
    const kept: UnnumberedEvent[] = [];
    for (const e of rekeyed(events)) {
      if (this.isRetired(e.endpoint, true)) {
        // A successor found by its addresses keeps the retirement under its own key.
        this.retired.set(endpointKey(e.endpoint), this.retirement(e.endpoint, e.endpoint.cookie !== null || e.endpoint.remotePort === 0));
        continue;
      }
      if (e.type === "closed") this.retire(e.endpoint, e.time);
      kept.push(e);
    }
    for (const [key, r] of this.retired) {
      if (!current.has(key) && this.dumps[r.protocol] - r.dumpAt > RETIRED_REFRESHES) this.retired.delete(key);
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

  private retire(ep: Endpoint, at: number = this.clock()): void {
    // Set last: without a cookie, a connection's key is its address pair.
    this.retired.set(endpointKey(ep), this.retirement(ep, ep.cookie !== null || ep.remotePort === 0, at));
    if (ep.remotePort !== 0) this.retired.set(pairKey(ep), this.retirement(ep, false, at));
  }

  /**
   * Whether a socket was retired. A snapshot's sockets (`inDump`) are matched by their own key
   * or their address pair until the retirement ages out; the sensor's and the destroy notices'
   * by their address pair only for RETIRED_REFRESHES refreshes, since a new connection may take
   * the same addresses and ports soon after, long before the next resync.
   */
  private isRetired(ep: Endpoint, inDump = false, time?: number): boolean {
    if (this.retired.size === 0) return false;
    const live = (r: Retirement | undefined): r is Retirement => r !== undefined && (inDump || r.socket || this.refreshes - r.refreshAt <= RETIRED_REFRESHES);
    // Another socket on the same addresses is another connection (a successor in TIME_WAIT keeps
    // its cookie), and so is a change the kernel made after the retirement. Without a cookie an
    // endpoint's own key is its address pair, so both lookups are held to this.
    // A dump's TIME_WAIT socket on a retired pair is the retired connection's successor even under
    // another cookie (made for the timewait socket when the sensor's lookup raced its birth): a
    // later connection on the pair would have been opened and retired by the sensor.
    const successor = inDump && ep.state === "TIME_WAIT";
    const sameConnection = (r: Retirement) => (successor || !(ep.cookie !== null && r.cookie !== null && ep.cookie !== r.cookie)) && (time === undefined || time <= r.at);
    const own = this.retired.get(endpointKey(ep));
    // A change the kernel made after a socket's retirement is news even under a retired cookie:
    // a lookup that ran after a reset can have handed the closed connection its successor's
    // cookie (the same four-tuple, taken again at once).
    if (live(own) && (own.socket ? time === undefined || time <= own.at : sameConnection(own))) return true;
    if (ep.remotePort === 0) return false;
    const pair = this.retired.get(pairKey(ep));
    return live(pair) && sameConnection(pair);
  }

  /**
   * Whether a destroy notice tells of a connection already reported closed. Its cookie need not
   * be the one the sensor's lookup or a dump saw: a socket looked up only once in TIME_WAIT has
   * no cookie of its own until the notice is made, and then a new one. So, with the sensor
   * running, the first notice on a retired address pair is that connection's whatever its
   * cookie; a second is another connection's (the kernel gives a reset's 4-tuple out again).
   */
  private noticeCovered(ep: Endpoint): boolean {
    const pair = ep.remotePort === 0 ? undefined : this.retired.get(pairKey(ep));
    if (this.isRetired(ep)) {
      if (pair) pair.noticeTaken = true;
      return true;
    }
    if (!this.transitionFeed || !pair || pair.noticeTaken || this.refreshes - pair.refreshAt > RETIRED_REFRESHES) return false;
    pair.noticeTaken = true;
    return true;
  }

  /** The key under which a transition's socket is known, if it is. */
  private knownKey(ep: Endpoint): string | null {
    const key = endpointKey(ep);
    if (this.known.has(key)) return key;
    if (ep.cookie !== null || ep.remotePort === 0) return null;
    if (!this.pairIndex) {
      this.pairIndex = new Map();
      for (const [k, known] of this.known) if (known.remotePort !== 0) this.pairIndex.set(pairKey(known), k);
    }
    return this.pairIndex.get(pairKey(ep)) ?? null;
  }

  private setKnown(key: string, ep: Endpoint): void {
    this.known.set(key, ep);
    if (this.pairIndex && ep.remotePort !== 0) this.pairIndex.set(pairKey(ep), key);
  }

  private deleteKnown(key: string, ep: Endpoint): void {
    this.known.delete(key);
    if (this.pairIndex && ep.remotePort !== 0) this.pairIndex.delete(pairKey(ep));
  }

  /** Folds waiting transitions into the table; returns their events, unnumbered. */
  private applyTransitions(): UnnumberedEvent[] {
    if (!this.transitionFeed) return [];
    const out: UnnumberedEvent[] = [];
    for (const t of this.transitionFeed.drain()) this.applyTransition(t, out);
    const lost = this.transitionFeed.lost();
    if (lost > this.lostTransitionsSeen) {
      this.lostTransitionsSeen = lost;
      this.resyncWanted = true;
    }
    return out;
  }

  private applyTransition(t: SocketTransition, out: UnnumberedEvent[]): void {
    const ep = t.endpoint;
    if (this.isRetired(ep, false, t.time)) return;
    const key = this.knownKey(ep);
    const before = key === null ? undefined : this.known.get(key);
    // The latest snapshot saw this socket after the change: it is already as the change made it.
    // Not so for what the sensor itself added since (the snapshot never saw it), nor for a close:
    // a socket a snapshot still shows after its close is its TIME_WAIT successor, and the
    // connection it stands for ended at the close.
    if (before && t.time < this.snapshotStartedAt && ep.state !== "CLOSE" && !this.sensedKeys.has(key!)) return;
    const time = t.time;
    if (ep.state === "CLOSE") {
      if (before) {
        this.deleteKnown(key!, before);
        // Its last known state, with the change's final counters (the last look's are older).
        const last = mergeTransition(before, ep, before.state);
        out.push({ type: "closed", time, endpoint: last });
        this.retire(before, time);
      } else {
        // Opened and closed between two looks, its opening unseen (a socket older than the sensor,
        // or records lost). It is reported in its last state, as a closed known socket is: in
        // CLOSE, it would read as never connected and be passed over by the default selection.
        const last: Endpoint = t.previousState && t.previousState !== "CLOSE" ? { ...ep, state: t.previousState } : ep;
        out.push({ type: "opened", time, endpoint: last, shortLived: true });
        out.push({ type: "closed", time, endpoint: last, shortLived: true });
      }
      this.retire(ep, time);
      return;
    }
    if (!before) {
      // An accepted socket whose listener the sensor never saw listen (it predates the sensor)
      // has no process of its own: its listener's is the best there is.
      if (!ep.process && ep.remotePort !== 0) {
        this.listenerIndex ??= listenersByPort(this.known);
        const owner = listenerFor(ep, this.listenerIndex);
        if (owner) {
          ep.process = owner.process;
          ep.pids = owner.pids;
        }
      }
      this.setKnown(endpointKey(ep), ep);
      this.sensedKeys.add(endpointKey(ep));
      out.push({ type: "opened", time, endpoint: ep });
      return;
    }
    if (before.state === ep.state) return;
    const next = mergeTransition(before, ep, ep.state);
    this.setKnown(key!, next);
    out.push({ type: "state-changed", time, endpoint: next, previousState: before.state });
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
      if (this.noticeCovered(notice.endpoint)) continue;
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
    this.transitionFeed?.close();
    this.feed?.close();
    this.options.engine.close();
  }
}

/**
 * A socket the sensor announced without a cookie (its lookup came too late, or was another
 * socket's) is known by its addresses; the next dump names it by its cookie, and a diff by key
 * sees one connection close and another open. A cookieless connection closed and one with a
 * cookie opened on the same address pair are the same socket: at most a change of state.
 */
function rekeyed(events: UnnumberedEvent[]): UnnumberedEvent[] {
  const cookieless = new Map<string, UnnumberedEvent>();
  for (const e of events) if (e.type === "closed" && e.endpoint.cookie === null && e.endpoint.remotePort !== 0) cookieless.set(pairKey(e.endpoint), e);
  if (cookieless.size === 0) return events;
  const same = new Set<UnnumberedEvent>();
  const out: UnnumberedEvent[] = [];
  for (const e of events) {
    const was = e.type === "opened" && e.endpoint.cookie !== null ? cookieless.get(pairKey(e.endpoint)) : undefined;
    if (!was || same.has(was)) continue;
    same.add(was);
    same.add(e);
    const ep = e.endpoint;
    // What the sensor knew and a dump cannot: when it opened, and who made it.
    if (!ep.openedAt && was.endpoint.openedAt) ep.openedAt = was.endpoint.openedAt;
    if (!ep.process && was.endpoint.process) {
      ep.process = was.endpoint.process;
      ep.pids = was.endpoint.pids;
    }
    if (ep.state !== was.endpoint.state) out.push({ type: "state-changed", time: e.time, endpoint: ep, previousState: was.endpoint.state });
  }
  if (same.size === 0) return events;
  for (const e of events) if (!same.has(e)) out.push(e);
  return out;
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
  // With every namespace listed, two of them can hold the same four-tuple.
  return `${ep.protocol}|${ep.localAddress}|${ep.localPort}|${ep.remoteAddress}|${ep.remotePort}|${ep.namespace?.inode ?? ""}`;
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
  const namespace = ep.namespace?.inode ?? null;
  for (const l of index.get(ep.localPort) ?? []) {
    // Another namespace's listener on the same port never accepted this socket.
    if ((l.namespace?.inode ?? null) !== namespace) continue;
    if (l.localAddress === ep.localAddress || l.localAddress === "0.0.0.0" || l.localAddress === "::") return l;
  }
  return null;
}
