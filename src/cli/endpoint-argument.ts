/** Parses `ADDRESS:PORT` as typed on the command line (brackets for IPv6). */
import { canonicalAddress } from "../net/address.ts";
import { UsageError } from "../errors.ts";

export interface EndpointArgument {
  address: string;
  port: number;
}

const EXAMPLE = "expected ADDRESS:PORT, e.g. 10.0.0.5:43122 or [2001:db8::1]:443";

export function parseEndpointArgument(text: string): EndpointArgument {
  let host: string;
  let portText: string;
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2]!;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon <= 0 || text.indexOf(":") !== colon) throw new UsageError(`bad endpoint '${text}': ${EXAMPLE}`);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
  }
  const address = canonicalAddress(host);
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (address === null || !(port >= 0 && port <= 65535)) throw new UsageError(`bad endpoint '${text}': ${EXAMPLE}`);
  return { address, port };
}

/** The same address, also across the IPv4 / IPv4-mapped IPv6 forms. */
export function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  const strip = (x: string) => (x.startsWith("::ffff:") && x.includes(".") ? x.slice(7) : x);
  return strip(a) === strip(b);
}
