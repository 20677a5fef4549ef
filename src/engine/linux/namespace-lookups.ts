/**
 * Targeted sock_diag lookups in every network namespace, for the eBPF sensor with
 * `--all-namespaces`. sock_diag answers only for the namespace its netlink socket was opened in,
 * so a socket is looked up in its own namespace (read from the socket by the sensor's program, or
 * without BTF the namespace of its process): one DiagLookup per namespace, its socket opened
 * from inside it (setns, as the dumps of other namespaces are), kept for the next lookup there
 * and closed when the namespace goes away.
 */
import { DiagLookup, type DiagAnswer, type TcpTuple } from "./diag-lookup.ts";
import { inNamespace, namespaceInodeOf, type NetNamespace } from "./namespaces.ts";

/** Cached lookups at most; a host with more namespaces than this reopens the least recent. */
const MAX_OPEN = 1024;
const NOTHING: DiagAnswer = { socket: null, listener: false };

export interface NamespaceLookupsOptions {
  /** The lookup of the engine's own namespace (owned by the caller). */
  home: DiagLookup;
  homeInode: number;
  /** A descriptor of the engine's own namespace, to return to after entering another. */
  homeFd: number;
  /** Every namespace in use now (a scan of /proc and /run/netns). */
  discover: () => NetNamespace[];
  /** Opens a lookup in the calling thread's namespace (a test seam). */
  openLookup?: () => DiagLookup;
}

export interface PlacedAnswer {
  answer: DiagAnswer;
  /** The namespace that answered; null when none could be entered or two had the socket. */
  inode: number | null;
}

export class NamespaceLookups {
  private readonly open = new Map<number, DiagLookup>();
  private namespaces: readonly NetNamespace[] = [];
  /** Inodes a fresh scan did not find: not scanned for again until the list is next updated. */
  private readonly unplaceable = new Set<number>();

  constructor(private readonly options: NamespaceLookupsOptions) {}

  /** The namespaces the engine found at its last dump; lookups of vanished ones are closed. */
  update(namespaces: readonly NetNamespace[]): void {
    this.namespaces = namespaces;
    this.unplaceable.clear();
    const present = new Set(namespaces.map((n) => n.inode));
    for (const [inode, lookup] of this.open) {
      if (present.has(inode)) continue;
      lookup.close();
      this.open.delete(inode);
    }
  }

  /** The namespace with this inode, scanning for it once when it is new. */
  place(inode: number): NetNamespace | null {
    const known = this.namespaces.find((n) => n.inode === inode);
    if (known || this.unplaceable.has(inode)) return known ?? null;
    this.namespaces = this.options.discover();
    const found = this.namespaces.find((n) => n.inode === inode) ?? null;
    if (!found) this.unplaceable.add(inode);
    return found;
  }

  /**
   * The socket with these addresses in namespace `netns`. With no namespace (the kernel has no BTF
   * and its process is not known: an accepted socket of a listener older than the sensor) every
   * namespace is asked, and
   * the socket is placed only where exactly one has those addresses: identical four-tuples in two
   * namespaces (containers made from one image) cannot be told apart by addresses, and a socket
   * left incomplete is better than one completed with its twin's cookie, owner and namespace.
   */
  tcp(tuple: TcpTuple, netns: number | null): PlacedAnswer {
    const { home, homeInode } = this.options;
    if (netns === homeInode) return { answer: home.tcp(tuple), inode: homeInode };
    if (netns !== null) {
      const lookup = this.lookupIn(netns);
      return lookup ? { answer: lookup.tcp(tuple), inode: netns } : { answer: NOTHING, inode: null };
    }
    const own = home.tcp(tuple);
    let placed: PlacedAnswer | null = own.socket ? { answer: own, inode: homeInode } : null;
    for (const ns of [...this.namespaces]) {
      if (ns.inode === homeInode) continue;
      const answer = this.lookupIn(ns.inode)?.tcp(tuple);
      if (!answer?.socket) continue;
      if (placed) return { answer: { socket: null, listener: own.listener }, inode: null };
      placed = { answer, inode: ns.inode };
    }
    return placed ?? { answer: own, inode: homeInode };
  }

  /** The lookup of one namespace, opened from inside it the first time; null when it is gone. */
  private lookupIn(inode: number): DiagLookup | null {
    const cached = this.open.get(inode);
    if (cached) {
      // Most recently used last: the first is the one to close when there are too many.
      this.open.delete(inode);
      this.open.set(inode, cached);
      return cached;
    }
    const ns = this.place(inode);
    if (!ns) return null;
    let lookup: DiagLookup | null;
    try {
      lookup = inNamespace(ns.path, this.options.homeFd, () =>
        // A /proc/PID path whose process ended may name another namespace now (its PID reused).
        namespaceInodeOf("/proc/thread-self/ns/net") === inode ? (this.options.openLookup ?? (() => new DiagLookup()))() : null,
      );
    } catch {
      // Gone between the scan and the entry, or not enterable: its sockets cannot be completed.
      return null;
    }
    if (!lookup) return null;
    if (this.open.size >= MAX_OPEN) {
      const [oldest, old] = this.open.entries().next().value!;
      old.close();
      this.open.delete(oldest);
    }
    this.open.set(inode, lookup);
    return lookup;
  }

  /** Closes the lookups of other namespaces (not the home one, which the caller owns). */
  close(): void {
    for (const lookup of this.open.values()) lookup.close();
    this.open.clear();
  }
}
