/**
 * Pure encoder/decoder for NETLINK_SOCK_DIAG inet messages. No I/O: it turns requests into bytes
 * and reply bytes into records, so it can be tested from recorded dumps.
 *
 * Layouts follow <linux/netlink.h>, <linux/inet_diag.h> and <linux/tcp.h>. Netlink fields are in
 * host byte order (little-endian on every target this project builds for); ports and addresses in
 * inet_diag_sockid are in network byte order.
 */
import { DecodeError } from "../../errors.ts";
import { formatIPv4, formatIPv6 } from "../../net/address.ts";
import { TCP_STATES, type TcpState } from "../../model/endpoint.ts";

// <linux/netlink.h>
export const NLMSG_HDRLEN = 16;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;

// <linux/sock_diag.h>
export const SOCK_DIAG_BY_FAMILY = 20;
export const SOCK_DESTROY = 21;

export const AF_INET = 2;
export const AF_INET6 = 10;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

// <linux/inet_diag.h>
export const INET_DIAG_SOCKID_LEN = 48;
export const INET_DIAG_REQ_V2_LEN = 8 + INET_DIAG_SOCKID_LEN; // 56
export const INET_DIAG_MSG_LEN = 4 + INET_DIAG_SOCKID_LEN + 20; // 72
export const INET_DIAG_INFO = 2;
export const INET_DIAG_SHUTDOWN = 8;
export const INET_DIAG_SKV6ONLY = 11;

// Offsets inside struct inet_diag_sockid.
const SOCKID_SPORT = 0;
const SOCKID_DPORT = 2;
const SOCKID_SRC = 4;
const SOCKID_DST = 20;
const SOCKID_IF = 36;
const SOCKID_COOKIE = 40;

// Offsets inside struct inet_diag_msg.
const MSG_FAMILY = 0;
const MSG_STATE = 1;
const MSG_ID = 4;
const MSG_RQUEUE = 56;
const MSG_WQUEUE = 60;
const MSG_UID = 64;
const MSG_INODE = 68;

// Offsets inside struct tcp_info; the struct grew over kernel versions, so each field is read only
// when the attribute is long enough to hold it.
const TCPI_RTT = 68;
const TCPI_BYTES_ACKED = 120;
const TCPI_BYTES_RECEIVED = 128;
const TCPI_SEGS_OUT = 136;
const TCPI_SEGS_IN = 140;
const TCPI_BYTES_SENT = 200;

/**
 * Kernel TCP state numbers (include/net/tcp_states.h) to names: TCP_STATES lists them in the
 * kernel's order from 1. TCP_NEW_SYN_RECV (12) is a request socket, shown as SYN_RECV as ss and
 * netstat do.
 */
export const KERNEL_TCP_STATES: readonly (TcpState | undefined)[] = [undefined, ...TCP_STATES, "SYN_RECV"];

/** A TCP state's kernel number. */
export function kernelTcpState(state: TcpState): number {
  return KERNEL_TCP_STATES.indexOf(state);
}

/** All TCP states as a bitmask for the request (bit n = state n). */
export const ALL_STATES_MASK = 0xffffffff;

/** A socket id as sent to the kernel (SOCK_DESTROY, single-socket queries). */
export interface DiagSocketId {
  sourcePort: number;
  destinationPort: number;
  /** 16 bytes; IPv4 uses the first 4. */
  source: Uint8Array;
  destination: Uint8Array;
  interfaceIndex: number;
  /** The two 32-bit halves of the socket cookie, as the kernel gave them. */
  cookie: [number, number];
}

/**
 * One socket from a dump, flat so that decoding tens of thousands of them makes one object each.
 * Counter fields are null when the reply carried no tcp_info (UDP, the /proc fallback) or an
 * older kernel's shorter tcp_info lacks them.
 */
