/**
 * The eBPF sensor's records turned into socket transitions: each socket (by its kernel address)
 * is announced at its first change that has a local port, completed by a targeted sock_diag
 * lookup while it still exists, and carries the process the program kept for it.
 *
 * Records are read when the sensor's descriptors become readable, told by one blocking poll on
 * koffi's worker thread (FdWaiter). Where that cannot be set up, a short timer reads them instead
 * (one period of latency at most, and its idle wake-ups).
 */
import type { Endpoint, ProcessInfo, SocketTransition, TransitionFeed } from "../types.ts";
import { koffi } from "../native/koffi-addon.ts";
import { SensorUnavailableError, SetStateSensor } from "./bpf/sensor.ts";
import type { SetStateRecord } from "./bpf/set-state-record.ts";
import type { TcpTuple } from "./diag-lookup.ts";
import { FdWaiter } from "./fd-waiter.ts";

/** How often the ring is read when no poll can wait on it. */
export const SENSOR_DRAIN_MS = 3;
/** Most transitions held for the monitor; more are counted as lost. */
const MAX_QUEUED = 100_000;
/** Most sockets followed at once (those whose close was lost stay until this pushes them out). */
const MAX_SOCKETS = 200_000;
const IPPROTO_TCP = 6;
const CLOCK_MONOTONIC = 1;

/** Accepted values of SOCKWARDEN_SENSOR_RING_BYTES: a page to 256 MiB. */
export const RING_BYTES_MIN = 4096;
export const RING_BYTES_MAX = 256 * 1024 * 1024;

/**
 * The ring buffer's size from SOCKWARDEN_SENSOR_RING_BYTES, for machines whose bursts overflow
 * the default (and for tests that make it overflow); a bad value is ignored with a note.
 */
export function ringBytesFromEnv(env: Record<string, string | undefined>): { bytes: number | null; note: string | null } {
  const text = env.SOCKWARDEN_SENSOR_RING_BYTES;
  if (text === undefined || text === "") return { bytes: null, note: null };
  const bytes = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < RING_BYTES_MIN || bytes > RING_BYTES_MAX) {
    return { bytes: null, note: `SOCKWARDEN_SENSOR_RING_BYTES=${JSON.stringify(text)} is ignored: it must be a whole number of bytes from ${RING_BYTES_MIN} to ${RING_BYTES_MAX}` };
  }
  return { bytes, note: null };
}

/** Puts a record's counters on its endpoint, where the record has them. */
function withCounters(endpoint: Endpoint, r: SetStateRecord): void {
  if (!r.counters) return;
  endpoint.bytesSent = r.counters.bytesSent;
  endpoint.bytesReceived = r.counters.bytesReceived;
  endpoint.packetsSent = r.counters.packetsSent;
  endpoint.packetsReceived = r.counters.packetsReceived;
}

/** What the feed needs from the engine: its socket table, its process reader, its namespace. */
export interface SensorFeedHost {
  /**
   * The socket with these addresses in the engine's namespace, as an endpoint (null when there is
   * none any more), and, without one, whether a listener there takes its local address and port.
   */
  lookup(tuple: TcpTuple, netns: number | null): { endpoint: Endpoint | null; listener: boolean };
  process(pid: number): ProcessInfo | null;
  userName(uid: number | null): string | null;
  /** The network namespace inode of a process, null when it cannot be read (gone). */
  netnsOf(pid: number): number | null;
  /** This engine's namespace inode; null when unknown (then nothing is told apart). */
  homeNetns: number | null;
  /** Report sockets of every namespace, not only the engine's own. */
  allNamespaces: boolean;
}

/** Where records come from: the sensor, or (in tests) records already recorded. */
export type RecordSource = Pick<SetStateSensor, "notes" | "fds" | "drain" | "counters" | "running" | "stop">;

interface Followed {
  endpoint: Endpoint | null;
  /** ISO-8601 time of the socket's first change, when the sensor saw it (null: older than the sensor). */
  openedAt: string | null;
  pid: number | null;
  uid: number | null;
  comm: string | null;
  /** Known to belong to another namespace (or to none this engine can place): not reported. */
  foreign: boolean;
}

const NO_PIDS: number[] = Object.freeze([]) as unknown as number[];

let monotonicNow: (() => number) | null = null;

