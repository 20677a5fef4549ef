/**
 * Successive snapshots of one engine become a numbered stream of endpoint events. Connections
 * that open and close between two refreshes are added from the kernel's destroy notices where the
 * engine offers them (closed-notices.ts). Where the engine reports state changes as they happen
 * (transitions), those become events at once and each snapshot reconciles: a connection is
 * reported once, whichever source saw it first (retirements.ts). With the sensor running, a
 * refresh can be partial: it dumps only what the sensor does not cover (UDP, and TCP where
 * counters are wanted) and compares only those protocols; a full refresh (a resync) dumps
 * everything.
 */
import type { SnapshotRequest, SocketEngine, SocketTransition, TransitionFeed } from "../engine/types.ts";
import type { Endpoint, Protocol, TcpState } from "../model/endpoint.ts";
import { UnsupportedError } from "../errors.ts";
import { ClosedNotices } from "./closed-notices.ts";
import { openClosedSockets, openTransitions } from "./monitor-feeds.ts";
import { endpointKey, pairKey } from "./endpoint-key.ts";
import type { EndpointEvent, UnnumberedEvent } from "./events.ts";
import { listenerFor, listenersByPort, type ListenerIndex } from "./listener-owner.ts";
import { Retirements } from "./retirements.ts";
import { diffSnapshots, type DiffContext } from "./snapshot-diff.ts";
import { closesUnseen } from "./unseen-closes.ts";
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

/** The sensor reports TCP only. */
const SENSED: ReadonlySet<Protocol> = new Set(["tcp"]);

export class Monitor {
  /** Things to tell the user once, e.g. why short-lived connections may be missed. */
  readonly notes: string[] = [];
  private readonly clock: () => number;
  private known = new Map<string, Endpoint>();
  private lastTime = 0;
  /** When TCP was last dumped: counters' rates are over the time since. */
  private lastTcpTime = 0;
  private seq = 0;
  private readonly closed: ClosedNotices;
  private lastEventTime = 0;
  private transitionFeed: TransitionFeed | null = null;
  /**
   * Wall time at which the latest snapshot with TCP in it began: older transitions of its sockets
   * are stale. A dump without TCP says nothing about them, so it leaves this alone.
   */
  private snapshotStartedAt = 0;
  private readonly retirements: Retirements;
  /** Keys of sockets the sensor opened since the latest snapshot with TCP in it began. */
  private sensedKeys = new Set<string>();
  /** Whether partial refreshes dump TCP too, for its counters (may change, e.g. on a reload). */
  counters: boolean;
  /** endpointKey by address pair, for transitions that carry no cookie; built when first needed. */
  private pairIndex: Map<string, string> | null = null;
  /** Known listeners with their process, by port; built when first needed after a refresh. */
  private listenerIndex: ListenerIndex | null = null;
  /** Connections the batch being applied opened, gone before the latest snapshot (closeGone). */
  private openedGone = new Set<string>();
  private lostTransitionsSeen = 0;
  private resyncWanted = false;
  private unreadable = 0;

  constructor(private readonly options: MonitorOptions) {
    this.clock = options.clock ?? Date.now;
    this.retirements = new Retirements(this.clock);
    this.counters = options.counters ?? false;
    const feed = options.closedSockets === false ? null : openClosedSockets(options.engine, this.notes);
    this.closed = new ClosedNotices(feed, this.clock, options.maxPendingClosed ?? 200_000);
    if (options.transitions) this.transitionFeed = openTransitions(options.engine, options.requireSensor ?? false, this.notes, (err) => this.refuse(err));
  }