export interface DiagRecord {
  family: number;
  state: number;
  sourcePort: number;
  destinationPort: number;
  /** Canonical address text. */
  source: string;
  destination: string;
  interfaceIndex: number;
  cookieLow: number;
  cookieHigh: number;
  receiveQueue: number;
  sendQueue: number;
  uid: number;
  inode: number;
  hasTcpInfo: boolean;
  rttMicros: number | null;
  bytesAcked: number | null;
  bytesReceived: number | null;
  bytesSent: number | null;
  segsOut: number | null;
  segsIn: number | null;
  v6Only: boolean | null;
}

export interface DiagRequest {
  family: number;
  protocol: number;
  /** Bitmask of TCP states to dump. */
  states: number;
  /** Bitmask of INET_DIAG_* extensions, bit (n-1) for attribute n. */
  extensions: number;
  sequence: number;
  flags?: number;
  type?: number;
  id?: DiagSocketId;
}

/** Encodes an inet_diag_req_v2 inside a netlink header. */
export function encodeDiagRequest(req: DiagRequest): Buffer {
  const total = NLMSG_HDRLEN + INET_DIAG_REQ_V2_LEN;
  const buf = Buffer.alloc(total);
  buf.writeUInt32LE(total, 0);
  buf.writeUInt16LE(req.type ?? SOCK_DIAG_BY_FAMILY, 4);
  buf.writeUInt16LE(req.flags ?? NLM_F_REQUEST | NLM_F_DUMP, 6);
  buf.writeUInt32LE(req.sequence >>> 0, 8);
  buf.writeUInt32LE(0, 12);
  const o = NLMSG_HDRLEN;
  buf.writeUInt8(req.family, o);
  buf.writeUInt8(req.protocol, o + 1);
  buf.writeUInt8(req.extensions & 0xff, o + 2);
  buf.writeUInt8(0, o + 3);
  buf.writeUInt32LE(req.states >>> 0, o + 4);
  if (req.id) encodeSocketId(buf, o + 8, req.id);
  return buf;
}

function encodeSocketId(buf: Buffer, o: number, id: DiagSocketId): void {
  buf.writeUInt16BE(id.sourcePort, o + SOCKID_SPORT);
  buf.writeUInt16BE(id.destinationPort, o + SOCKID_DPORT);
  buf.set(id.source.subarray(0, 16), o + SOCKID_SRC);
  buf.set(id.destination.subarray(0, 16), o + SOCKID_DST);
  buf.writeUInt32LE(id.interfaceIndex >>> 0, o + SOCKID_IF);
  buf.writeUInt32LE(id.cookie[0] >>> 0, o + SOCKID_COOKIE);
  buf.writeUInt32LE(id.cookie[1] >>> 0, o + SOCKID_COOKIE + 4);
}

export type NetlinkMessage =
  | { kind: "diag"; sequence: number; flags: number; record: DiagRecord }
  | { kind: "done"; sequence: number; flags: number }
  | { kind: "error"; sequence: number; flags: number; errno: number }
  | { kind: "other"; sequence: number; flags: number; type: number };

/**
 * Receives each message of a datagram as it is decoded. The record handed to `diag` is one
 * scratch object reused for every message (a dump of 100k sockets then allocates nothing per
 * socket here): copy what you keep.
 */
export interface MessageVisitor {
  diag(record: DiagRecord, sequence: number, flags: number): void;
  done(sequence: number, flags: number): void;
  error(errno: number, sequence: number, flags: number): void;
  other?(type: number, sequence: number, flags: number): void;
}

/**
 * Decodes every netlink message in one datagram, handing each to the visitor. A message whose
 * header claims more bytes than arrived, or a diag payload shorter than inet_diag_msg, is a
 * DecodeError naming both sizes.
 */
