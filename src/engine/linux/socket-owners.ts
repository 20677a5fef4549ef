/**
 * Which processes hold each socket: the inode → PIDs table, kept between snapshots and filled
 * from /proc only when sockets it cannot place appear.
 */
import type { Endpoint } from "../../model/endpoint.ts";
import { FdMemos, nodeFdLinks, ownersOf, scanSocketOwners, type FdLinkScanner, type ProcessReader } from "./process-map.ts";
import { libcFdLinks } from "./fd-links.ts";
import { DiagLookup } from "./diag-lookup.ts";
import { userNamespaceNote } from "./capabilities.ts";
import { trace } from "../../trace.ts";

export interface SocketOwnersOptions {
  procRoot: string;
  reader: ProcessReader;
  /**
   * Whether a socket no process holds may be looked up in sock_diag to see if it is still open:
   * only with a live dump of this namespace alone.
   */
  canLookUp: boolean;
}

export class SocketOwners {
  private readonly owners = new Map<number, number[]>();
  private readonly unplaced = new Set<number>();
  private unreadable = 0;
  private fdLinks: FdLinkScanner | null = null;
  /** Descriptors read by the last owner scan, so the next reads only what changed. */
  private readonly fdMemos = new FdMemos();
  /** Asks whether a socket not found in any process is still open (see stillOpen). */
  private liveLookup: DiagLookup | null = null;

  constructor(private readonly options: SocketOwnersOptions) {}

  /**
   * Joins endpoints with /proc; returns how many processes could not be inspected. `evict`
   * (a full dump) forgets the owners of sockets not among `endpoints`.
   *
   * Owners are remembered between snapshots, so a watcher with many idle sockets reads /proc
   * only when sockets it cannot place appear: then every process's descriptors are scanned once,
   * and inodes still without an owner are remembered as such until they go away.
   */
  attach(endpoints: Endpoint[], notes: string[], evict = true): number {
    const { reader } = this.options;
    const live = new Set<number>();
    for (const ep of endpoints) if (ep.inode !== 0) live.add(ep.inode);
    if (evict) {
      for (const inode of this.owners.keys()) if (!live.has(inode)) this.owners.delete(inode);
      for (const inode of this.unplaced) if (!live.has(inode)) this.unplaced.delete(inode);
    }
    reader.revalidate();

    const missing = new Set<number>();
    for (const inode of live) if (!this.owners.has(inode) && !this.unplaced.has(inode)) missing.add(inode);
    if (missing.size > 0) {
      const fdScanner = this.fdScanner();
      trace("fd scanner ready");
      const found = scanSocketOwners(this.options.procRoot, missing, fdScanner, {
        memos: this.fdMemos,
        live,
        stillOpen: (inodes) => this.stillOpen(endpoints, inodes),
      });
      trace(`scanned /proc: ${found.owner.size} owned sockets`);
      this.unreadable = found.unreadable.length;
      for (const inode of live) {
        const pids = ownersOf(found, inode);
        if (pids) this.owners.set(inode, pids);
        else if (missing.has(inode)) this.unplaced.add(inode);
      }
    }

    let hidden = 0;
    const myUid = process.getuid?.() ?? 0;
    for (const ep of endpoints) {
      if (ep.inode === 0) continue;
      const pids = this.owners.get(ep.inode);
      if (!pids) {
        if (this.unreadable > 0 && ep.uid !== myUid) hidden++;
        continue;
      }
      ep.pids = pids;
      for (const pid of pids) {
        const info = reader.read(pid);
        if (info) {
          ep.process = info;
          break;
        }
      }
      // Every holder exited (the socket lingers in a process started since): look again next time.
      if (!ep.process) this.owners.delete(ep.inode);
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
    if (!this.options.canLookUp) return inodes;
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

  close(): void {
    this.liveLookup?.close();
    this.liveLookup = null;
  }
}
