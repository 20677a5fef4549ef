/**
 * Addresses for the rest of the program: canonical text, classification (loopback, private,
 * unspecified) and the `--local`/`--remote` filters. Parsing and formatting live in ip.ts and
 * CIDR blocks in cidr.ts; both are re-exported here so callers need one import.
 */

import type { Protocol } from "../model/endpoint.ts";
import { UsageError } from "../errors.ts";
import { parseCidr, type CidrMatcher } from "./cidr.ts";
import { effectiveIPv4, formatIP, parseIP, type ParsedIP } from "./ip.ts";
import { parsePortSpec, type PortMatcher } from "./ports.ts";

export {
  effectiveIPv4,
  formatIP,
  formatIPv4,
  formatIPv6,
  isIPv4MappedBytes,
  parseIP,
  type ParsedIP,
} from "./ip.ts";
export { parseCidr, type CidrMatcher } from "./cidr.ts";

/**
 * The canonical text of an address as `ss -n` would print it (`0:0::1` -> `::1`), keeping a
 * `%zone`; null when the text is not an address.
 */
export function canonicalAddress(text: string): string | null {
  const ip = parseIP(text);
  if (ip === null) return null;
  const zone = ip.zone === undefined ? "" : `%${ip.zone}`;
  return `${formatIP(ip)}${zone}`;
}

/** `address:port`, with IPv6 addresses in brackets (`[::1]:22`) so the port cannot be misread. */
export function formatHostPort(address: string, port: number | string): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** `0.0.0.0`, `::` or `::ffff:0.0.0.0`: a socket bound to every address. */
export function isUnspecified(address: string | ParsedIP): boolean {
  const ip = toParsed(address);
  if (ip === null) return false;
  const bytes = effectiveIPv4(ip) ?? ip.bytes;
  return bytes.every((byte) => byte === 0);
}

/** 127.0.0.0/8 (also IPv4-mapped) or `::1`. */
export function isLoopback(address: string | ParsedIP): boolean {
  const ip = toParsed(address);
  if (ip === null) return false;
  const v4 = effectiveIPv4(ip);
  if (v4 !== null) return v4[0] === 127;
  return ip.bytes.every((byte, i) => byte === (i === 15 ? 1 : 0));
}

/**
 * Not routable on the public internet: RFC 1918 (10/8, 172.16/12, 192.168/16), carrier-grade
 * NAT (100.64/10), link-local (169.254/16, fe80::/10), unique local (fc00::/7) and loopback.
 * IPv4-mapped addresses are judged by their IPv4 part.
 */
export function isPrivate(address: string | ParsedIP): boolean {
  const ip = toParsed(address);
  if (ip === null) return false;
  const v4 = effectiveIPv4(ip);
  if (v4 !== null) {
    const [a = 0, b = 0] = v4;
    return (
      a === 10 ||
      a === 127 ||
      (a === 172 && (b & 0xf0) === 16) ||
      (a === 192 && b === 168) ||
      (a === 100 && (b & 0xc0) === 64) ||
      (a === 169 && b === 254)
    );
  }
  const [first = 0, second = 0] = ip.bytes;
  return (first & 0xfe) === 0xfc || (first === 0xfe && (second & 0xc0) === 0x80) || isLoopback(ip);
}

/** A `--local`/`--remote` filter: an address or block, a port specification, or both. */
export interface AddressFilter {
  matches(address: string, port: number): boolean;
  /** What the filter selects, for headers and messages: `10.0.0.0/8 port 25`. */
  describe(): string;
}

const FILTER_FORMS =
  "expected an address, CIDR, port or address:port, e.g. 10.0.0.5, 10.0.0.0/8, 25, :smtp, " +
  "1000-2000, 192.168.1.5:443, [::1]:22 or [fd00::/8]";

/**
 * Parses the value of `--local`/`--remote`. Accepted forms:
 * an address (`10.0.0.5`, `::1`, `fe80::1%eth0`), a CIDR (`10.0.0.0/8`, `fd00::/8`), a port
 * specification alone (`25`, `:25`, `:smtp`, `1000-2000`, `:80,443`), or both joined by a colon
 * (`10.0.0.5:25`, `10.0.0.0/8:1000-2000`, `*:smtp`). IPv6 with a port needs brackets
 * (`[::1]:22`, `[2001:db8::/32]:443`); brackets alone (`[::1]`) are fine too. Address parts follow
 * {@link parseCidr}; port parts follow {@link parsePortSpec}, with service names looked up for
 * `protocol` or, without it, for both TCP and UDP.
 *
 * @throws UsageError that names the text and shows the expected forms.
 */
