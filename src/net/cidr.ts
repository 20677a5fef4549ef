/**
 * CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`) as matchers over address text.
 */

import type { Family } from "../model/endpoint.ts";
import { UsageError } from "../errors.ts";
import { effectiveIPv4, formatIP, parseIP, type ParsedIP } from "./ip.ts";

/** A parsed CIDR block that tests addresses written as text. */
export interface CidrMatcher {
  readonly family: Family;
  readonly prefixLength: number;
  /** The network address with host bits cleared, in canonical form. */
  readonly network: string;
  /** True when `address` lies in the block; unparseable text never matches. */
  matches(address: string): boolean;
  /** The same test on an already parsed address. */
  contains(ip: ParsedIP): boolean;
  /** Canonical text: `10.0.0.0/8`, or just the address when the block is a single host. */
  toString(): string;
}

/**
 * Parses `address/prefix`; a bare address is a single-host block (/32 or /128). Host bits set
 * in the address are cleared (`192.168.1.7/24` is `192.168.1.0/24`), the way people usually
 * mean it. An IPv4 block also matches IPv4-mapped IPv6 addresses (`::ffff:10.0.0.5` is in
 * `10.0.0.0/8`), since dual-stack sockets show IPv4 peers that way. An IPv6 block matches only
 * IPv6 text, so `::/0` means "any IPv6 address". A `%zone` in the block must equal the zone of
 * an address that has one; addresses without a zone are compared on their bytes alone.
 *
 * @throws UsageError naming the offending text when the address or prefix length is bad.
 */
export function parseCidr(text: string): CidrMatcher {
  const trimmed = text.trim();
  const slash = trimmed.indexOf("/");
  const addressText = slash === -1 ? trimmed : trimmed.slice(0, slash);
  const ip = parseIP(addressText);
  if (ip === null) {
    throw new UsageError(
      `invalid CIDR "${text}": "${addressText}" is not an IPv4 or IPv6 address ` +
        "(e.g. 10.0.0.0/8 or fd00::/8)",
    );
  }
  const maxPrefix = ip.family === 4 ? 32 : 128;
  let prefixLength = maxPrefix;
  if (slash !== -1) {
    const prefixText = trimmed.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(prefixText) || Number(prefixText) > maxPrefix) {
      throw new UsageError(
        `invalid CIDR "${text}": the prefix length must be a number from 0 to ${maxPrefix} ` +
          `for IPv${ip.family}`,
      );
    }
    prefixLength = Number(prefixText);
  }
  return new Block(ip, prefixLength, slash === -1);
}

class Block implements CidrMatcher {
  readonly family: Family;
  readonly network: string;
  private readonly bytes: Uint8Array;
  private readonly zone: string | undefined;

  constructor(
    ip: ParsedIP,
    readonly prefixLength: number,
    private readonly singleHost: boolean,
  ) {
    this.family = ip.family;
    this.zone = ip.zone;
    this.bytes = maskBytes(ip.bytes, prefixLength);
    this.network = formatIP({ family: ip.family, bytes: this.bytes });
  }

  matches(address: string): boolean {
    const ip = parseIP(address);
    return ip !== null && this.contains(ip);
  }

  contains(ip: ParsedIP): boolean {
    if (this.zone !== undefined && ip.zone !== undefined && ip.zone !== this.zone) return false;
    const candidate = this.family === 4 ? effectiveIPv4(ip) : ip.family === 6 ? ip.bytes : null;
    return candidate !== null && prefixEqual(candidate, this.bytes, this.prefixLength);
  }

  toString(): string {
    const zone = this.zone === undefined ? "" : `%${this.zone}`;
    const host = `${this.network}${zone}`;
    return this.singleHost ? host : `${host}/${this.prefixLength}`;
  }
}

function maskBytes(bytes: Uint8Array, prefixLength: number): Uint8Array {
  const masked = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, prefixLength - 8 * i));
    masked[i] = (bytes[i] ?? 0) & (0xff << (8 - bits));
  }
  return masked;
}

function prefixEqual(a: Uint8Array, b: Uint8Array, prefixLength: number): boolean {
  const whole = prefixLength >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = prefixLength & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((a[whole] ?? 0) & mask) === ((b[whole] ?? 0) & mask);
}
