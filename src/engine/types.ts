/**
 * What an engine offers: snapshots, feeds of changes between them, closing sockets and
 * signalling processes. The records it hands over are the model's (src/model).
 */
import type { Endpoint, Family, Protocol, SocketAddresses, TcpState } from "../model/endpoint.ts";
import type { ProcessDetails, ProcessInfo } from "../model/process.ts";

/** What a snapshot knows about why some owners are missing. */
export interface SnapshotNotes {
  /** The engine's source: "netlink", "proc" (fallback) or "replay". */
  source: string;
  /** Human-readable notes to show once, e.g. why process fields are missing. */
  notes: string[];
  /** Number of processes whose file descriptors could not be read (permissions). */
  unreadableProcesses: number;
}

export interface Snapshot extends SnapshotNotes {
  endpoints: Endpoint[];
  /** Wall-clock time when the snapshot was taken (ms since epoch). */
  takenAt: number;
}

export interface SnapshotRequest {
  protocols: ReadonlySet<Protocol>;
  families: ReadonlySet<Family>;
  /** Whether to attach owning processes (reading /proc costs time). */
  withProcesses: boolean;
}

/** Engine-wide choices made once, when the engine is created. */
export interface EngineScope {
  /** Every network namespace in use, not only the caller's. */
  allNamespaces?: boolean;
}

/**
 * Sockets the kernel reports as destroyed, so that connections that open and close between two
 * snapshots are still seen. Endpoints come with their final counters and no owner.
 */
export interface ClosedSocketFeed {
  /** What arrived since the last call; never blocks. */
  drain(): Endpoint[];
  /** How many times notices were lost because they arrived faster than they were read. */
  lost(): number;
  close(): void;
}

/** One TCP state change of one socket, as the kernel reported it (the eBPF sensor on Linux). */
export interface SocketTransition {
  /**
   * The socket as now known: the sensor's addresses, state and process, completed by a lookup
   * in the socket table where the socket still existed (cookie, inode, uid, counters).
   */
  endpoint: Endpoint;
  previousState: TcpState | null;
  /** Wall-clock time of the change, ms since epoch (from the kernel's own clock). */
  time: number;
}

/**
 * State changes as they happen, between snapshots. `ready` is called (from a timer or an I/O
 * callback) when transitions are waiting; `drain` hands them over, oldest first.
 */
export interface TransitionFeed {
  /** Why the OS side runs the way it does (e.g. how records are waited for), to tell once. */
  readonly notes: readonly string[];
  drain(): SocketTransition[];
  /** Changes lost because they came faster than they were read. */
  lost(): number;
  onReady(ready: () => void): void;
  close(): void;
}

/** The signals sockwarden sends to end a process (Windows terminates the process for either). */
export type EndSignal = "SIGTERM" | "SIGKILL";

/** What became of a signal sent through a ProcessHandle. */
export type SignalResult =
  | { outcome: "sent" }
  | { outcome: "gone" }
  | { outcome: "failed"; code: string; reason: string };

/**
 * One process, opened to be signalled. Where the OS allows (a Linux pidfd, a Windows process
 * handle) the handle names that process for as long as it is open: a process that takes the PID
 * later is never reached through it.
 */
export interface ProcessHandle {
  readonly pid: number;
  /**
   * "pidfd" or "handle": signals reach only the opened process. "pid": the OS offers neither,
   * so the PID is checked just before each signal and a window of microseconds remains.
   */
  readonly binding: "pidfd" | "handle" | "pid";
  /**
   * What the PID names now, read fresh (startId first), or null once the opened process has
   * exited (a zombie counts as exited). Compare startId to know whether it is still the process
   * meant.
   */
  inspect(): ProcessInfo | null;
  /** The sockets the process holds now, read fresh; null when they cannot be read. */
  sockets(): SocketAddresses[] | null;
  signal(signal: EndSignal): SignalResult;
  close(): void;
}

/** What opening a process gives: a handle, or why there is none. */
export type OpenProcessResult = ProcessHandle | { outcome: "gone" } | { outcome: "failed"; code: string; reason: string };

/** One interface, one implementation per operating system. */
export interface SocketEngine {
  readonly name: string;
  snapshot(request: SnapshotRequest): Snapshot;
  /** Closes one socket; the result says whether it was closed, already gone, or why not. */
  destroy?(ep: Endpoint, method?: CloseMethod): DestroyResult;
  /**
   * Why this process may not close sockets the given way, naming the missing capability or
   * elevation; null when it may.
   */
  closePrivilegeProblem?(method?: CloseMethod): string | null;
  /** Notices of destroyed sockets; throws UnsupportedError where the OS has none. */
  closedSockets?(): ClosedSocketFeed;
  /**
   * TCP state changes as the kernel reports them; throws UnsupportedError saying why where they
   * cannot be had (privileges, kernel), and the caller falls back to snapshots alone.
   */
  transitions?(): TransitionFeed;
  /** Details of one process, or null when there is no such process (or it just exited). */
  processDetails?(pid: number): ProcessDetails | null;
  /**
   * A datagram socket to a local socket path (AF_UNIX on Linux), e.g. syslog's /dev/log. Opening
   * does not check the path; send() throws SystemCallError (ENOENT, ECONNREFUSED, EAGAIN when
   * the receiver is full) and never blocks.
   */
  openLocalDatagram?(path: string): { send(data: Uint8Array): void; close(): void };
  close(): void;
}

/** What became of a request to close a socket. */
export type DestroyResult =
  | { outcome: "closed" }
  | { outcome: "gone" }
  | { outcome: "failed"; errno: number; reason: string };

/**
 * How to close a socket: "auto" picks the best way the OS offers (on Linux, sock_diag's
 * SOCK_DESTROY, falling back to the owner's descriptor); "destroy" and "owner" force one.
 */
export type CloseMethod = "auto" | "destroy" | "owner";
