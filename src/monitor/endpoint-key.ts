/**
 * The identity of an endpoint across refreshes. The kernel's socket cookie names one socket for
 * its whole life, TIME_WAIT included, so it is used where the engine gives it; otherwise (the
 * /proc fallback, Windows tables) the address pair, plus the inode for unconnected sockets,
 * several of which can share a local address (SO_REUSEPORT).
 */
import type { Endpoint } from "../model/endpoint.ts";

export function endpointKey(ep: Endpoint): string {
  // A cookie is all digits and a pair key always has "|": the two kinds cannot collide.
  if (ep.cookie !== null) return ep.cookie;
  const base = `${ep.protocol}|${ep.localAddress}|${ep.localPort}|${ep.remoteAddress}|${ep.remotePort}`;
  // Unconnected sockets can share an address (SO_REUSEPORT): the inode tells them apart, and
  // where the OS gives none (Windows) the owning process does.
  return ep.remotePort === 0 ? `${base}|${ep.inode || `p${ep.pids[0] ?? 0}`}` : base;
}

/**
 * The address pair of a connection, whatever socket object carries it now: a cookieless
 * announcement, the dump's socket with its cookie and a TIME_WAIT successor all share it.
 */
export function pairKey(ep: Endpoint): string {
  // With every namespace listed, two of them can hold the same four-tuple.
  return `${ep.protocol}|${ep.localAddress}|${ep.localPort}|${ep.remoteAddress}|${ep.remotePort}|${ep.namespace?.inode ?? ""}`;
}
