/**
 * An endpoint with no address and no port on either side: what a kernel destroy notice can carry
 * for a socket that was already unhashed (a listener going away). No table shows such a socket,
 * so a row or a line for it tells nothing but "tcp 0.0.0.0:0 -> 0.0.0.0:*".
 */
import type { Endpoint } from "../engine/types.ts";

const UNSPECIFIED = new Set(["0.0.0.0", "::", "*", ""]);

export function isBlankEndpoint(ep: Endpoint): boolean {
  return ep.localPort === 0 && ep.remotePort === 0 && UNSPECIFIED.has(ep.localAddress) && UNSPECIFIED.has(ep.remoteAddress);
}
