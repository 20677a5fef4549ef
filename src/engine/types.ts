/**
 * The normalized records every engine produces. Linux and Windows code only translates the
 * operating system's own tables into these shapes; nothing above src/engine sees OS details.
 */

export type Protocol = "tcp" | "udp";
export type Family = 4 | 6;

/** TCP states by their kernel names; UDP endpoints carry `null`. */
export const TCP_STATES = [
  "ESTABLISHED",
  "SYN_SENT",
  "SYN_RECV",
  "FIN_WAIT1",
  "FIN_WAIT2",
  "TIME_WAIT",
  "CLOSE",
  "CLOSE_WAIT",
  "LAST_ACK",
  "LISTEN",
  "CLOSING",
] as const;
export type TcpState = (typeof TCP_STATES)[number];

/** A container runtime's container, as named by a process's cgroup. */
export interface ContainerInfo {
  runtime: "docker" | "containerd" | "crio" | "podman" | "kubernetes" | "lxc";
  /** The runtime's container id (null when only the pod is known). */
  id: string | null;
  /** Kubernetes pod UID, when the process runs in a pod. */
  pod: string | null;
}

/** The network namespace an endpoint lives in. */
export interface NamespaceTag {
  /** Inode of the namespace (as in /proc/PID/ns/net). */
  inode: number;
  /** Its name under /run/netns (`ip netns`), when it has one. */
  name: string | null;
  /** The container of the namespace's processes, when they are in one. */
  container: ContainerInfo | null;
}

export interface ProcessInfo {
  pid: number;
  /** Short name as the kernel keeps it (comm). */
  name: string;
  /** Executable path; null when it cannot be read (another user's process, kernel thread). */
  path: string | null;
  cmdline: string | null;
  uid: number | null;
  user: string | null;
  /** ISO-8601 start time. */
  startTime: string | null;
  /**
   * When the process started, exactly, as the OS counts it: on Linux the clock ticks since boot
   * (/proc/PID/stat), on Windows the creation FILETIME. Compared for equality only, to tell
   * whether a PID still names this process; unlike startTime it is not rounded and does not move
   * when the wall clock is set.
   */
  startId?: string | null;
  ppid: number | null;
  /** The systemd unit the process runs in (`nginx.service`), from its cgroup. */
  unit?: string | null;
  /** The container the process runs in, from its cgroup. */
  container?: ContainerInfo | null;
}

/**
 * Everything `sockwarden proc` and the live view's properties panel show about one process: the
 * ProcessInfo fields plus what /proc/PID/{status,cgroup,fd} tell. Fields that cannot be read
 * (another user's process, a kernel thread) are null.
 */
export interface ProcessDetails extends ProcessInfo {
  /** Short name of the parent process; null for PID 1, kernel threads or a vanished parent. */
  ppidName: string | null;
  /** The process's cgroup path: the cgroup v2 one, else v1's name=systemd, else another v1 line. */
  cgroup: string | null;
  /** The systemd unit the cgroup path names (`nginx.service`, `session-3.scope`), or null. */
  unit: string | null;
  /** For a unit of a user's service manager (under user@UID.service): that UID; null otherwise. */
  unitUid: number | null;
  /** Scheduler state as the kernel writes it, e.g. `S (sleeping)`. */
  state: string | null;
  threads: number | null;
  /** Resident memory in KiB (VmRSS); null for kernel threads. */
  rssKiB: number | null;
  /** Number of open file descriptors; null when they cannot be read. */
  fdCount: number | null;
  /** Inode of the process's network namespace; null when it cannot be read. */
  netns: number | null;
}

export interface Endpoint {
  protocol: Protocol;
  family: Family;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** Kernel TCP state name; null for UDP. */
  state: TcpState | null;
  /** Socket inode (0 for TIME_WAIT and request sockets, which have none). */
  inode: number;
  uid: number | null;
  user: string | null;
  /** Interface index the socket is bound to, 0 for none. */
  interfaceIndex: number;
  receiveQueue: number | null;
  sendQueue: number | null;
  bytesSent: number | null;
  bytesReceived: number | null;
  packetsSent: number | null;
  packetsReceived: number | null;
  /** Smoothed round-trip time in milliseconds (TCP only). */
  rttMs: number | null;
  /** Kernel socket cookie as a decimal string: stable identity while the socket lives. */
  cookie: string | null;
  /** The owning process, or null when none could be found (unowned). */
  process: ProcessInfo | null;
  /** Every PID that holds the socket open (a socket can be shared after fork). */
  pids: number[];
  /** The network namespace; set when listing several (--all-namespaces). */
  namespace?: NamespaceTag | null;
  /**
   * When the socket was opened, ISO-8601, from the kernel's clock at its first state change
   * (connect, listen, or its acceptance) as the Linux eBPF sensor saw it; null (or absent) for
   * sockets older than the sensor and where no sensor runs. Compare `createdAt`, which Windows
   * itself keeps for each socket.
   */
  openedAt?: string | null;
  /** When the socket was created, where the OS says (Windows owner-module tables), ISO-8601. */
  createdAt?: string | null;
  /** The module owning the socket (a service inside svchost.exe), where the OS says. */
  module?: string | null;
}

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

/** A socket's protocol and addresses, as a process holds it. */
export type SocketAddresses = Pick<Endpoint, "protocol" | "family" | "localAddress" | "localPort" | "remoteAddress" | "remotePort">;

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
