/**
 * The Linux engine: sock_diag dump (or the /proc/net fallback, or a replayed recording) joined
 * with the /proc process map into normalized endpoints.
 */
import type { EngineScope, NamespaceTag, CloseMethod, ClosedSocketFeed, TransitionFeed, DestroyResult, Endpoint, Family, ProcessDetails, Protocol, Snapshot, SnapshotRequest, SocketEngine, TcpState } from "../types.ts";
import {
  AF_INET,
  AF_INET6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  KERNEL_TCP_STATES,
  cookieString,
  type DiagRecord,
} from "./sock-diag-codec.ts";
import { LiveDiagSource, recordingWriter, type DiagSource } from "./diag-source.ts";
import { openReplaySource } from "./replay-source.ts";
import { ProcNetSource } from "./proc-net.ts";
import { FdMemos, ProcessReader, nodeFdLinks, ownersOf, scanSocketOwners, type FdLinkScanner } from "./process-map.ts";
import { libcFdLinks } from "./fd-links.ts";
import { UserTable } from "./users.ts";
import { readProcessDetails } from "./process-details.ts";
import { libc } from "./libc.ts";
import { PrivilegeError, SockwardenError, UnsupportedError } from "../../errors.ts";
import { DestroyEventReader } from "./destroy-events.ts";
import { discoverNamespaces, inNamespace, namespaceInodeOf, openHomeNamespace, requireAllNamespacesAccess, type NetNamespace } from "./namespaces.ts";
import { destroySocket } from "./socket-destroy.ts";
import { closeThroughOwner } from "./socket-takeover.ts";
import { CAP_NET_ADMIN, CAP_SYS_PTRACE, hasCapability, userNamespaceNote } from "./capabilities.ts";
import { openUnixDatagram } from "./unix-datagram.ts";
import { DiagLookup } from "./diag-lookup.ts";
import { SensorFeed } from "./sensor-feed.ts";
import { recordPids } from "./record-pids.ts";
import { NamespaceLookups } from "./namespace-lookups.ts";

const EOPNOTSUPP = 95;
import { trace } from "../../trace.ts";

export type LinuxSourceKind = "auto" | "netlink" | "proc" | "replay";

export interface LinuxEngineOptions extends EngineScope {
  source?: LinuxSourceKind;
  /** For "replay": the recording to read. */
  replayFile?: string;
  /** Write every raw netlink datagram of live dumps to this file. */
  recordFile?: string;
  procRoot?: string;
}

const _SC_CLK_TCK = 2;
/** Shared by every unowned endpoint; never mutated. */
const NO_PIDS: number[] = Object.freeze([]) as unknown as number[];

export class LinuxEngine implements SocketEngine {
  readonly name = "linux";
  private readonly source: DiagSource;
  private readonly sourceName: string;
  private readonly notes: string[] = [];
  private readonly users = new UserTable();
  private readonly procRoot: string;
  private readonly finishRecording: (() => void) | null = null;
  private clockTicks: number | null = null;
  private readonly ownerCache = new Map<number, number[]>();
  private readonly unplaced = new Set<number>();
  private unreadable = 0;
  private readonly reader: ProcessReader;
  private fdLinks: FdLinkScanner | null = null;
  /** Descriptors read by the last owner scan, so the next reads only what changed. */
  private readonly fdMemos = new FdMemos();
  /** Asks whether a socket not found in any process is still open (see stillOpen). */
  private liveLookup: DiagLookup | null = null;
  private previousByCookie = new Map<number, Endpoint>();
  /** Every protocol a snapshot has asked for: a dump of all of them is a full one. */
  private readonly protocolsAsked = new Set<Protocol>();
  /** With allNamespaces: the other namespaces' sources, by namespace inode. */
  private readonly foreign = new Map<number, { ns: NetNamespace; source: DiagSource }>();
  private readonly allNamespaces: boolean;
  private homeFd = -1;
  private homeInode: number | null = null;
  private namespaces: NetNamespace[] = [];
  private readonly tags = new Map<number, NamespaceTag>();
  private currentByCookie: Map<number, Endpoint> | null = null;
  /** With allNamespaces: the sensor feeds' lookups in other namespaces, told when namespaces go. */
  private readonly namespaceLookups = new Set<NamespaceLookups>();

