/**
 * The Linux engine: sock_diag dump (or the /proc/net fallback, or a replayed recording) joined
 * with the /proc process map into normalized endpoints.
 */
import type { EngineScope, CloseMethod, ClosedSocketFeed, TransitionFeed, DestroyResult, Snapshot, SnapshotRequest, SocketEngine } from "../types.ts";
import type { NamespaceTag, Endpoint } from "../../model/endpoint.ts";
import type { ProcessDetails } from "../../model/process.ts";
import { AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP } from "./sock-diag-codec.ts";
import { LiveDiagSource, recordingWriter, type DiagSource } from "./diag-source.ts";
import { openReplaySource } from "./replay-source.ts";
import { RecordedOwners, ownerLines } from "./recorded-owners.ts";
import { ProcNetSource } from "./proc-net.ts";
import { ProcessReader } from "./process-map.ts";
import { UserTable } from "./users.ts";
import { readProcessDetails } from "./process-details.ts";
import { clockTicksPerSecond } from "./clocks.ts";
import { EOPNOTSUPP } from "./errno.ts";
import { SockwardenError, UnsupportedError } from "../../errors.ts";
import { DestroyEventReader } from "./destroy-events.ts";
import { inNamespace, namespaceInodeOf, requireAllNamespacesAccess } from "./namespaces.ts";
import { destroySocket } from "./socket-destroy.ts";
import { closeThroughOwner } from "./socket-takeover.ts";
import { CAP_NET_ADMIN, CAP_SYS_PTRACE, hasCapability } from "./capabilities.ts";
import { openUnixDatagram } from "./unix-datagram.ts";
import { DiagLookup } from "./diag-lookup.ts";
import { SensorFeed } from "./sensor-feed.ts";
import { recordPids } from "./record-pids.ts";
import { NamespaceLookups } from "./namespace-lookups.ts";
import { EndpointBuilder } from "./endpoint-builder.ts";
import { SocketOwners } from "./socket-owners.ts";
import { NamespaceSources } from "./namespace-sources.ts";
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

export class LinuxEngine implements SocketEngine {
  readonly name = "linux";
  private readonly source: DiagSource;
  private readonly sourceName: string;
  private readonly notes: string[] = [];
  private readonly users = new UserTable();
  private readonly procRoot: string;
  private readonly recording: ReturnType<typeof recordingWriter> | null = null;
  /** With a replay: the owners the recording holds, which stand in for this box's /proc. */
  private readonly recordedOwners: RecordedOwners | null = null;
  private readonly reader: ProcessReader;
  private readonly builder: EndpointBuilder;
  private readonly owners: SocketOwners;
  /** With allNamespaces: every namespace's source and tag. */
  private readonly spaces: NamespaceSources | null = null;

  constructor(options: LinuxEngineOptions = {}) {
    this.procRoot = options.procRoot ?? "/proc";
    const allNamespaces = !!options.allNamespaces;
    this.reader = new ProcessReader({ procRoot: this.procRoot, users: this.users, clockTicks: clockTicksPerSecond });
    this.builder = new EndpointBuilder(this.users);
    const kind = options.source ?? "auto";
    if (kind === "replay") {
      if (!options.replayFile) throw new SockwardenError("replay needs a recording file");
      this.recordedOwners = new RecordedOwners(options.replayFile);
      this.source = openReplaySource(options.replayFile, this.recordedOwners);
      this.sourceName = "replay";
    } else if (kind === "proc") {
      this.source = new ProcNetSource(this.procRoot);
      this.sourceName = "proc";
    } else {
      if (allNamespaces) requireAllNamespacesAccess();
      const recording = options.recordFile ? recordingWriter(options.recordFile) : null;
      try {
        this.source = new LiveDiagSource(recording?.recorder);
        this.sourceName = "netlink";
        this.recording = recording;
        if (allNamespaces) this.spaces = new NamespaceSources(this.procRoot, this.reader);
      } catch (err) {
        recording?.finish();
        if (kind === "netlink") throw err;
        this.notes.push(
          `netlink sock_diag is unavailable (${(err as Error).message}); reading /proc/net instead (no traffic counters)`,
        );
        this.source = new ProcNetSource(this.procRoot);
        this.sourceName = "proc";
      }
      if (allNamespaces && this.sourceName !== "netlink") {
        throw new UnsupportedError("--all-namespaces needs netlink sock_diag, which is not available here");
      }
    }
    this.owners = new SocketOwners({
      procRoot: this.procRoot,
      reader: this.reader,
      canLookUp: this.sourceName === "netlink" && !allNamespaces,
    });
  }

