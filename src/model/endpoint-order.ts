/** A stable, readable order for endpoint listings: protocol, family, local port, addresses. */
import type { Endpoint } from "./endpoint.ts";

export function compareEndpoints(a: Endpoint, b: Endpoint): number {
  return (
    cmp(a.protocol, b.protocol) ||
    a.family - b.family ||
    a.localPort - b.localPort ||
    cmp(a.localAddress, b.localAddress) ||
    cmp(a.remoteAddress, b.remoteAddress) ||
    a.remotePort - b.remotePort ||
    a.inode - b.inode
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