  constructor(options: LinuxEngineOptions = {}) {
    this.procRoot = options.procRoot ?? "/proc";
    this.allNamespaces = !!options.allNamespaces;
    this.reader = new ProcessReader({ procRoot: this.procRoot, users: this.users, clockTicks: () => this.ticks() });
    const kind = options.source ?? "auto";
    if (kind === "replay") {
      if (!options.replayFile) throw new SockwardenError("replay needs a recording file");
      this.source = openReplaySource(options.replayFile);
      this.sourceName = "replay";
      return;
    }
    if (kind === "proc") {
      this.source = new ProcNetSource(this.procRoot);
      this.sourceName = "proc";
      return;
    }
    if (this.allNamespaces) requireAllNamespacesAccess();
    const recording = options.recordFile ? recordingWriter(options.recordFile) : null;
    try {
      this.source = new LiveDiagSource(recording?.recorder);
      this.sourceName = "netlink";
      this.finishRecording = recording ? recording.finish : null;
      if (this.allNamespaces) {
        this.homeFd = openHomeNamespace();
        this.homeInode = namespaceInodeOf("/proc/thread-self/ns/net");
      }
    } catch (err) {
      recording?.finish();
      if (kind === "netlink") throw err;
      this.notes.push(
        `netlink sock_diag is unavailable (${(err as Error).message}); reading /proc/net instead (no traffic counters)`,
      );
      this.source = new ProcNetSource(this.procRoot);
      this.sourceName = "proc";
    }
    if (this.allNamespaces && this.sourceName !== "netlink") {
      throw new UnsupportedError("--all-namespaces needs netlink sock_diag, which is not available here");
    }
  }

  /**
   * Finds namespaces that appeared since the last look (and forgets those that went away); a
   * source for each is opened inside it.
   */
  private refreshNamespaces(): void {
    this.namespaces = discoverNamespaces(this.procRoot);
    const present = new Set(this.namespaces.map((n) => n.inode));
    for (const [inode, f] of this.foreign) {
      if (!present.has(inode)) {
        f.source.close();
        this.foreign.delete(inode);
      }
    }
    this.tags.clear();
    for (const ns of this.namespaces) {
      if (ns.inode !== this.homeInode && !this.foreign.has(ns.inode)) {
        try {
          const source = inNamespace(ns.path, this.homeFd, () => new LiveDiagSource());
          this.foreign.set(ns.inode, { ns, source });
        } catch (err) {
          if (err instanceof PrivilegeError) throw err;
          // It went away between discovery and entry.
          continue;
        }
      }
      const f = this.foreign.get(ns.inode);
      if (f) f.ns = ns;
    }
    for (const lookups of this.namespaceLookups) lookups.update(this.namespaces);
  }

  /** The tag of a namespace: inode, ip-netns name, and the container its processes are in. */
  private tagFor(ns: NetNamespace): NamespaceTag {
    let tag = this.tags.get(ns.inode);
    if (!tag) {
      let container = null;
      for (const pid of ns.pids.slice(0, 8)) {
        container = this.reader.read(pid)?.container ?? null;
        if (container) break;
      }
      tag = { inode: ns.inode, name: ns.name, container };
      this.tags.set(ns.inode, tag);
    }
    return tag;
  }

