/**
 * Turns the selection options shared by list, watch and close into one predicate over endpoints.
 */
import type { Endpoint, Family, Protocol, TcpState } from "../model/endpoint.ts";
import { parseAddressFilter } from "../net/address.ts";
import { parsePortSpec } from "../net/ports.ts";
import { UsageError } from "../errors.ts";
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
  if (!o.all && !(o.state && o.state.length > 0)) tests.push(isConnected);
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

  return {
    protocols,
    families,
    matches: (ep) => protocols.has(ep.protocol) && families.has(ep.family) && tests.every((t) => t(ep)),
  };
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
  const re = globToRegExp(query);
  return (ep) => {
    const p = ep.process;
    if (!p) return false;
    if (re.test(p.name)) return true;
    const base = p.path ? p.path.slice(p.path.lastIndexOf("/") + 1) : null;
    return base !== null && re.test(base);
  };
}

/**
 * A glob (`*` any run, `?` one character; case-insensitive, whole text) as a regular expression
 * that cannot backtrack into a hang. The plain translation `^.*a.*a.*a…$` tries every way of
 * sharing a name out between the stars, which for `*a*a*a*a*a*b` and a long name takes minutes.
 * Here each piece between two stars is taken at its first occurrence and that choice is never
 * revisited (a lookahead captures the shortest run that ends with the piece, a back-reference
 * consumes it); for a glob the first occurrence is always as good as any later one.
 */
export function globToRegExp(glob: string): RegExp {
  const piece = (text: string) => {
    let src = "";
    for (const ch of text) src += ch === "?" ? "." : ch.replace(/[.+^${}()|[\]\\]/g, "\\$&");
    return src;
  };
  const pieces = glob.split("*");
  if (pieces.length === 1) return new RegExp(`^${piece(glob)}$`, "is");
  const middle = pieces.slice(1, -1).filter((p) => p !== "");
  let src = `^${piece(pieces[0]!)}`;
  middle.forEach((p, i) => {
    src += `(?=(.*?${piece(p)}))\\${i + 1}`;
  });
  return new RegExp(`${src}.*${piece(pieces[pieces.length - 1]!)}$`, "is");
}
