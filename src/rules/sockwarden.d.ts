/**
 * The API a sockwarden rule is written against: the module "sockwarden", the only import a rule
 * can make. Rules run sandboxed (QuickJS): they see copies of endpoint data, ECMAScript built-ins
 * and this API — no file system, network, timers, process or host objects.
 *
 * A rule is one .ts file whose default export is `defineRule({...})`.
 */
declare module "sockwarden" {
  export type Protocol = "tcp" | "udp";
  export type TcpState =
    | "ESTABLISHED" | "SYN_SENT" | "SYN_RECV" | "FIN_WAIT1" | "FIN_WAIT2" | "TIME_WAIT"
    | "CLOSE" | "CLOSE_WAIT" | "LAST_ACK" | "LISTEN" | "CLOSING";
  export type EventType = "opened" | "closed" | "state-changed" | "counters";
  export type Severity = "info" | "warning" | "critical";

  /** A container runtime's container, as named by a process's cgroup. */
  export interface Container {
    readonly runtime: "docker" | "containerd" | "crio" | "podman" | "kubernetes" | "lxc";
    /** The runtime's container id; null when only the pod is known. */
    readonly id: string | null;
    /** Kubernetes pod UID, when the process runs in a pod. */
    readonly pod: string | null;
  }

  /** The network namespace an endpoint lives in. */
  export interface Namespace {
    /** Inode of the namespace, as in /proc/PID/ns/net. */
    readonly inode: number;
    /** Its name under /run/netns (`ip netns`), when it has one. */
    readonly name: string | null;
    /** The container the namespace's processes run in, when they run in one. */
    readonly container: Container | null;
  }

  /** The same fields as `process` in `sockwarden list --json`. */
  export interface Process {
    readonly pid: number;
    /** Short name as the kernel keeps it (e.g. "nginx"). */
    readonly name: string;
    readonly path: string | null;
    readonly cmdline: string | null;
    readonly uid: number | null;
    readonly user: string | null;
    /** ISO-8601. */
    readonly startTime: string | null;
    readonly ppid: number | null;
    /** The systemd unit the process runs in (`nginx.service`, `session-3.scope`), from its cgroup. */
    readonly unit: string | null;
    /** The container the process runs in, from its cgroup. */
    readonly container: Container | null;
  }

  /** The same fields as `sockwarden list --json`. */
  export interface Endpoint {
    readonly protocol: Protocol;
    readonly family: 4 | 6;
    readonly localAddress: string;
    readonly localPort: number;
    readonly remoteAddress: string;
    readonly remotePort: number;
    /** Kernel state name; null for UDP. */
    readonly state: TcpState | null;
    readonly inode: number;
    readonly uid: number | null;
    readonly user: string | null;
    readonly bytesSent: number | null;
    readonly bytesReceived: number | null;
    readonly packetsSent: number | null;
    readonly packetsReceived: number | null;
    /** null when no owning process was found. */
    readonly process: Process | null;
    /** Every PID holding the socket open (a socket can be shared after fork). */
    readonly pids: readonly number[];
    /** Index of the network interface the socket is bound to; 0 for none. */
    readonly interfaceIndex: number;
    /** Bytes waiting to be read (for a listener: connections waiting to be accepted); null where the OS does not tell. */
    readonly receiveQueue: number | null;
    /** Bytes waiting to be sent or acknowledged (for a listener: its backlog); null where the OS does not tell. */
    readonly sendQueue: number | null;
    /** Smoothed round-trip time in milliseconds (TCP); null for UDP, listeners and where the OS does not tell. */
    readonly rttMs: number | null;
    /** The kernel's socket cookie (decimal): the socket's identity while it lives. */
    readonly cookie: string | null;
    /**
     * The network namespace, when sockwarden watches every namespace (`run --all-namespaces`);
     * null otherwise.
     */
    readonly namespace: Namespace | null;
    /**
     * When the socket was opened (ISO-8601): the kernel's time of its connect, listen or
     * acceptance, as the eBPF sensor saw it (Linux, `--sensor ebpf`); null for sockets older than
     * the sensor and without it. Windows keeps its own creation time in `createdAt`.
     */
    readonly openedAt: string | null;
    /** When the socket was created (ISO-8601); only where the OS tells (Windows). See also `openedAt`. */
    readonly createdAt?: string | null;
    /** The module that owns the socket (a service inside svchost.exe); only where the OS tells (Windows). */
    readonly module?: string | null;
  }

