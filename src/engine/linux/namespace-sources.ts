/**
 * With all namespaces: the network namespaces on the machine, a sock_diag source opened inside
 * each one other than this thread's own, and the tag (inode, ip-netns name, container) that the
 * endpoints found in each one carry.
 */
import type { Endpoint, NamespaceTag } from "../../model/endpoint.ts";
import { LiveDiagSource, type DiagSource } from "./diag-source.ts";
import { discoverNamespaces, inNamespace, namespaceInodeOf, openHomeNamespace, type NetNamespace } from "./namespaces.ts";
import type { NamespaceLookups } from "./namespace-lookups.ts";
import type { ProcessReader } from "./process-map.ts";
import { PrivilegeError } from "../../errors.ts";

export class NamespaceSources {
  /** A descriptor of this thread's own namespace, to come back to after entering another. */
  readonly homeFd: number;
  readonly homeInode: number | null;
  private current: NetNamespace[] = [];
  /** The other namespaces' sources, by namespace inode. */
  private readonly foreign = new Map<number, { ns: NetNamespace; source: DiagSource }>();
  private readonly tags = new Map<number, NamespaceTag>();
  /** The sensor feeds' lookups in other namespaces, told when namespaces go. */
  private readonly lookups = new Set<NamespaceLookups>();

  /** Opens the way home; call while the thread is still in its own namespace. */
  constructor(
    private readonly procRoot: string,
    private readonly reader: ProcessReader,
  ) {
    this.homeFd = openHomeNamespace();
    this.homeInode = namespaceInodeOf("/proc/thread-self/ns/net");
  }

  /** The namespaces found by the last refresh. */
  get namespaces(): readonly NetNamespace[] {
    return this.current;
  }

  discover(): NetNamespace[] {
    return discoverNamespaces(this.procRoot);
  }

  /**
   * Finds namespaces that appeared since the last look (and forgets those that went away); a
   * source for each is opened inside it.
   */
  refresh(): void {
    this.current = this.discover();
    const present = new Set(this.current.map((n) => n.inode));
    for (const [inode, f] of this.foreign) {
      if (!present.has(inode)) {
        f.source.close();
        this.foreign.delete(inode);
      }
    }
    this.tags.clear();
    for (const ns of this.current) {
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
    for (const lookups of this.lookups) lookups.update(this.current);
  }

  /** The other namespaces' sources, as of the last refresh. */
  sources(): { source: DiagSource; ns: NetNamespace }[] {
    return [...this.foreign.values()];
  }

  /** The tag of a namespace: inode, ip-netns name, and the container its processes are in. */
  tagFor(ns: NetNamespace): NamespaceTag {
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

  /** This thread's own namespace, when the last refresh found it. */
  home(): NetNamespace | undefined {
    return this.current.find((n) => n.inode === this.homeInode);
  }

  homeTag(): NamespaceTag {
    const home = this.home();
    return home ? this.tagFor(home) : { inode: this.homeInode ?? 0, name: null, container: null };
  }

  /** Runs `fn` inside the namespace of `ep` (this thread's own when it has none or it is gone). */
  inNamespaceOf<T>(ep: Endpoint, fn: () => T): T {
    const inode = ep.namespace?.inode;
    if (inode === undefined || inode === this.homeInode || this.homeFd < 0) return fn();
    const ns = this.current.find((n) => n.inode === inode) ?? this.discover().find((n) => n.inode === inode);
    if (!ns) return fn();
    return inNamespace(ns.path, this.homeFd, fn);
  }

  follow(lookups: NamespaceLookups): void {
    this.lookups.add(lookups);
  }

  unfollow(lookups: NamespaceLookups): void {
    this.lookups.delete(lookups);
  }
}