  /** The sensor was asked for and cannot run: release what was opened and say why, on one line. */
  private refuse(err: unknown): never {
    this.closed.close();
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

  /**
   * What a refresh of this scope dumps: everything requested, unless the sensor runs and the
   * refresh is partial; then what the sensor does not cover, and TCP too when counters are wanted.
   */
  protocolsFor(scope: RefreshScope): ReadonlySet<Protocol> {
    const requested = this.options.request.protocols;
    if (scope === "full" || !this.transitionFeed || this.counters) return requested;
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
    this.closed.discard();
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
    this.closed.collect();
  }

  /** Notices lost, in the kernel (buffer overflow) or here (too many between refreshes). */
  lostNotices(): number {
    return this.closed.lost();
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
    this.retirements.refreshed();
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
      for (const p of protocols) this.retirements.dumped(p);
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
    // The diff's events are in order (compareEvents), and reconciling keeps them so.
    if (this.transitionFeed && withTcp) events = closesUnseen(events);
    if (this.transitionFeed) events = this.retirements.reconcile(events, current);
    const sensing = this.transitionFeed !== null;
    const merged = this.closed.merge(events, previous, current, (ep) => this.retirements.noticeCovered(ep, sensing));
    return this.number([...sensed, ...merged]);
  }

  /**
   * Compares the dumped protocols' part of the table with their new snapshot and updates the
   * table in place; the other protocols' endpoints are neither compared nor copied. The table is
   * passed over once, to find what of the dumped protocols is gone.
   */
  private diffInPlace(protocols: ReadonlySet<Protocol>, endpoints: readonly Endpoint[], ctx: DiffContext): UnnumberedEvent[] {
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

  /** The key under which a transition's socket is known, if it is. */
  private knownKey(ep: Endpoint): string | null {
    const key = endpointKey(ep);
    if (this.known.has(key)) return key;
    if (ep.cookie !== null || ep.remotePort === 0) return null;
    return this.pairs().get(pairKey(ep)) ?? null;
  }

  private pairs(): Map<string, string> {
    if (!this.pairIndex) {
      this.pairIndex = new Map();
      for (const [k, known] of this.known) if (known.remotePort !== 0) this.pairIndex.set(pairKey(known), k);
    }
    return this.pairIndex;
  }

  /**
   * The key of an accepted socket known by its request sock's cookie (a lookup made before the
   * child replaced it) when a change from SYN_RECV names it by the child's own.
   */
  private requestKey(ep: Endpoint, previousState: TcpState | null): string | null {
    if (previousState !== "SYN_RECV" || ep.cookie === null || ep.remotePort === 0) return null;
    const key = this.pairs().get(pairKey(ep));
    const known = key === undefined ? undefined : this.known.get(key);
    return known?.state === "SYN_RECV" && known.cookie !== ep.cookie ? key! : null;
  }

  private setKnown(key: string, ep: Endpoint): void {
    this.known.set(key, ep);
    if (this.pairIndex && ep.remotePort !== 0) this.pairIndex.set(pairKey(ep), key);
  }

  private deleteKnown(key: string, ep: Endpoint): void {
    this.known.delete(key);
    this.openedGone.delete(key);
    if (this.pairIndex && ep.remotePort !== 0) this.pairIndex.delete(pairKey(ep));
  }

  /** Folds waiting transitions into the table; returns their events, unnumbered. */
  private applyTransitions(): UnnumberedEvent[] {
    if (!this.transitionFeed) return [];
    const out: UnnumberedEvent[] = [];
    for (const t of this.transitionFeed.drain()) this.applyTransition(t, out);
    if (this.openedGone.size > 0) this.closeGone(out);
    const lost = this.transitionFeed.lost();
    if (lost > this.lostTransitionsSeen) {
      this.lostTransitionsSeen = lost;
      this.resyncWanted = true;
    }
    return out;
  }

  /**
   * Changes can be read after a snapshot that began later than they were made (a record reserved
   * but not yet committed holds back all behind it). A connection they open that the snapshot did
   * not show and no lookup found was gone by then. Unless its CLOSE was in the batch, it is closed
   * at the batch's end: a CLOSE lost before that snapshot was made good by it, so no resync would
   * come for it. A CLOSE read later is older than the retirement, so it is passed over.
   */
  private closeGone(out: UnnumberedEvent[]): void {
    const now = this.clock();
    for (const key of this.openedGone) {
      const ep = this.known.get(key);
      if (!ep) continue;
      this.deleteKnown(key, ep);
      out.push({ type: "closed", time: now, endpoint: ep });
      this.retirements.retire(ep, now);
    }
    this.openedGone.clear();
  }

  private applyTransition(t: SocketTransition, out: UnnumberedEvent[]): void {
    const ep = t.endpoint;
    if (this.retirements.isRetired(ep, false, t.time)) return;
    const found = this.knownKey(ep);
    const request = found === null ? this.requestKey(ep, t.previousState) : null;
    const key = found ?? request;
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
        this.retirements.retire(before, time);
      } else {
        // Opened and closed between two looks, its opening unseen (a socket older than the sensor,
        // or records lost). It is reported in its last state, as a closed known socket is: in
        // CLOSE, it would read as never connected and be passed over by the default selection.
        const last: Endpoint = t.previousState && t.previousState !== "CLOSE" ? { ...ep, state: t.previousState } : ep;
        out.push({ type: "opened", time, endpoint: last, shortLived: true });
        out.push({ type: "closed", time, endpoint: last, shortLived: true });
      }
      this.retirements.retire(ep, time);
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
      const opened = endpointKey(ep);
      this.setKnown(opened, ep);
      this.sensedKeys.add(opened);
      // A lookup finds a socket that exists (with its cookie): one without was gone when read.
      if (t.time < this.snapshotStartedAt && ep.cookie === null && ep.remotePort !== 0) this.openedGone.add(opened);
      this.retirements.reopened(ep);
      out.push({ type: "opened", time, endpoint: ep });
      return;
    }
    if (before.state === ep.state) return;
    const next = mergeTransition(before, ep, ep.state);
    if (request !== null) {
      // The child is the socket dumps will show: its cookie and inode from now on.
      next.cookie = ep.cookie;
      if (ep.inode !== 0) next.inode = ep.inode;
      this.deleteKnown(request, before);
      if (this.sensedKeys.has(request)) this.sensedKeys.add(endpointKey(next));
    }
    this.setKnown(request === null ? key! : endpointKey(next), next);
    out.push({ type: "state-changed", time, endpoint: next, previousState: before.state });
  }

  close(): void {
    this.transitionFeed?.close();
    this.closed.close();
    this.options.engine.close();
  }
}
