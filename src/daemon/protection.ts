/**
 * Endpoints and processes the daemon never closes or kills, whatever a rule asks: configured
 * ports, addresses or CIDRs, process names (globs) and executable paths, and always sockwarden's
 * own process.
 */
import type { Endpoint, ProcessInfo } from "../engine/types.ts";
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
    if (this.ports.has(ep.localPort) || this.ports.has(ep.remotePort)) return `port ${this.ports.has(ep.localPort) ? ep.localPort : ep.remotePort} is protected`;
    for (const c of this.cidrs) {
      if (c.matches(ep.localAddress) || c.matches(ep.remoteAddress)) return `address ${c.toString()} is protected`;
    }
    return ep.process ? this.process(ep.process) : null;
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