  export interface CounterDelta {
    readonly bytesSent: number;
    readonly bytesReceived: number;
    readonly packetsSent: number;
    readonly packetsReceived: number;
    readonly intervalMs: number;
    readonly bytesSentPerSecond: number;
    readonly bytesReceivedPerSecond: number;
  }

  export interface EndpointEvent {
    readonly type: EventType;
    readonly seq: number;
    /** Milliseconds since the epoch. */
    readonly time: number;
    readonly endpoint: Endpoint;
    /** For "state-changed". */
    readonly previousState?: TcpState | null;
    /** For "counters". */
    readonly counters?: CounterDelta;
    /** Seen only through the kernel's notice that it closed (it lived less than one refresh). */
    readonly shortLived?: boolean;
  }

  /** What a rule can do. Every call is recorded with the rule's name and the reason. */
  export interface Actions {
    log(message: string): void;
    alert(message: string, severity?: Severity): void;
    /** Close this connection (only endpoints sockwarden itself reported can be closed). */
    close(endpoint: Endpoint, reason: string): void;
    /** End this process (SIGTERM, then SIGKILL after a grace period). */
    kill(process: Process | number, reason: string): void;
  }

  export interface RuleContext<Options> {
    /** The rule's options: its defaults merged with the configuration's. */
    readonly options: Options;
    /** Milliseconds since the epoch, as of the event or tick being handled. */
    readonly now: number;
  }

  /**
   * Where a remote address is, judged as the helpers judge it: "unspecified" is 0.0.0.0 or ::
   * (no peer: listeners, unconnected UDP sockets); "loopback" what `isLoopback` accepts; "private"
   * what `isPrivate` accepts (loopback addresses too); "public" anything else.
   */
  export type AddressClass = "unspecified" | "loopback" | "private" | "public";

  /**
   * Which endpoints a rule is given: one that matches every field given. A field takes one value
   * or a list of them (any of them; an empty list matches nothing); a field left out matches
   * anything. At most 1024 values a field.
   */
  export interface Selector {
    readonly protocols?: Protocol | readonly Protocol[];
    /**
     * The endpoint's state (a UDP endpoint has none, so it never matches). A state-changed event
     * also matches by the state it left; a closed event's endpoint carries the state it was last
     * known in. A rule so sees each stay of an endpoint in these states from start to end.
     */
    readonly states?: TcpState | readonly TcpState[];
    readonly localPorts?: number | readonly number[];
    readonly remotePorts?: number | readonly number[];
    readonly remote?: AddressClass | readonly AddressClass[];
  }

  export interface RuleDefinition<Options = Record<string, unknown>> {
    name: string;
    description?: string;
    /** Event types the rule receives (default: opened, closed, state-changed). */
    on?: EventType | readonly EventType[];
    /**
     * Only what this selects reaches the rule: events of its `on` types whose endpoint matches,
     * and of the endpoints shown to `start` and `periodic`, those that match. A list is any of
     * its selectors (at most 64). The function form is called once, at load, with the merged
     * options. It is checked when the rule loads: a wrong field refuses the rule.
     *
     * An optimisation contract, worked out outside the sandbox: what it does not select is never
     * delivered, so `handle` need not test for it, and must not count on seeing it. Default:
     * everything.
     */
    select?: Selector | readonly Selector[] | ((options: Options) => Selector | readonly Selector[]);
    /** Default options; the configuration can override each. */
    options?: Options;
    /** Called once with the endpoints that exist when the rule starts. */
    start?(endpoints: readonly Endpoint[], act: Actions, ctx: RuleContext<Options>): void;
    /** Called for each event of the subscribed types, in order. */
    handle?(event: EndpointEvent, act: Actions, ctx: RuleContext<Options>): void;
    /** Seconds between `periodic` calls (default 10). */
    every?: number;
    /** Called every `every` seconds with all current endpoints. */
    periodic?(endpoints: readonly Endpoint[], act: Actions, ctx: RuleContext<Options>): void;
  }

  export function defineRule<Options = Record<string, unknown>>(rule: RuleDefinition<Options>): RuleDefinition<Options>;

  /** True when the address is inside the CIDR block (IPv4-mapped IPv6 addresses match IPv4 blocks). */
  export function inCidr(address: string, cidr: string): boolean;
  /** Private, loopback, link-local, CGNAT or unique-local addresses. */
  export function isPrivate(address: string): boolean;
  export function isLoopback(address: string): boolean;
  /** The service name of a port ("smtp" for 25), from sockwarden's embedded table. */
  export function portName(port: number, protocol?: Protocol): string | null;
  /** Shell-style wildcard match: `*` any run, `?` one character; case-insensitive. */
  export function glob(pattern: string, text: string): boolean;
}