  snapshot(request: SnapshotRequest): Snapshot {
    this.currentByCookie = new Map();
    const endpoints: Endpoint[] = [];
    const notes = [...this.notes];
    let interrupted = false;
    const sources: { source: DiagSource; ns: NetNamespace | null }[] = [{ source: this.source, ns: null }];
    if (this.allNamespaces) {
      this.refreshNamespaces();
      for (const f of this.foreign.values()) sources.push({ source: f.source, ns: f.ns });
    }
    for (const { source, ns } of sources) {
      const first = endpoints.length;
      for (const protocol of ["tcp", "udp"] as const) {
        if (!request.protocols.has(protocol)) continue;
        for (const family of [4, 6] as const) {
          if (!request.families.has(family)) continue;
          const result = source.dump(family === 4 ? AF_INET : AF_INET6, protocol === "tcp" ? IPPROTO_TCP : IPPROTO_UDP, (r) =>
            endpoints.push(this.toEndpoint(protocol, r, true)),
          );
          interrupted ||= result.interrupted;
        }
      }
      if (this.allNamespaces) {
        const home = this.namespaces.find((n) => n.inode === this.homeInode);
        const tag = ns ? this.tagFor(ns) : home ? this.tagFor(home) : { inode: this.homeInode ?? 0, name: null, container: null };
        for (let i = first; i < endpoints.length; i++) endpoints[i]!.namespace = tag;
      }
    }
    // A dump of fewer protocols than were asked for before (UDP between the sensor's resyncs)
    // leaves the tables of endpoints to reuse and of owners as the last full dump made them.
    for (const p of request.protocols) this.protocolsAsked.add(p);
    const full = request.protocols.size === this.protocolsAsked.size;
    if (full) this.previousByCookie = this.currentByCookie;
    this.currentByCookie = null;
    const takenAt = Date.now();
    trace(`dumped ${endpoints.length} sockets from ${this.sourceName}`);
    if (interrupted) notes.push("sockets changed while they were being read; the listing may miss or repeat a few");
    let unreadableProcesses = 0;
    if (request.withProcesses && this.sourceName !== "replay") {
      unreadableProcesses = this.attachProcesses(endpoints, notes, full);
    }
    return { endpoints, takenAt, source: this.sourceName, notes, unreadableProcesses };
  }

  /**
   * Between snapshots an idle socket's record does not change: the endpoint from the last
   * snapshot is handed out again instead of a new one, which keeps a watcher of 100k idle sockets
   * from making 100k objects (and as much garbage) every refresh.
   */
  private unchanged(protocol: Protocol, r: DiagRecord, state: TcpState | null, cookie: number): Endpoint | null {
    const old = this.previousByCookie.get(cookie);
    if (
      !old ||
      old.protocol !== protocol ||
      old.state !== state ||
      old.inode !== r.inode ||
      old.localPort !== r.sourcePort ||
      old.remotePort !== r.destinationPort ||
      old.receiveQueue !== r.receiveQueue ||
      old.sendQueue !== r.sendQueue ||
      old.packetsSent !== r.segsOut ||
      old.packetsReceived !== r.segsIn ||
      old.bytesReceived !== r.bytesReceived ||
      old.bytesSent !== (r.hasTcpInfo ? (r.bytesSent ?? r.bytesAcked) : null) ||
      old.rttMs !== (r.rttMicros !== null && state !== "LISTEN" ? r.rttMicros / 1000 : null)
    ) {
      return null;
    }
    return old;
  }

  private toEndpoint(protocol: Protocol, r: DiagRecord, reuse = false): Endpoint {
    const state: TcpState | null = protocol === "tcp" ? (KERNEL_TCP_STATES[r.state] ?? "CLOSE") : null;
    const cookie = r.cookieHigh * 0x100000000 + r.cookieLow;
    if (reuse && cookie !== 0 && this.currentByCookie) {
      const same = this.unchanged(protocol, r, state, cookie);
      const ep = same ?? this.newEndpoint(protocol, r, state);
      this.currentByCookie.set(cookie, ep);
      return ep;
    }
    return this.newEndpoint(protocol, r, state);
  }

  private newEndpoint(protocol: Protocol, r: DiagRecord, state: TcpState | null): Endpoint {
    const family: Family = r.family === AF_INET6 ? 6 : 4;
    // Request and TIME_WAIT sockets have no owner and report uid 0 and inode 0.
    const hasOwner = r.inode !== 0;
    return {
      protocol,
      family,
      localAddress: r.source,
      localPort: r.sourcePort,
      remoteAddress: r.destination,
      remotePort: r.destinationPort,
      state,
      inode: r.inode,
      uid: hasOwner ? r.uid : null,
      user: hasOwner ? this.users.name(r.uid) : null,
      interfaceIndex: r.interfaceIndex,
      receiveQueue: r.receiveQueue,
      sendQueue: r.sendQueue,
      // bytes_sent exists since Linux 4.19; older kernels only have bytes_acked.
      bytesSent: r.hasTcpInfo ? (r.bytesSent ?? r.bytesAcked) : null,
      bytesReceived: r.bytesReceived,
      packetsSent: r.segsOut,
      packetsReceived: r.segsIn,
      rttMs: r.rttMicros !== null && state !== "LISTEN" ? r.rttMicros / 1000 : null,
      cookie: r.cookieLow === 0 && r.cookieHigh === 0 ? null : cookieString(r.cookieLow, r.cookieHigh),
      process: null,
      pids: NO_PIDS,
    };
  }

