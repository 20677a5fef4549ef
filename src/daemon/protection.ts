/**
 * Endpoints and processes the daemon never closes or kills, whatever a rule asks: configured
 * ports, addresses or CIDRs, process names (globs) and executable paths, and always sockwarden's
 * own process and the other end of each of its own connections on this host (a webhook
 * receiver or syslog server on loopback: closing their end cuts sockwarden's alerts as surely as
 * closing its own). A protected port or address protects the processes behind it too: ending the
 * process would close the socket as surely as closing it.
 */
import type { Endpoint, SocketAddresses } from "../model/endpoint.ts";
import type { ProcessInfo } from "../model/process.ts";
import { parseCidr, type CidrMatcher } from "../net/address.ts";
import { globMatcher } from "../text/glob.ts";

export interface ProtectionConfig {
  ports: number[];
  addresses: string[];
  processes: string[];
  paths: string[];
}

/** A socket as Protection compares it; the namespace where the caller knows it. */
type Socket = SocketAddresses & { namespace?: Endpoint["namespace"] };

export class Protection {
  private readonly ports: Set<number>;
  private readonly cidrs: CidrMatcher[];
  private readonly names: ((name: string) => boolean)[];
  private readonly paths: Set<string>;
  /** sockwarden's own TCP connections, by the key their other end has; see ownPeers(). */
  private peers: Map<string, Socket> | null = null;

  /**
   * `known` gives the endpoints sockwarden knows now (the monitor's table): its own connections
   * are found there by its PID, and with them the other ends it must leave alone.
   */
  constructor(
    config: ProtectionConfig,
    private readonly selfPid = process.pid,
    private readonly known: () => Iterable<Endpoint> = () => [],
  ) {
    this.ports = new Set(config.ports);
    this.cidrs = config.addresses.map((a) => parseCidr(a));
    this.names = config.processes.map((p) => globMatcher(p));
    this.paths = new Set(config.paths);
  }

  /** Why this endpoint must not be closed, or null. */
  closeRefusal(ep: Endpoint): string | null {
    if (ep.pids.includes(this.selfPid)) return "it is sockwarden's own socket";
    return this.peer(ep) ?? this.socket(ep) ?? (ep.process ? this.process(ep.process) : null);
  }

  /**
   * Why this socket must not be touched because sockwarden's own connection ends in it: the same
   * four addresses and ports reversed, TCP, in the same network namespace. Null otherwise.
   */
  peer(s: Socket): string | null {
    if (s.protocol !== "tcp" || s.remotePort === 0) return null;
    const own = this.ownPeers().get(tupleKey(s.localAddress, s.localPort, s.remoteAddress, s.remotePort));
    if (!own || !sameNamespace(own, s)) return null;
    return `it is the other end of sockwarden's own connection to ${hostPort(s.family, s.localAddress, s.localPort)}`;
  }

  /**
   * sockwarden's own connections, keyed as their other ends see them. Made once per task: the
   * table changes only between tasks, and a rule asking to close thousands of sockets in one
   * batch must not make the table be read once for each.
   */
  private ownPeers(): Map<string, Socket> {
    if (this.peers) return this.peers;
    const peers = new Map<string, Socket>();
    for (const ep of this.known()) {
      if (ep.protocol !== "tcp" || ep.remotePort === 0 || !ep.pids.includes(this.selfPid)) continue;
      peers.set(tupleKey(ep.remoteAddress, ep.remotePort, ep.localAddress, ep.localPort), ep);
    }
    this.peers = peers;
    queueMicrotask(() => (this.peers = null));
    return peers;
  }

  /** Why a socket must not be touched by its ports and addresses alone, or null. */
  socket(s: SocketAddresses): string | null {
    if (this.ports.has(s.localPort) || this.ports.has(s.remotePort)) return `port ${this.ports.has(s.localPort) ? s.localPort : s.remotePort} is protected`;
    for (const c of this.cidrs) {
      if (c.matches(s.localAddress) || c.matches(s.remoteAddress)) return `address ${c.toString()} is protected`;
    }
    return null;
  }

  /**
   * Why this process must not be ended: the process itself, or the first socket among those it
   * holds that is on a protected port or address or is the other end of sockwarden's own
   * connection (named, with why).
   */
  killRefusal(p: ProcessInfo, sockets: Iterable<Socket>): string | null {
    const own = this.process(p);
    if (own) return own;
    for (const s of sockets) {
      const peer = this.peer(s);
      if (peer) return `it holds ${describeSocket(s)}: ${peer}`;
      const why = this.socket(s);
      if (why) return `it holds ${describeSocket(s)} and ${why}`;
    }
    return null;
  }

  /** Why this process must not be ended, or null. */
  process(p: ProcessInfo): string | null {
    if (p.pid === this.selfPid) return "it is sockwarden itself";
    if (p.pid <= 1) return "it is the init process";
    if (this.names.some((matches) => matches(p.name))) return `process ${p.name} is protected`;
    if (p.path && this.paths.has(p.path)) return `${p.path} is protected`;
    return null;
  }
}

/** `tcp 127.0.0.1:22`, with ` -> REMOTE` for a connected socket. */
export function describeSocket(s: SocketAddresses): string {
  const host = (a: string, p: number) => hostPort(s.family, a, p);
  return `${s.protocol} ${host(s.localAddress, s.localPort)}${s.remotePort !== 0 ? ` -> ${host(s.remoteAddress, s.remotePort)}` : ""}`;
}

function hostPort(family: 4 | 6, address: string, port: number): string {
  return family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * One TCP connection's end, as `local|remote`. An IPv4 peer reached from a dual-stack socket is
 * `::ffff:127.0.0.1` on one side and `127.0.0.1` on the other: both are keyed as the latter.
 */
function tupleKey(localAddress: string, localPort: number, remoteAddress: string, remotePort: number): string {
  return `${plain(localAddress)}|${localPort}|${plain(remoteAddress)}|${remotePort}`;
}

function plain(address: string): string {
  const a = address.toLowerCase();
  return a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
}

/**
 * Two sockets in different namespaces can hold the same addresses and ports without being each
 * other's end. Where the namespace of one is not known (a process's sockets read afresh), the
 * addresses decide: refusing is the safe way to be wrong.
 */
function sameNamespace(a: Socket, b: Socket): boolean {
  if (!a.namespace || !b.namespace) return true;
  return a.namespace.inode === b.namespace.inode;
}