export function visitMessages(buf: Uint8Array, visitor: MessageVisitor, expectDiagType = SOCK_DIAG_BY_FAMILY): void {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.byteLength) {
    const len = view.getUint32(off, true);
    const type = view.getUint16(off + 4, true);
    const flags = view.getUint16(off + 6, true);
    const sequence = view.getUint32(off + 8, true);
    if (len < NLMSG_HDRLEN) {
      throw new DecodeError(`netlink message at offset ${off} claims length ${len}, below the header's ${NLMSG_HDRLEN}`);
    }
    if (off + len > buf.byteLength) {
      throw new DecodeError(
        `netlink message at offset ${off} is truncated: ${buf.byteLength - off} bytes came, ${len} were wanted`,
      );
    }
    const body = off + NLMSG_HDRLEN;
    if (type === NLMSG_DONE) {
      visitor.done(sequence, flags);
    } else if (type === NLMSG_ERROR) {
      if (len < NLMSG_HDRLEN + 4) {
        throw new DecodeError(`netlink error message is ${len} bytes, at least ${NLMSG_HDRLEN + 4} were wanted`);
      }
      // nlmsgerr.error is a negative errno, 0 for an acknowledgement.
      visitor.error(-view.getInt32(body, true), sequence, flags);
    } else if (type === expectDiagType) {
      visitor.diag(decodeDiagMsg(view, buf, body, len - NLMSG_HDRLEN), sequence, flags);
    } else {
      visitor.other?.(type, sequence, flags);
    }
    off += align4(len);
  }
  if (off < buf.byteLength) {
    throw new DecodeError(
      `netlink datagram has ${buf.byteLength - off} trailing bytes, fewer than a ${NLMSG_HDRLEN}-byte header`,
    );
  }
}

/** Every message of a datagram as a list (convenient for small replies and tests). */
export function decodeMessages(buf: Uint8Array, expectDiagType = SOCK_DIAG_BY_FAMILY): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  visitMessages(
    buf,
    {
      diag: (record, sequence, flags) => out.push({ kind: "diag", sequence, flags, record: { ...record } }),
      done: (sequence, flags) => out.push({ kind: "done", sequence, flags }),
      error: (errno, sequence, flags) => out.push({ kind: "error", sequence, flags, errno }),
      other: (type, sequence, flags) => out.push({ kind: "other", sequence, flags, type }),
    },
    expectDiagType,
  );
  return out;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** An empty record, e.g. to fill from another source. */
export function emptyDiagRecord(): DiagRecord {
  return {
    family: 0, state: 0, sourcePort: 0, destinationPort: 0, source: "", destination: "", interfaceIndex: 0,
    cookieLow: 0, cookieHigh: 0, receiveQueue: 0, sendQueue: 0, uid: 0, inode: 0, hasTcpInfo: false,
    rttMicros: null, bytesAcked: null, bytesReceived: null, bytesSent: null, segsOut: null, segsIn: null, v6Only: null,
  };
}

const scratch: DiagRecord = emptyDiagRecord();