  /**
   * Joins endpoints with /proc; returns how many processes could not be inspected.
   *
   * Owners are remembered between snapshots, so a watcher with many idle sockets reads /proc
   * only when sockets it cannot place appear: then every process's descriptors are scanned once,
   * and inodes still without an owner are remembered as such until they go away.
   */
  private attachProcesses(endpoints: Endpoint[], notes: string[], evict = true): number {
    const live = new Set<number>();
    for (const ep of endpoints) if (ep.inode !== 0) live.add(ep.inode);
    if (evict) {
      for (const inode of this.ownerCache.keys()) if (!live.has(inode)) this.ownerCache.delete(inode);
      for (const inode of this.unplaced) if (!live.has(inode)) this.unplaced.delete(inode);
    }
    this.reader.revalidate();

    const missing = new Set<number>();
    for (const inode of live) if (!this.ownerCache.has(inode) && !this.unplaced.has(inode)) missing.add(inode);
    if (missing.size > 0) {
      const fdScanner = this.fdScanner();
      trace("fd scanner ready");
      const owners = scanSocketOwners(this.procRoot, missing, fdScanner, {
        memos: this.fdMemos,
        live,
        stillOpen: (inodes) => this.stillOpen(endpoints, inodes),
      });
      trace(`scanned /proc: ${owners.owner.size} owned sockets`);
      this.unreadable = owners.unreadable.length;
      for (const inode of live) {
        const pids = ownersOf(owners, inode);
        if (pids) this.ownerCache.set(inode, pids);
        else if (missing.has(inode)) this.unplaced.add(inode);
      }
    }

    let hidden = 0;
    const myUid = process.getuid?.() ?? 0;
    for (const ep of endpoints) {
      if (ep.inode === 0) continue;
      const pids = this.ownerCache.get(ep.inode);
      if (!pids) {
        if (this.unreadable > 0 && ep.uid !== myUid) hidden++;
        continue;
      }
      ep.pids = pids;
      for (const pid of pids) {
        const info = this.reader.read(pid);
        if (info) {
          ep.process = info;
          break;
        }
      }
      // Every holder exited (the socket lingers in a process started since): look again next time.
      if (!ep.process) this.ownerCache.delete(ep.inode);
    }
    if (hidden > 0) {
      notes.push(
        `${hidden} socket(s) of other users show no process, so filters and rules that go by process name or PID cannot tell theirs apart: reading another user's /proc/PID/fd needs CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (root has both)${userNamespaceNote()}`,
      );
    }
    return this.unreadable;
  }

  /**
   * Of sockets no process was found holding, those still open: under churn most are short
   * connections already closed since the dump, and looking for them would read every process
   * of every other namespace each refresh. Only this namespace's TCP connections are asked
   * about (one sock_diag lookup each); anything else counts as open.
   */
  private stillOpen(endpoints: readonly Endpoint[], inodes: ReadonlySet<number>): ReadonlySet<number> {
    if (this.sourceName !== "netlink" || this.allNamespaces) return inodes;
    const open = new Set(inodes);
    try {
      this.liveLookup ??= new DiagLookup();
      for (const ep of endpoints) {
        if (ep.protocol !== "tcp" || ep.state === "LISTEN" || !open.has(ep.inode)) continue;
        const found = this.liveLookup.tcp(ep).socket;
        if (!found || found.inode !== ep.inode) open.delete(ep.inode);
      }
    } catch {
      // Without the lookup every socket counts as open: the scan goes on as it would have.
      return inodes;
    }
    return open;
  }

