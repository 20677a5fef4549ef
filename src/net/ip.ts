/**
 * IP addresses as text: strict parsing of every textual form and formatting to the canonical
 * form that `ss -n` prints (glibc's inet_ntop, which follows RFC 5952).
 */

import type { Family } from "../model/endpoint.ts";

/** An address decoded from text. `bytes` is 4 bytes for IPv4, 16 for IPv6, network order. */
export interface ParsedIP {
  family: Family;
  bytes: Uint8Array;
  /** The `%zone` suffix of a scoped IPv6 address, without the `%`. */
  zone?: string;
}

const IPV4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] as const;

/** Formats four bytes as a dotted quad. */
export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  checkLength(bytes, offset, 4);
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/**
 * Formats sixteen bytes as RFC 5952 text, exactly as glibc's inet_ntop does (and so as `ss -n`
 * prints): lowercase hex without leading zeros, the first longest run of two or more zero groups
 * written as `::`, and a dotted IPv4 tail for IPv4-mapped (`::ffff:a.b.c.d`) and the old
 * IPv4-compatible (`::a.b.c.d`) addresses.
 */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  checkLength(bytes, offset, 16);
  const words: number[] = [];
  for (let i = 0; i < 8; i++) {
    words.push(((bytes[offset + 2 * i] ?? 0) << 8) | (bytes[offset + 2 * i + 1] ?? 0));
  }

  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < 8 && words[end] === 0) end++;
    // Strictly longer only, so the first of equal runs wins (RFC 5952 section 4.2.3).
    if (end - i > bestLength) {
      bestStart = i;
      bestLength = end - i;
    }
    i = end;
  }
  // A single zero group is never compressed (RFC 5952 section 4.2.2).
  if (bestLength < 2) bestStart = -1;

  // glibc's rule for a dotted tail: six leading zero groups, or five followed by ffff.
  const dottedTail =
    bestStart === 0 && (bestLength === 6 || (bestLength === 5 && words[5] === 0xffff));

  let text = "";
  const groups = dottedTail ? 6 : 8;
  for (let i = 0; i < groups; i++) {
    if (i === bestStart) {
      text += "::";
      i += bestLength - 1;
      continue;
    }
    if (text !== "" && !text.endsWith(":")) text += ":";
    text += (words[i] ?? 0).toString(16);
  }
  if (dottedTail) {
    if (!text.endsWith(":")) text += ":";
    text += formatIPv4(bytes, offset + 12);
  }
  return text;
}

/** Formats a parsed address (without its zone) in canonical form. */
export function formatIP(ip: ParsedIP): string {
  return ip.family === 4 ? formatIPv4(ip.bytes) : formatIPv6(ip.bytes);
}

/**
 * Parses an IPv4 dotted quad or any textual IPv6 form (compressed, embedded IPv4, `%zone`,
 * optionally in brackets). IPv4 is strict: exactly four decimal parts of 0-255 with no leading
 * zeros, because inet_aton would read `010` as octal and a user almost never means that.
 * Returns null for anything else.
 */
export function parseIP(text: string): ParsedIP | null {
  if (text.startsWith("[")) {
    if (!text.endsWith("]")) return null;
    return parseIPv6WithZone(text.slice(1, -1));
  }
  if (text.includes(":")) return parseIPv6WithZone(text);
  const bytes = parseIPv4Bytes(text);
  return bytes === null ? null : { family: 4, bytes };
}

/** Whether sixteen bytes are an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`). */
export function isIPv4MappedBytes(bytes: Uint8Array): boolean {
  if (bytes.length !== 16) return false;
  for (let i = 0; i < 12; i++) if (bytes[i] !== IPV4_MAPPED_PREFIX[i]) return false;
  return true;
}

/**
 * The IPv4 address an address stands for: itself when IPv4, the embedded address when
 * IPv4-mapped IPv6, otherwise null. Dual-stack sockets show IPv4 peers in mapped form, and
 * users think of those as IPv4.
 */
export function effectiveIPv4(ip: ParsedIP): Uint8Array | null {
  if (ip.family === 4) return ip.bytes;
  return isIPv4MappedBytes(ip.bytes) ? ip.bytes.subarray(12, 16) : null;
}

function checkLength(bytes: Uint8Array, offset: number, length: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + length > bytes.length) {
    throw new RangeError(
      `need ${length} address bytes at offset ${offset}, buffer has ${bytes.length}`,
    );
  }
}

const DECIMAL_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;

function parseIPv4Bytes(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i] ?? "";
    if (!DECIMAL_OCTET.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    bytes[i] = value;
  }
  return bytes;
}

// Zones are interface names or numbers; anything with spaces, brackets or another % is a typo.
const ZONE = /^[A-Za-z0-9._\-]+$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;

function parseIPv6WithZone(text: string): ParsedIP | null {
  const percent = text.indexOf("%");
  let zone: string | undefined;
  let body = text;
  if (percent !== -1) {
    zone = text.slice(percent + 1);
    body = text.slice(0, percent);
    if (!ZONE.test(zone)) return null;
  }
  const bytes = parseIPv6Bytes(body);
  if (bytes === null) return null;
  return zone === undefined ? { family: 6, bytes } : { family: 6, bytes, zone };
}

function parseIPv6Bytes(text: string): Uint8Array | null {
  const gap = text.indexOf("::");
  if (gap !== -1 && text.indexOf("::", gap + 1) !== -1) return null;

  const head = gap === -1 ? text : text.slice(0, gap);
  const tail = gap === -1 ? "" : text.slice(gap + 2);
  // A dotted quad may only end the address: the end of `head` is the end only with no "::".
  const headWords = parseGroups(head, gap === -1);
  const tailWords = gap === -1 ? [] : parseGroups(tail, true);
  if (headWords === null || tailWords === null) return null;

  const explicit = headWords.length + tailWords.length;
  if (gap === -1 ? explicit !== 8 : explicit > 7) return null;

  const words = [...headWords, ...new Array<number>(8 - explicit).fill(0), ...tailWords];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const word = words[i] ?? 0;
    bytes[2 * i] = word >> 8;
    bytes[2 * i + 1] = word & 0xff;
  }
  return bytes;
}

/** Colon-separated hex groups; the last may be a dotted quad (two groups) when allowed. */
function parseGroups(text: string, lastMayBeDotted: boolean): number[] | null {
  if (text === "") return [];
  const groups = text.split(":");
  const words: number[] = [];
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i] ?? "";
    if (HEX_GROUP.test(group)) {
      words.push(parseInt(group, 16));
      continue;
    }
    if (lastMayBeDotted && i === groups.length - 1) {
      const v4 = parseIPv4Bytes(group);
      if (v4 === null) return null;
      words.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      continue;
    }
    return null;
  }
  return words;
}
