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

/** Kernel TCP state numbers (include/net/tcp_states.h) to names. */
export const KERNEL_TCP_STATES: readonly (string | undefined)[] = [
  undefined,
  "ESTABLISHED",
  "SYN_SENT",
  "SYN_RECV",
  "FIN_WAIT1",
  "FIN_WAIT2",
  "TIME_WAIT",
  "CLOSE",
  "CLOSE_WAIT",
  "LAST_ACK",
  "LISTEN",
  "CLOSING",
  "SYN_RECV", // TCP_NEW_SYN_RECV: a request socket, shown as SYN_RECV as ss and netstat do.
];

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

/** A socket id as decoded from a reply: addresses already in canonical text. */
export interface DecodedSocketId {
  sourcePort: number;
  destinationPort: number;
  source: string;
  destination: string;
  interfaceIndex: number;
  cookieLow: number;
  cookieHigh: number;
}

export interface TcpInfoCounters {
  rttMicros: number | null;
  bytesAcked: number | null;
  bytesReceived: number | null;
  bytesSent: number | null;
  segsOut: number | null;
  segsIn: number | null;
}

export interface DiagRecord {
  family: number;
  state: number;
  id: DecodedSocketId;
  receiveQueue: number;
  sendQueue: number;
  uid: number;
  inode: number;
  tcpInfo: TcpInfoCounters | null;
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
 * Decodes every netlink message in one datagram. A message whose header claims more bytes than
 * arrived, or a diag payload shorter than inet_diag_msg, is a DecodeError naming both sizes.
 */
export function decodeMessages(buf: Uint8Array, expectDiagType = SOCK_DIAG_BY_FAMILY): NetlinkMessage[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: NetlinkMessage[] = [];
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
      out.push({ kind: "done", sequence, flags });
    } else if (type === NLMSG_ERROR) {
      if (len < NLMSG_HDRLEN + 4) {
        throw new DecodeError(`netlink error message is ${len} bytes, at least ${NLMSG_HDRLEN + 4} were wanted`);
      }
      // nlmsgerr.error is a negative errno, 0 for an acknowledgement.
      out.push({ kind: "error", sequence, flags, errno: -view.getInt32(body, true) });
    } else if (type === expectDiagType) {
      out.push({ kind: "diag", sequence, flags, record: decodeDiagMsg(view, body, len - NLMSG_HDRLEN) });
    } else {
      out.push({ kind: "other", sequence, flags, type });
    }
    off += align4(len);
  }
  if (off < buf.byteLength) {
    throw new DecodeError(
      `netlink datagram has ${buf.byteLength - off} trailing bytes, fewer than a ${NLMSG_HDRLEN}-byte header`,
    );
  }
  return out;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function decodeDiagMsg(view: DataView, o: number, len: number): DiagRecord {
  if (len < INET_DIAG_MSG_LEN) {
    throw new DecodeError(`inet_diag_msg is ${len} bytes, ${INET_DIAG_MSG_LEN} were wanted`);
  }
  const family = view.getUint8(o + MSG_FAMILY);
  const idOff = o + MSG_ID;
  const id: DecodedSocketId = {
    sourcePort: view.getUint16(idOff + SOCKID_SPORT, false),
    destinationPort: view.getUint16(idOff + SOCKID_DPORT, false),
    source: addressText(view, idOff + SOCKID_SRC, family),
    destination: addressText(view, idOff + SOCKID_DST, family),
    interfaceIndex: view.getUint32(idOff + SOCKID_IF, true),
    cookieLow: view.getUint32(idOff + SOCKID_COOKIE, true),
    cookieHigh: view.getUint32(idOff + SOCKID_COOKIE + 4, true),
  };
  const record: DiagRecord = {
    family,
    state: view.getUint8(o + MSG_STATE),
    id,
    receiveQueue: view.getUint32(o + MSG_RQUEUE, true),
    sendQueue: view.getUint32(o + MSG_WQUEUE, true),
    uid: view.getUint32(o + MSG_UID, true),
    inode: view.getUint32(o + MSG_INODE, true),
    tcpInfo: null,
    v6Only: null,
  };
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
    if (atype === INET_DIAG_INFO) record.tcpInfo = decodeTcpInfo(view, payload, plen);
    else if (atype === INET_DIAG_SKV6ONLY && plen >= 1) record.v6Only = view.getUint8(payload) !== 0;
    a += align4(alen);
  }
  return record;
}

function u32At(view: DataView, base: number, len: number, field: number): number | null {
  return field + 4 <= len ? view.getUint32(base + field, true) : null;
}

function u64At(view: DataView, base: number, len: number, field: number): number | null {
  // Byte counters stay below 2^53 for any realistic connection; Number keeps JSON plain.
  return field + 8 <= len ? Number(view.getBigUint64(base + field, true)) : null;
}

export function decodeTcpInfo(view: DataView, base: number, len: number): TcpInfoCounters {
  return {
    rttMicros: u32At(view, base, len, TCPI_RTT),
    bytesAcked: u64At(view, base, len, TCPI_BYTES_ACKED),
    bytesReceived: u64At(view, base, len, TCPI_BYTES_RECEIVED),
    bytesSent: u64At(view, base, len, TCPI_BYTES_SENT),
    segsOut: u32At(view, base, len, TCPI_SEGS_OUT),
    segsIn: u32At(view, base, len, TCPI_SEGS_IN),
  };
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

function addressText(view: DataView, off: number, family: number): string {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  if (family !== AF_INET6) {
    const key = view.getUint32(off, false);
    let text = v4Text.get(key);
    if (text === undefined) {
      text = formatIPv4(bytes, off);
      if (v4Text.size >= INTERN_LIMIT) v4Text.clear();
      v4Text.set(key, text);
    }
    return text;
  }
  const w0 = view.getUint32(off, false);
  const w1 = view.getUint32(off + 4, false);
  const w2 = view.getUint32(off + 8, false);
  const w3 = view.getUint32(off + 12, false);
  const key = `${w0},${w1},${w2},${w3}`;
  let text = v6Text.get(key);
  if (text === undefined) {
    text = formatIPv6(bytes, off);
    if (v6Text.size >= INTERN_LIMIT) v6Text.clear();
    v6Text.set(key, text);
  }
  return text;
}
