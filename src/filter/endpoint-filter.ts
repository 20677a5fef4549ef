/**
 * Turns the selection options shared by list, watch and close into one predicate over endpoints.
 */
import type { Endpoint, Family, Protocol, TcpState } from "../model/endpoint.ts";
import { parseAddressFilter } from "../net/address.ts";
import { parsePortSpec } from "../net/ports.ts";
import { UsageError } from "../errors.ts";
import { globMatcher } from "../text/glob.ts";
import { parseStates } from "./state-names.ts";

export interface SelectionOptions {
  /** Include listening TCP and unconnected UDP endpoints. */
  all?: boolean;
  tcp?: boolean;
  udp?: boolean;
  ipv4?: boolean;
  ipv6?: boolean;
  /** A PID or a process name (glob with * and ?, case-insensitive). */
  process?: string | number;
  state?: readonly string[];
  port?: readonly string[];
  local?: readonly string[];
  remote?: readonly string[];
  hideUnowned?: boolean;
}

export interface Selection {
  protocols: Set<Protocol>;
  families: Set<Family>;
  matches(ep: Endpoint): boolean;
  /**
   * The same for an event's endpoint, where the event can tell more: a short connection known
   * only from its end (a destroy notice, its state changes lost or never seen) is in state CLOSE
   * yet was a connection, and the default selection of connections shows it.
   */
  matchesEvent(e: { endpoint: Endpoint; shortLived?: boolean }): boolean;
}

export function buildSelection(o: SelectionOptions): Selection {
  const protocols = new Set<Protocol>();
  if (o.tcp) protocols.add("tcp");
  if (o.udp) protocols.add("udp");
  if (protocols.size === 0) {
    protocols.add("tcp");
    // Connected UDP is rare and unconnected UDP is "listening": by default show TCP, as Tcpvcon.
    if (o.all) protocols.add("udp");
  }
  const families = new Set<Family>();
  if (o.ipv4) families.add(4);
  if (o.ipv6) families.add(6);
  if (families.size === 0) {
    families.add(4);
    families.add(6);
  }

  const tests: ((ep: Endpoint) => boolean)[] = [];
  const connectedOnly = !o.all && !(o.state && o.state.length > 0);
  if (o.state && o.state.length > 0) {
    const states: Set<TcpState> = parseStates(o.state);
    tests.push((ep) => ep.state !== null && states.has(ep.state));
  }
  // A repeated option is one more choice, as in its comma form (`--port 25 --port 80` is
  // `--port 25,80`); different options narrow each other.
  const ports = (o.port ?? []).map((spec) => parsePortSpec(String(spec)));
  if (ports.length > 0) tests.push((ep) => ports.some((m) => m.matches(ep.localPort) || m.matches(ep.remotePort)));
  const locals = (o.local ?? []).map((spec) => parseAddressFilter(String(spec)));
  if (locals.length > 0) tests.push((ep) => locals.some((m) => m.matches(ep.localAddress, ep.localPort)));
  const remotes = (o.remote ?? []).map((spec) => parseAddressFilter(String(spec)));
  if (remotes.length > 0) tests.push((ep) => remotes.some((m) => m.matches(ep.remoteAddress, ep.remotePort)));
  if (o.process !== undefined && o.process !== "") tests.push(processMatcher(String(o.process)));
  if (o.hideUnowned) tests.push((ep) => ep.process !== null);

  const chosen = (ep: Endpoint) => protocols.has(ep.protocol) && families.has(ep.family) && tests.every((t) => t(ep));
  return {
    protocols,
    families,
    matches: (ep) => (!connectedOnly || isConnected(ep)) && chosen(ep),
    matchesEvent: (e) => (!connectedOnly || isConnected(e.endpoint) || wasConnected(e)) && chosen(e.endpoint),
  };
}

/** A short connection told in state CLOSE (its last state unknown) that had a peer. */
function wasConnected(e: { endpoint: Endpoint; shortLived?: boolean }): boolean {
  return e.shortLived === true && e.endpoint.protocol === "tcp" && e.endpoint.state === "CLOSE" && e.endpoint.remotePort !== 0;
}

/** Connected: a TCP endpoint that is not listening or closed, or a UDP socket with a peer. */
export function isConnected(ep: Endpoint): boolean {
  if (ep.protocol === "udp") return ep.remotePort !== 0;
  return ep.state !== "LISTEN" && ep.state !== "CLOSE";
}

function processMatcher(query: string): (ep: Endpoint) => boolean {
  if (/^\d+$/.test(query)) {
    const pid = Number(query);
    if (!Number.isSafeInteger(pid) || pid <= 0) throw new UsageError(`bad PID '${query}'`);
    return (ep) => ep.pids.includes(pid);
  }
  if (query.length > 4096) throw new UsageError("process name is too long");
  const matches = globMatcher(query);
  return (ep) => {
    const p = ep.process;
    if (!p) return false;
    if (matches(p.name)) return true;
    const base = p.path ? p.path.slice(p.path.lastIndexOf("/") + 1) : null;
    return base !== null && matches(base);
  };
}
