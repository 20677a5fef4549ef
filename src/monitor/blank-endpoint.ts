/**
 * An endpoint with no address and no port on either side: what a kernel destroy notice carries
 * for a socket that was never bound (created and closed unused) or was already unhashed (a
 * listener going away). No table ever showed such a socket and nothing could look for it, so an
 * event about it tells nothing but "tcp 0.0.0.0:0 -> 0.0.0.0:*".
 */
import type { Endpoint } from "../model/endpoint.ts";

const UNSPECIFIED = new Set(["0.0.0.0", "::", "*", ""]);

export function isBlankEndpoint(ep: Endpoint): boolean {
  return ep.localPort === 0 && ep.remotePort === 0 && UNSPECIFIED.has(ep.localAddress) && UNSPECIFIED.has(ep.remoteAddress);
}