  private inNamespaceOf<T>(ep: Endpoint, fn: () => T): T {
    const inode = ep.namespace?.inode;
    if (inode === undefined || inode === this.homeInode || this.homeFd < 0) return fn();
    const ns = this.namespaces.find((n) => n.inode === inode) ?? discoverNamespaces(this.procRoot).find((n) => n.inode === inode);
    if (!ns) return fn();
    return inNamespace(ns.path, this.homeFd, fn);
  }

  closePrivilegeProblem(method: CloseMethod = "auto"): string | null {
    if (method === "owner") {
      return hasCapability(CAP_SYS_PTRACE)
        ? null
        : "taking sockets from their owners needs CAP_SYS_PTRACE, and CAP_DAC_READ_SEARCH for other users' sockets (run as root)";
    }
    return hasCapability(CAP_NET_ADMIN) ? null : "closing connections needs CAP_NET_ADMIN (run as root, or grant the capability)";
  }

  /**
   * Closes one socket: sock_diag SOCK_DESTROY, or where the kernel was built without it
   * (EOPNOTSUPP), by taking the socket from its owner. `method` forces one way.
   */
  destroy(ep: Endpoint, method: CloseMethod = "auto"): DestroyResult {
    if (method === "owner") return closeThroughOwner(ep, this.procRoot);
    // The request has to be made from inside the socket's own namespace.
    const r = this.inNamespaceOf(ep, () => destroySocket(ep));
    if (method === "auto" && r.outcome === "failed" && r.errno === EOPNOTSUPP) {
      const fallback = closeThroughOwner(ep, this.procRoot);
      if (fallback.outcome === "failed") {
        return { ...fallback, reason: `${r.reason}; taking it from its owner failed too: ${fallback.reason}` };
      }
      return fallback;
    }
    return r;
  }

  /**
   * The kernel's notices of destroyed sockets, as endpoints (state CLOSE, final counters, no
   * owner: the kernel gives none). Throws UnsupportedError where the groups cannot be joined.
   */
  closedSockets(): ClosedSocketFeed {
    if (this.sourceName !== "netlink") {
      throw new UnsupportedError(`socket-destroy notices need netlink sock_diag (reading from ${this.sourceName})`);
    }
    type Readers = { tcp: DestroyEventReader; udp: DestroyEventReader; tag: NamespaceTag | null };
    const open = (): Omit<Readers, "tag"> => ({ tcp: new DestroyEventReader("tcp"), udp: new DestroyEventReader("udp") });
    const readers = new Map<number, Readers>();
    try {
      readers.set(-1, { ...open(), tag: null });
    } catch (err) {
      throw new UnsupportedError(`cannot join sock_diag's socket-destroy groups: ${(err as Error).message}`);
    }
    // The groups are per namespace: with all namespaces, one pair of readers joins each.
    const follow = () => {
      if (!this.allNamespaces) return;
      for (const ns of this.namespaces) {
        if (ns.inode === this.homeInode || readers.has(ns.inode)) continue;
        try {
          readers.set(ns.inode, { ...inNamespace(ns.path, this.homeFd, open), tag: this.tagFor(ns) });
        } catch {
          // Gone already; its sockets went with it.
        }
      }
      const home = this.namespaces.find((n) => n.inode === this.homeInode);
      if (home) readers.get(-1)!.tag = this.tagFor(home);
    };
    return {
      drain: () => {
        follow();
        const out: Endpoint[] = [];
        for (const r of readers.values()) {
          for (const rec of r.tcp.drain()) out.push(this.tagged(this.toEndpoint("tcp", rec), r.tag));
          for (const rec of r.udp.drain()) out.push(this.tagged(this.toEndpoint("udp", rec), r.tag));
        }
        return out;
      },
      lost: () => [...readers.values()].reduce((n, r) => n + r.tcp.overflows + r.udp.overflows + r.tcp.malformed + r.udp.malformed, 0),
      close: () => {
        for (const r of readers.values()) {
          r.tcp.close();
          r.udp.close();
        }
      },
    };
  }

