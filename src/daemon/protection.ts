/**
 * Endpoints and processes the daemon never closes or kills, whatever a rule asks: configured
 * ports, addresses or CIDRs, process names (globs) and executable paths, and always sockwarden's
 * own process. A protected port or address protects the processes behind it too: ending the
 * process would close the socket as surely as closing it.
 */
import type { Endpoint, ProcessInfo, SocketAddresses } from "../engine/types.ts";
import { parseCidr, type CidrMatcher } from "../net/address.ts";
import { globToRegExp } from "../filter/endpoint-filter.ts";

export interface ProtectionConfig {
  ports: number[];
  addresses: string[];
  processes: string[];
  paths: string[];
}

export class Protection {
  private readonly ports: Set<number>;
  private readonly cidrs: CidrMatcher[];
  private readonly names: RegExp[];
  private readonly paths: Set<string>;

  constructor(config: ProtectionConfig, private readonly selfPid = process.pid) {
    this.ports = new Set(config.ports);
    this.cidrs = config.addresses.map((a) => parseCidr(a));
    this.names = config.processes.map((p) => globToRegExp(p));
    this.paths = new Set(config.paths);
  }

  /** Why this endpoint must not be closed, or null. */
  endpoint(ep: Endpoint): string | null {
    if (ep.pids.includes(this.selfPid)) return "it is sockwarden's own socket";
    return this.socket(ep) ?? (ep.process ? this.process(ep.process) : null);
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
   * holds that is on a protected port or address (named, with why).
   */
  kill(p: ProcessInfo, sockets: Iterable<SocketAddresses>): string | null {
    const own = this.process(p);
    if (own) return own;
    for (const s of sockets) {
      const why = this.socket(s);
      if (why) return `it holds ${describeSocket(s)} and ${why}`;
    }
    return null;
  }

  /** Why this process must not be ended, or null. */
  process(p: ProcessInfo): string | null {
    if (p.pid === this.selfPid) return "it is sockwarden itself";
    if (p.pid <= 1) return "it is the init process";
    if (this.names.some((re) => re.test(p.name))) return `process ${p.name} is protected`;
    if (p.path && this.paths.has(p.path)) return `${p.path} is protected`;
    return null;
  }
}

/** `tcp 127.0.0.1:22`, with ` -> REMOTE` for a connected socket. */
export function describeSocket(s: SocketAddresses): string {
  const host = (a: string, p: number) => (s.family === 6 ? `[${a}]:${p}` : `${a}:${p}`);
  return `${s.protocol} ${host(s.localAddress, s.localPort)}${s.remotePort !== 0 ? ` -> ${host(s.remoteAddress, s.remotePort)}` : ""}`;
}
