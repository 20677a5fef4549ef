/**
 * The eBPF sensor's records turned into socket transitions: each socket (by its kernel address)
 * is announced at its first change that has a local port, completed by a targeted sock_diag
 * lookup while it still exists, and carries the process the program kept for it.
 *
 * Namespaces: where the program reads it (the kernel has BTF), each record carries its socket's own
 * network namespace, and a socket is ours exactly when that is the engine's. Without it the
 * socket's namespace is guessed from its process, or for an accepted socket with none from our
 * listener on its address and port, which two namespaces with the same addresses can fool.
 *
 * Records are read when the sensor's descriptors become readable, told by one blocking poll on
 * koffi's worker thread (FdWaiter). Where that cannot be set up, a short timer reads them instead
 * (one period of latency at most, and its idle wake-ups).
 */
import type { Endpoint, NamespaceTag, TcpState } from "../../model/endpoint.ts";
import type { ProcessInfo } from "../../model/process.ts";
import type { SocketTransition, TransitionFeed } from "../types.ts";
import { monotonicMs } from "./clocks.ts";
import { NO_PIDS, bareEndpoint } from "../bare-endpoint.ts";
import { SensorUnavailableError, SetStateSensor } from "./bpf/sensor.ts";
import type { SetStateRecord } from "./bpf/set-state-record.ts";
import { PERF_REORDER_WINDOW_NS } from "./bpf/cpu-order.ts";
import type { TcpTuple } from "./diag-lookup.ts";
import { FdWaiter } from "./fd-waiter.ts";
import { ringBytesFromEnv } from "./sensor-ring-env.ts";
import { LINGERING, isBirth, portsOf, tupleOf, withCounters } from "./sensor-record-facts.ts";

/** How often the ring is read when no poll can wait on it. */
export const SENSOR_DRAIN_MS = 3;
/** When held records are read again: just after the perf buffers' reorder window has passed. */
const HELD_REREAD_MS = Number(PERF_REORDER_WINDOW_NS / 1_000_000n) + 1;
/** How long the kernel's loss counts are taken as read (a loss is seen at most this late). */
const LOSS_READ_MS = 50;
/** Most transitions held for the monitor; more are counted as lost. */
const MAX_QUEUED = 100_000;
/** Most sockets followed at once (those whose close was lost stay until this pushes them out). */
const MAX_SOCKETS = 200_000;
const IPPROTO_TCP = 6;

/** What the feed needs from the engine: its socket table, its process reader, its namespace. */
export interface SensorFeedHost {
  /**
   * The socket with these addresses in namespace `netns` (the engine's own without allNamespaces,
   * or when null), as an endpoint (null when there is none any more), and, without one, whether
   * a listener there takes its local address and port.
   */
  lookup(tuple: TcpTuple, netns: number | null): { endpoint: Endpoint | null; listener: boolean };
  process(pid: number): ProcessInfo | null;
  userName(uid: number | null): string | null;
  /** The network namespace inode of a process, null when it cannot be read (gone). */
  netnsOf(pid: number): number | null;
  /** The tag of a namespace, for its sockets no lookup found (allNamespaces only). */
  namespaceTag?(netns: number): NamespaceTag | null;
  /** This engine's namespace inode; null when unknown (then nothing is told apart). */
  homeNetns: number | null;
  /** Report sockets of every namespace, not only the engine's own. */
  allNamespaces: boolean;
  /**
   * False when the records' PIDs (the initial PID namespace's) are not the PIDs this engine
   * reports and signals (see record-pids.ts): a record's process is then never used, and the
   * owner of a socket is found by `placeOwner` instead. Absent: true.
   */
  recordPids?: boolean;
  /** Sets the process and pids of an endpoint with an inode from its owner in /proc, when one has it open. */
  placeOwner?(endpoint: Endpoint): void;
  /** CLOCK_MONOTONIC in ms; the real one unless a test passes its own. */
  monotonicMs?(): number;
}

/** Where records come from: the sensor, or (in tests) records already recorded. */
export type RecordSource = Pick<SetStateSensor, "notes" | "fds" | "drain" | "pending" | "counters" | "running" | "stop">;

interface Followed {
  endpoint: Endpoint | null;
  /** ISO-8601 time of the socket's first change, when the sensor saw it (null: older than the sensor). */
  openedAt: string | null;
  pid: number | null;
  uid: number | null;
  comm: string | null;
  /** Known to belong to another namespace (or to none this engine can place): not reported. */
  foreign: boolean;
  /** An accepted socket already looked up again once it was established. */
  relooked: boolean;
  /** Its local and remote port, once a record had them (a connect's first may not). */
  ports: number | null;
}