  snapshot(request: SnapshotRequest): Snapshot {
    this.builder.beginDump();
    const endpoints: Endpoint[] = [];
    const notes = [...this.notes];
    let interrupted = false;
    const spaces = this.spaces;
    const sources: { source: DiagSource; tag: (() => NamespaceTag) | null }[] = [{ source: this.source, tag: spaces && (() => spaces.homeTag()) }];
    if (spaces) {
      spaces.refresh();
      for (const f of spaces.sources()) sources.push({ source: f.source, tag: () => spaces.tagFor(f.ns) });
    }
    for (const { source, tag } of sources) {
      const first = endpoints.length;
      for (const protocol of ["tcp", "udp"] as const) {
        if (!request.protocols.has(protocol)) continue;
        for (const family of [4, 6] as const) {
          if (!request.families.has(family)) continue;
          const result = source.dump(family === 4 ? AF_INET : AF_INET6, protocol === "tcp" ? IPPROTO_TCP : IPPROTO_UDP, (r) =>
            endpoints.push(this.builder.toEndpoint(protocol, r, true)),
          );
          interrupted ||= result.interrupted;
        }
      }
      if (tag) {
        const t = tag();
        for (let i = first; i < endpoints.length; i++) endpoints[i]!.namespace = t;
      }
    }
    // A dump of fewer protocols than were asked for before leaves the owners as the last full one.
    const full = this.builder.endDump(request.protocols);
    const takenAt = Date.now();
    trace(`dumped ${endpoints.length} sockets from ${this.sourceName}`);
    if (interrupted) notes.push("sockets changed while they were being read; the listing may miss or repeat a few");
    let unreadableProcesses = 0;
    if (request.withProcesses && this.recordedOwners) {
      this.recordedOwners.attach(endpoints, notes);
    } else if (request.withProcesses) {
      unreadableProcesses = this.owners.attach(endpoints, notes, full);
      this.recording?.append(ownerLines(endpoints));
    }
    return { endpoints, takenAt, source: this.sourceName, notes, unreadableProcesses };
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
    const r = this.spaces ? this.spaces.inNamespaceOf(ep, () => destroySocket(ep)) : destroySocket(ep);
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
    const spaces = this.spaces;
    const follow = () => {
      if (!spaces) return;
      for (const ns of spaces.namespaces) {
        if (ns.inode === spaces.homeInode || readers.has(ns.inode)) continue;
        try {
          readers.set(ns.inode, { ...inNamespace(ns.path, spaces.homeFd, open), tag: spaces.tagFor(ns) });
        } catch {
          // Gone already; its sockets went with it.
        }
      }
      const home = spaces.home();
      if (home) readers.get(-1)!.tag = spaces.tagFor(home);
    };
    return {
      drain: () => {
        follow();
        const out: Endpoint[] = [];
        for (const r of readers.values()) {
          for (const rec of r.tcp.drain()) out.push(tagged(this.builder.toEndpoint("tcp", rec), r.tag));
          for (const rec of r.udp.drain()) out.push(tagged(this.builder.toEndpoint("udp", rec), r.tag));
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
    const spaces = this.spaces;
    const homeInode = spaces?.homeInode ?? null;
    const elsewhere =
      spaces && homeInode !== null
        ? new NamespaceLookups({ home: lookup, homeInode, homeFd: spaces.homeFd, discover: () => spaces.discover() })
        : null;
    if (spaces && elsewhere) {
      // Before the first dump: a connection of a process not yet known is searched for in these.
      elsewhere.update(spaces.namespaces.length > 0 ? spaces.namespaces : spaces.discover());
      spaces.follow(elsewhere);
    }
    const closeLookups = () => {
      if (spaces && elsewhere) {
        elsewhere.close();
        spaces.unfollow(elsewhere);
      }
      lookup.close();
    };
    try {
      const feed = SensorFeed.start({
        lookup: (tuple, netns) => {
          if (!elsewhere) {
            const answer = lookup.tcp(tuple);
            return { endpoint: answer.socket ? this.builder.toEndpoint("tcp", answer.socket) : null, listener: answer.listener };
          }
          const { answer, inode } = elsewhere.tcp(tuple, netns);
          const endpoint = answer.socket ? this.builder.toEndpoint("tcp", answer.socket) : null;
          if (endpoint && inode !== null) {
            const ns = elsewhere.place(inode);
            endpoint.namespace = ns && spaces ? spaces.tagFor(ns) : { inode, name: null, container: null };
          }
          return { endpoint, listener: answer.listener };
        },
        process: (pid) => this.reader.read(pid),
        userName: (uid) => this.users.name(uid),
        netnsOf: (pid) => namespaceInodeOf(`${this.procRoot}/${pid}/ns/net`),
        namespaceTag: (inode) => {
          const ns = elsewhere?.place(inode);
          return ns && spaces ? spaces.tagFor(ns) : null;
        },
        homeNetns: homeInode ?? namespaceInodeOf("/proc/thread-self/ns/net"),
        allNamespaces: spaces !== null,
        recordPids: pids.usable,
        placeOwner: (endpoint) => {
          this.owners.attach([endpoint], [], false);
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

  openLocalDatagram(path: string): { send(data: Uint8Array): void; close(): void } {
    return openUnixDatagram(path);
  }

  processDetails(pid: number): ProcessDetails | null {
    return readProcessDetails(pid, this.procRoot, { users: this.users, clockTicks: clockTicksPerSecond() });
  }

  close(): void {
    this.owners.close();
    this.source.close();
    this.recording?.finish();
  }
}

function tagged(ep: Endpoint, tag: NamespaceTag | null): Endpoint {
  if (tag) ep.namespace = tag;
  return ep;
}