/** CLOCK_MONOTONIC in ms, the clock of bpf_ktime_get_ns. */
function monotonicMs(): number {
  if (!monotonicNow) {
    const lib = koffi().load("libc.so.6");
    const clockGettime = lib.func("int clock_gettime(int, _Out_ void *)") as (clock: number, ts: Buffer) => number;
    const ts = Buffer.alloc(16);
    monotonicNow = () => {
      clockGettime(CLOCK_MONOTONIC, ts);
      return Number(ts.readBigInt64LE(0)) * 1000 + Number(ts.readBigInt64LE(8)) / 1e6;
    };
  }
  return monotonicNow();
}

export class SensorFeed implements TransitionFeed {
  readonly notes: string[];
  private readonly sockets = new Map<bigint, Followed>();
  private queue: SocketTransition[] = [];
  private dropped = 0;
  private readonly wallMinusMonotonic: number;
  private timer: ReturnType<typeof setInterval> | null = null;
  private waiter: FdWaiter | null = null;
  private ready: (() => void) | null = null;

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
    if (records.length === 0) return;
    for (const r of records) this.take(r);
    if (this.queue.length > 0) this.ready?.();
  }

  drain(): SocketTransition[] {
    this.read();
    const out = this.queue;
    this.queue = [];
    return out;
  }

  lost(): number {
    return this.dropped + (this.sensor.running ? this.sensor.counters().lostRecords : 0);
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.waiter?.stop();
    this.waiter = null;
    this.sensor.stop();
    this.sockets.clear();
    this.queue = [];
  }

  private follow(r: SetStateRecord): Followed {
    let f = this.sockets.get(r.socket);
    if (!f) {
      if (this.sockets.size >= MAX_SOCKETS) {
        // The oldest followed socket, most likely one whose close was lost.
        const oldest = this.sockets.keys().next().value;
        if (oldest !== undefined) this.sockets.delete(oldest);
      }
      f = { endpoint: null, openedAt: this.openedAt(r), pid: null, uid: null, comm: null, foreign: false };
      this.sockets.set(r.socket, f);
    }
    if (r.pid !== null && f.pid === null) {
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
      endpoint = { ...f.endpoint, state: r.newState };
      if (!endpoint.process && f.pid !== null) this.attachProcess(endpoint, f);
      withCounters(endpoint, r);
    } else {
      // connect() moves a socket to SYN_SENT before it has a local port: wait for one.
      if (r.localPort === 0 && !closing) return;
      const made = this.announce(r, f);
      if (!made) return;
      endpoint = made;
    }
    f.endpoint = endpoint;
    this.push({ endpoint, previousState: r.oldState, time: this.wallMinusMonotonic + Number(r.kernelTimeNs) / 1e6 });
  }

  /** The endpoint of a socket seen for the first time, or null when it is another namespace's. */
  private announce(r: SetStateRecord, f: Followed): Endpoint | null {
    const tuple: TcpTuple = { family: r.family, localAddress: r.localAddress, localPort: r.localPort, remoteAddress: r.remoteAddress, remotePort: r.remotePort };
    const netns = f.pid !== null ? this.host.netnsOf(f.pid) : null;
    const home = this.host.homeNetns;
    const elsewhere = home !== null && netns !== null && netns !== home;
    // Another namespace's socket can have the same addresses as one of ours: only look up ours.
    const answer = (elsewhere && !this.host.allNamespaces) || r.newState === "CLOSE" ? null : this.host.lookup(tuple, netns);
    const found = answer?.endpoint ?? null;
    // An accepted socket of a listener older than the sensor has no owner to place it by; when it
    // is gone before its first record is read, our listener on its address and port places it.
    const ours = found !== null || netns === home || (netns === null && answer?.listener === true);
    if (!this.host.allNamespaces && home !== null && !ours) {
      f.foreign = true;
      return null;
    }
    const endpoint: Endpoint = found
      ? { ...found, state: r.newState }
      : {
          protocol: "tcp",
          family: r.family,
          localAddress: r.localAddress,
          localPort: r.localPort,
          remoteAddress: r.remoteAddress,
          remotePort: r.remotePort,
          state: r.newState,
          inode: 0,
          uid: f.uid,
          user: this.host.userName(f.uid),
          interfaceIndex: 0,
          receiveQueue: null,
          sendQueue: null,
          bytesSent: null,
          bytesReceived: null,
          packetsSent: null,
          packetsReceived: null,
          rttMs: null,
          cookie: null,
          process: null,
          pids: NO_PIDS,
        };
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
    const opening = (r.oldState === "CLOSE" && (r.newState === "SYN_SENT" || r.newState === "LISTEN")) || r.oldState === "LISTEN";
    return opening && r.newState !== "CLOSE" ? new Date(this.wallMinusMonotonic + Number(r.kernelTimeNs) / 1e6).toISOString() : null;
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