export class SensorFeed implements TransitionFeed {
  readonly notes: string[];
  private readonly sockets = new Map<bigint, Followed>();
  private queue: SocketTransition[] = [];
  private dropped = 0;
  private readonly wallMinusMonotonic: number;
  private timer: ReturnType<typeof setInterval> | null = null;
  private lossReadAt = Number.NEGATIVE_INFINITY;
  private kernelLost = 0;
  /** A read again soon, for records the source held back to keep their order. */
  private heldTimer: ReturnType<typeof setTimeout> | null = null;
  private waiter: FdWaiter | null = null;
  private ready: (() => void) | null = null;
  /** The socket of the record being taken has its CLOSE among the records read: it is out of sock_diag's tables. */
  private closedAlready = false;
  /**
   * Whether the record being taken is of a socket that closed, in the records being read, without
   * an active close: no timewait successor keeps its cookie, so a lookup under its addresses can
   * only find another connection (which own() would refuse). Not looking saves a sock_diag round
   * trip per short connection under churn, and the backlog after a stall drains that much faster.
   */
  private goneWithoutTrace = false;

  private constructor(
    private readonly sensor: RecordSource,
    private readonly host: SensorFeedHost,
  ) {
    this.notes = [...sensor.notes];
    this.wallMinusMonotonic = Date.now() - monotonicMs();
    // A source with nothing to wait on is read by drain() alone.
    if (sensor.fds.length === 0) return;
    try {
      this.waiter = new FdWaiter(sensor.fds, () => this.read());
    } catch (error) {
      this.notes.push(`the sensor's records are read every ${SENSOR_DRAIN_MS} ms: ${(error as Error).message}`);
      this.timer = setInterval(() => this.read(), SENSOR_DRAIN_MS);
    }
  }

  /** Starts the sensor; throws SensorUnavailableError saying why it cannot run. */
  static start(host: SensorFeedHost, env: Record<string, string | undefined> = process.env): SensorFeed {
    const ring = ringBytesFromEnv(env);
    const sensor = SetStateSensor.start(ring.bytes === null ? {} : { ringBytes: ring.bytes });
    try {
      const feed = new SensorFeed(sensor, host);
      if (ring.note) feed.notes.push(ring.note);
      if (ring.bytes !== null && sensor.output === "perf") feed.notes.push("SOCKWARDEN_SENSOR_RING_BYTES is ignored: this kernel has no BPF ring buffer, records go through perf buffers");
      return feed;
    } catch (error) {
      sensor.stop();
      throw error instanceof SensorUnavailableError ? error : new SensorUnavailableError("kernel", (error as Error).message, null, { cause: error });
    }
  }

  /** A feed over records from elsewhere than the kernel (a test seam). */
  static over(source: RecordSource, host: SensorFeedHost): SensorFeed {
    return new SensorFeed(source, host);
  }

  onReady(ready: () => void): void {
    this.ready = ready;
  }

  /** Reads what the sensor has; tells the monitor when something is waiting. */
  private read(): void {
    const records = this.sensor.drain();
    // Held records are let out by a later read; with no new record to wake the waiter, this is it.
    if (this.sensor.pending > 0 && this.heldTimer === null) {
      this.heldTimer = setTimeout(() => {
        this.heldTimer = null;
        this.read();
      }, HELD_REREAD_MS);
    }
    if (records.length === 0) return;
    // A CLOSE at or after a record ends that record's socket; one before it ended an earlier
    // socket at the same kernel address (freed memory is reused at once).
    const closedLater: boolean[] = new Array(records.length);
    const lingerLater: boolean[] = new Array(records.length);
    const closing = new Set<bigint>();
    // Sockets whose life up to that CLOSE went through an active close: they may leave a
    // timewait successor, the only thing a lookup can still find of them.
    const lingering = new Set<bigint>();
    for (let i = records.length - 1; i >= 0; i--) {
      const r = records[i]!;
      if (r.newState === "CLOSE") {
        closing.add(r.socket);
        lingering.delete(r.socket);
      }
      if (LINGERING.has(r.oldState) || LINGERING.has(r.newState)) lingering.add(r.socket);
      closedLater[i] = closing.has(r.socket);
      lingerLater[i] = lingering.has(r.socket);
    }
    for (let i = 0; i < records.length; i++) {
      this.closedAlready = closedLater[i]!;
      this.goneWithoutTrace = closedLater[i]! && !lingerLater[i]!;
      this.take(records[i]!);
    }
    this.closedAlready = false;
    this.goneWithoutTrace = false;
    if (this.queue.length > 0) this.ready?.();
  }