export function parseAddressFilter(text: string, protocol?: Protocol): AddressFilter {
  const trimmed = text.trim();
  if (trimmed === "") throw new UsageError(`empty address filter: ${FILTER_FORMS}`);

  if (trimmed.startsWith("[")) {
    const close = trimmed.indexOf("]");
    if (close === -1) throw invalid(text, "a \"[\" without its \"]\"");
    const block = blockOrThrow(text, trimmed.slice(1, close));
    const rest = trimmed.slice(close + 1);
    if (rest === "") return makeFilter(block, null);
    if (!rest.startsWith(":") || rest.length === 1) {
      throw invalid(text, `after "]" comes ":" and a port, not "${rest}"`);
    }
    return makeFilter(block, parsePortSpec(rest.slice(1), protocol));
  }

  if (parseIP(trimmed) !== null) return makeFilter(parseCidr(trimmed), null);

  const slash = trimmed.indexOf("/");
  if (slash !== -1 && !trimmed.slice(slash + 1).includes(":")) {
    return makeFilter(parseCidr(trimmed), null);
  }

  if (trimmed.startsWith(":")) {
    const portText = trimmed.slice(1);
    if (portText.includes(":")) {
      throw invalid(text, "an IPv6 address with a port is written in brackets, e.g. [::]:22");
    }
    return makeFilter(null, parsePortSpec(portText, protocol));
  }

  const colon = trimmed.lastIndexOf(":");
  if (colon === -1) {
    if (/^[0-9.]+$/.test(trimmed) && trimmed.includes(".")) {
      throw invalid(text, "not a valid IPv4 address");
    }
    // Numbers keep the port parser's precise message; an unknown word gets the list of forms.
    if (/^[0-9,\- ]+$/.test(trimmed)) return makeFilter(null, parsePortSpec(trimmed, protocol));
    try {
      return makeFilter(null, parsePortSpec(trimmed, protocol));
    } catch (error) {
      if (error instanceof UsageError) {
        throw invalid(text, `"${trimmed}" is neither an address nor a port or service name`);
      }
      throw error;
    }
  }

  const addressText = trimmed.slice(0, colon);
  const portText = trimmed.slice(colon + 1);
  let block: CidrMatcher | null = null;
  if (addressText !== "*") {
    if (addressText.includes(":")) {
      throw invalid(text, "an IPv6 address with a port is written in brackets, e.g. [::1]:443");
    }
    block = blockOrThrow(text, addressText);
  }
  if (portText === "") throw invalid(text, "a port is missing after the colon");
  return makeFilter(block, parsePortSpec(portText, protocol));
}

function makeFilter(block: CidrMatcher | null, ports: PortMatcher | null): AddressFilter {
  const addressPart = block === null ? null : block.toString();
  const portPart = ports === null ? null : ports.describe();
  const description =
    addressPart !== null && portPart !== null
      ? `${addressPart} port ${portPart}`
      : addressPart !== null
        ? addressPart
        : portPart !== null && portPart !== "*"
          ? `port ${portPart}`
          : "any address and port";
  return {
    matches: (address, port) =>
      (block === null || block.matches(address)) && (ports === null || ports.matches(port)),
    describe: () => description,
  };
}

function blockOrThrow(filterText: string, addressText: string): CidrMatcher {
  const slash = addressText.indexOf("/");
  const ipText = slash === -1 ? addressText : addressText.slice(0, slash);
  if (parseIP(ipText) === null) throw invalid(filterText, `"${ipText}" is not an IP address`);
  // parseCidr's own message names a bad prefix length precisely.
  return parseCidr(addressText);
}

function invalid(text: string, reason: string): UsageError {
  return new UsageError(`invalid address filter "${text}": ${reason}; ${FILTER_FORMS}`);
}

function toParsed(address: string | ParsedIP): ParsedIP | null {
  return typeof address === "string" ? parseIP(address) : address;
}