function decodeDiagMsg(view: DataView, bytes: Uint8Array, o: number, len: number): DiagRecord {
  if (len < INET_DIAG_MSG_LEN) {
    throw new DecodeError(`inet_diag_msg is ${len} bytes, ${INET_DIAG_MSG_LEN} were wanted`);
  }
  const family = view.getUint8(o + MSG_FAMILY);
  const idOff = o + MSG_ID;
  const record = scratch;
  record.family = family;
  record.state = view.getUint8(o + MSG_STATE);
  record.sourcePort = view.getUint16(idOff + SOCKID_SPORT, false);
  record.destinationPort = view.getUint16(idOff + SOCKID_DPORT, false);
  record.source = addressText(view, bytes, idOff + SOCKID_SRC, family);
  record.destination = addressText(view, bytes, idOff + SOCKID_DST, family);
  record.interfaceIndex = view.getUint32(idOff + SOCKID_IF, true);
  record.cookieLow = view.getUint32(idOff + SOCKID_COOKIE, true);
  record.cookieHigh = view.getUint32(idOff + SOCKID_COOKIE + 4, true);
  record.receiveQueue = view.getUint32(o + MSG_RQUEUE, true);
  record.sendQueue = view.getUint32(o + MSG_WQUEUE, true);
  record.uid = view.getUint32(o + MSG_UID, true);
  record.inode = view.getUint32(o + MSG_INODE, true);
  record.hasTcpInfo = false;
  record.rttMicros = null;
  record.bytesAcked = null;
  record.bytesReceived = null;
  record.bytesSent = null;
  record.segsOut = null;
  record.segsIn = null;
  record.v6Only = null;
  // Attributes (struct rtattr: u16 len, u16 type, payload, 4-aligned) follow the fixed part.
  let a = o + INET_DIAG_MSG_LEN;
  const end = o + len;
  while (a + 4 <= end) {
    const alen = view.getUint16(a, true);
    const atype = view.getUint16(a + 2, true) & 0x3fff; // strip NLA_F_NESTED / NLA_F_NET_BYTEORDER
    if (alen < 4 || a + alen > end) {
      throw new DecodeError(`socket attribute ${atype} claims ${alen} bytes, ${end - a} remain in the message`);
    }
    const payload = a + 4;
    const plen = alen - 4;
    if (atype === INET_DIAG_INFO) readTcpInfo(record, view, payload, plen);
    else if (atype === INET_DIAG_SKV6ONLY && plen >= 1) record.v6Only = view.getUint8(payload) !== 0;
    a += align4(alen);
  }
  return record;
}

function u32At(view: DataView, base: number, len: number, field: number): number | null {
  return field + 4 <= len ? view.getUint32(base + field, true) : null;
}

function u64At(view: DataView, base: number, len: number, field: number): number | null {
  // Two halves instead of a BigInt: no allocation, and byte counters stay below 2^53.
  return field + 8 <= len ? view.getUint32(base + field + 4, true) * 0x100000000 + view.getUint32(base + field, true) : null;
}

/** Copies the tcp_info fields sockwarden uses into the record. */
export function readTcpInfo(record: DiagRecord, view: DataView, base: number, len: number): void {
  record.hasTcpInfo = true;
  record.rttMicros = u32At(view, base, len, TCPI_RTT);
  record.bytesAcked = u64At(view, base, len, TCPI_BYTES_ACKED);
  record.bytesReceived = u64At(view, base, len, TCPI_BYTES_RECEIVED);
  record.bytesSent = u64At(view, base, len, TCPI_BYTES_SENT);
  record.segsOut = u32At(view, base, len, TCPI_SEGS_OUT);
  record.segsIn = u32At(view, base, len, TCPI_SEGS_IN);
}

/** The cookie as one decimal string (low half first in memory, as the kernel stores a u64). */
export function cookieString(low: number, high: number): string {
  // Cookies are a counter and stay below 2^53 in practice; exact either way.
  if (high < 0x200000) return String(high * 0x100000000 + low);
  return ((BigInt(high) << 32n) | BigInt(low)).toString();
}

/**
 * Address text with interning: a dump of thousands of sockets repeats a handful of addresses,
 * and sharing one string per address keeps a large snapshot small.
 */
const v4Text = new Map<number, string>();
const v6Text = new Map<string, string>();
const INTERN_LIMIT = 65_536;

function addressText(view: DataView, bytes: Uint8Array, off: number, family: number): string {
  if (family !== AF_INET6) return interned(v4Text, view.getUint32(off, false), bytes, off, formatIPv4);
  const w0 = view.getUint32(off, false);
  const w1 = view.getUint32(off + 4, false);
  const w2 = view.getUint32(off + 8, false);
  const w3 = view.getUint32(off + 12, false);
  return interned(v6Text, `${w0},${w1},${w2},${w3}`, bytes, off, formatIPv6);
}

function interned<K>(cache: Map<K, string>, key: K, bytes: Uint8Array, off: number, format: (bytes: Uint8Array, off: number) => string): string {
  let text = cache.get(key);
  if (text === undefined) {
    text = format(bytes, off);
    if (cache.size >= INTERN_LIMIT) cache.clear();
    cache.set(key, text);
  }
  return text;
}