  /**
   * TCP state changes from the eBPF sensor; throws SensorUnavailableError (an UnsupportedError)
   * saying why it cannot run. New sockets are completed by a lookup in this engine's namespace,
   * or with allNamespaces in their process's namespace, and then tagged with it as dumps are.
   */
  transitions(): TransitionFeed {
    if (this.sourceName !== "netlink") {
      throw new UnsupportedError(`the eBPF sensor completes sockets through netlink sock_diag (reading from ${this.sourceName})`);
    }
    const lookup = new DiagLookup();
    const pids = recordPids(this.procRoot);
    const homeInode = this.homeInode;
    const elsewhere =
      this.allNamespaces && homeInode !== null
        ? new NamespaceLookups({ home: lookup, homeInode, homeFd: this.homeFd, discover: () => discoverNamespaces(this.procRoot) })
        : null;
    if (elsewhere) {
      // Before the first dump: a connection of a process not yet known is searched for in these.
      elsewhere.update(this.namespaces.length > 0 ? this.namespaces : discoverNamespaces(this.procRoot));
      this.namespaceLookups.add(elsewhere);
    }
    const closeLookups = () => {
      if (elsewhere) {
        elsewhere.close();
        this.namespaceLookups.delete(elsewhere);
      }
      lookup.close();
    };
    try {
      const feed = SensorFeed.start({
        lookup: (tuple, netns) => {
          if (!elsewhere) {
            const answer = lookup.tcp(tuple);
            return { endpoint: answer.socket ? this.toEndpoint("tcp", answer.socket) : null, listener: answer.listener };
          }
          const { answer, inode } = elsewhere.tcp(tuple, netns);
          const endpoint = answer.socket ? this.toEndpoint("tcp", answer.socket) : null;
          if (endpoint && inode !== null) {
            const ns = elsewhere.place(inode);
            endpoint.namespace = ns ? this.tagFor(ns) : { inode, name: null, container: null };
          }
          return { endpoint, listener: answer.listener };
        },
        process: (pid) => this.reader.read(pid),
        userName: (uid) => this.users.name(uid),
        netnsOf: (pid) => namespaceInodeOf(`${this.procRoot}/${pid}/ns/net`),
        namespaceTag: (inode) => {
          const ns = elsewhere?.place(inode);
          return ns ? this.tagFor(ns) : null;
        },
        homeNetns: this.homeInode ?? namespaceInodeOf("/proc/thread-self/ns/net"),
        allNamespaces: this.allNamespaces,
        recordPids: pids.usable,
        placeOwner: (endpoint) => {
          this.attachProcesses([endpoint], [], false);
        },
      });
      if (pids.note) feed.notes.push(pids.note);
      const close = feed.close.bind(feed);
      feed.close = () => {
        close();
        closeLookups();
      };
      return feed;
    } catch (err) {
      closeLookups();
      throw err;
    }
  }

  private tagged(ep: Endpoint, tag: NamespaceTag | null): Endpoint {
    if (tag) ep.namespace = tag;
    return ep;
  }

  private fdScanner(): FdLinkScanner {
    if (!this.fdLinks) {
      try {
        this.fdLinks = libcFdLinks();
      } catch {
        this.fdLinks = nodeFdLinks;
      }
    }
    return this.fdLinks;
  }

  private ticks(): number {
    if (this.clockTicks === null) {
      let t = 100;
      try {
        const v = libc().sysconf(_SC_CLK_TCK);
        if (v > 0) t = v;
      } catch {
        // Without koffi (the /proc fallback on a box where it cannot load) assume the usual 100 Hz.
      }
      this.clockTicks = t;
    }
    return this.clockTicks;
  }

  openLocalDatagram(path: string): { send(data: Uint8Array): void; close(): void } {
    return openUnixDatagram(path);
  }

  processDetails(pid: number): ProcessDetails | null {
    return readProcessDetails(pid, this.procRoot, { users: this.users, clockTicks: this.ticks() });
  }

  close(): void {
    this.liveLookup?.close();
    this.liveLookup = null;
    this.source.close();
    this.finishRecording?.();
  }
}