  drain(): SocketTransition[] {
    this.read();
    const out = this.queue;
    this.queue = [];
    return out;
  }

  lost(): number {
    if (!this.sensor.running) return this.dropped;
    // The kernel's counts cost four bpf(2) calls, and the monitor asks after every delivery (2.6%
    // of the daemon's time at 500 connections/s): they are read again only every LOSS_READ_MS.
    const now = (this.host.monotonicMs ?? monotonicMs)();
    if (now - this.lossReadAt >= LOSS_READ_MS) {
      const counters = this.sensor.counters();
      this.kernelLost = counters.lostRecords + counters.missedChanges;
      this.lossReadAt = now;
    }
    return this.dropped + this.kernelLost;
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.heldTimer !== null) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    this.waiter?.stop();
    this.waiter = null;
    this.sensor.stop();
    this.sockets.clear();
    this.queue = [];
  }

  private follow(r: SetStateRecord): Followed {
    let f = this.sockets.get(r.socket);
    // A socket's first change (a connect or listen from CLOSE, an accepted socket's birth from its
    // listener) at an address still followed: the earlier socket there closed and its CLOSE was
    // lost, and the kernel gave its memory to this one. Nothing of it may carry over, neither its
    // addresses nor its process. So too a record whose ports are not the followed socket's: no
    // socket's ports change after connect or accept, so the new socket's first records were lost
    // with the old one's CLOSE (one overflow can take both).
    const ports = portsOf(r);
    if (f && (isBirth(r) || (ports !== null && f.ports !== null && ports !== f.ports))) {
      this.sockets.delete(r.socket);
      f = undefined;
    }
    if (!f) {
      if (this.sockets.size >= MAX_SOCKETS) {
        // The oldest followed socket, most likely one whose close was lost.
        const oldest = this.sockets.keys().next().value;
        if (oldest !== undefined) this.sockets.delete(oldest);
      }
      f = { endpoint: null, openedAt: this.openedAt(r), pid: null, uid: null, comm: null, foreign: false, relooked: false, ports: null };
      this.sockets.set(r.socket, f);
    }
    f.ports ??= ports;
    if (r.pid !== null && f.pid === null && this.host.recordPids !== false) {
      f.pid = r.pid;
      f.uid = r.uid;
      f.comm = r.comm;
    }
    return f;
  }

  private take(r: SetStateRecord): void {
    if (r.protocol !== IPPROTO_TCP || r.newState === null) return;
    const f = this.follow(r);
    const closing = r.newState === "CLOSE";
    if (closing) this.sockets.delete(r.socket);
    if (f.foreign) return;
    let endpoint: Endpoint;
    if (f.endpoint) {
      endpoint = { ...(this.relook(r, f, f.endpoint) ?? f.endpoint), state: r.newState };
      if (!endpoint.process && f.pid !== null) this.attachProcess(endpoint, f);
      withCounters(endpoint, r);
    } else {
      // connect() moves a socket to SYN_SENT before it has a local port: wait for one.
      if (r.localPort === 0 && !closing) return;
      const made = this.announce(r, f);
      if (!made) return;
      endpoint = made;
    }
    // Without the record's process, the socket's owner as polling finds it (once it has an inode).
    if (this.host.recordPids === false && !endpoint.process && endpoint.inode !== 0) this.host.placeOwner?.(endpoint);
    f.endpoint = endpoint;
    this.push({ endpoint, previousState: r.oldState, time: this.wallMinusMonotonic + Number(r.kernelTimeNs) / 1e6 });
  }

  /**
   * An accepted socket is first looked up at SYN_RECV, when what sock_diag has under its
   * addresses is the request sock or the child not yet accepted, neither with an inode; at
   * ESTABLISHED (or when its record is read) the server may have accepted it: one more look.
   */
  private relook(r: SetStateRecord, f: Followed, known: Endpoint): Endpoint | null {
    if (f.relooked || known.inode !== 0 || r.oldState !== "SYN_RECV" || r.newState !== "ESTABLISHED" || this.goneWithoutTrace) return null;
    f.relooked = true;
    const netns = r.netns ?? known.namespace?.inode ?? this.host.homeNetns;
    const found = this.own(r, this.host.lookup(tupleOf(r), netns).endpoint);
    if (!found || found.inode === 0) return null;
    const merged: Endpoint = { ...found, openedAt: known.openedAt, process: known.process ?? found.process, pids: known.process ? known.pids : found.pids };
    if (!merged.namespace && known.namespace) merged.namespace = known.namespace;
    return merged;
  }

  /** The endpoint of a socket seen for the first time, or null when it is another namespace's. */
  private announce(r: SetStateRecord, f: Followed): Endpoint | null {
    if (r.netns !== null) return this.announceIn(r, f, r.netns);
    const tuple = tupleOf(r);
    const netns = f.pid !== null ? this.host.netnsOf(f.pid) : null;
    const home = this.host.homeNetns;
    const elsewhere = home !== null && netns !== null && netns !== home;
    // Another namespace's socket can have the same addresses as one of ours: only look up ours.
    const answer = (elsewhere && !this.host.allNamespaces) || r.newState === "CLOSE" ? null : this.host.lookup(tuple, netns);
    const looked = answer?.endpoint ?? null;
    const found = this.own(r, looked);
    // An accepted socket of a listener older than the sensor has no owner to place it by; when it
    // is gone before its first record is read, our listener on its address and port places it.
    // A later socket on its addresses (not its own data) still says they are in our namespace.
    const ours = looked !== null || netns === home || (netns === null && answer?.listener === true);
    if (!this.host.allNamespaces && home !== null && !ours) {
      f.foreign = true;
      return null;
    }
    const endpoint: Endpoint = found ? { ...found, state: r.newState } : this.bare(r, f);
    return this.finish(endpoint, r, f);
  }

  /** A socket first seen in a record that names its namespace: placed by it, no guessing. */
  private announceIn(r: SetStateRecord, f: Followed, netns: number): Endpoint | null {
    const home = this.host.homeNetns;
    const ours = home === null || netns === home;
    if (!ours && !this.host.allNamespaces) {
      f.foreign = true;
      return null;
    }
    const found = r.newState === "CLOSE" || this.goneWithoutTrace ? null : this.own(r, this.host.lookup(tupleOf(r), netns).endpoint);
    const endpoint: Endpoint = found ? { ...found, state: r.newState } : this.bare(r, f);
    // Listing every namespace, each endpoint names its own, as a dump's do.
    if (this.host.allNamespaces && !endpoint.namespace) endpoint.namespace = this.host.namespaceTag?.(netns) ?? { inode: netns, name: null, container: null };
    return this.finish(endpoint, r, f);
  }

  /**
   * A lookup's answer, unless it is another socket's: once a socket has closed (its CLOSE is in
   * the records being read), only its timewait successor, which keeps its cookie, can still have
   * its addresses; anything else there is a later connection on the same four-tuple (a reset
   * frees the port at once), whose cookie would merge the two into one.
   */
  private own(r: SetStateRecord, found: Endpoint | null): Endpoint | null {
    return found && this.closedAlready && found.state !== "TIME_WAIT" ? null : found;
  }

  /** An endpoint from the record alone, for a socket sock_diag no longer has. */
  private bare(r: SetStateRecord, f: Followed): Endpoint {
    return bareEndpoint({ ...tupleOf(r), protocol: "tcp", state: r.newState!, uid: f.uid, user: this.host.userName(f.uid), interfaceIndex: 0, pids: NO_PIDS });
  }

  private finish(endpoint: Endpoint, r: SetStateRecord, f: Followed): Endpoint {
    if (f.pid !== null) this.attachProcess(endpoint, f);
    endpoint.openedAt = f.openedAt;
    // The record's counters are those of this change; a lookup's may be a little later.
    withCounters(endpoint, r);
    return endpoint;
  }

  /**
   * A socket's opening time, when this record is its first change: connect (CLOSE→SYN_SENT),
   * listen (CLOSE→LISTEN), or an accepted socket's birth from its listener (LISTEN→SYN_RECV, or
   * →ESTABLISHED). Any other first record belongs to a socket older than the sensor.
   */
  private openedAt(r: SetStateRecord): string | null {
    return isBirth(r) ? new Date(this.wallMinusMonotonic + Number(r.kernelTimeNs) / 1e6).toISOString() : null;
  }

  /** The process the program kept: read from /proc while it exists, else what the record says. */
  private attachProcess(endpoint: Endpoint, f: Followed): void {
    const pid = f.pid!;
    const info = this.host.process(pid);
    endpoint.process = info ?? {
      pid,
      name: f.comm ?? "",
      path: null,
      cmdline: null,
      uid: f.uid,
      user: this.host.userName(f.uid),
      startTime: null,
      ppid: null,
    };
    endpoint.pids = [pid];
  }

  private push(t: SocketTransition): void {
    if (this.queue.length >= MAX_QUEUED) {
      this.dropped++;
      return;
    }
    this.queue.push(t);
  }
}
