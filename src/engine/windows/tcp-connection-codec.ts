/**
 * One TCP connection as the calls on a single connection take and give it: the fixed MIB_TCPROW
 * and MIB_TCP6ROW that SetTcpEntry (closing) and GetPerTcp(6)ConnectionEStats (counters) take,
 * and the TCP_ESTATS_DATA_ROD_v0 the latter fills in (tcpmib.h, tcpestats.h). Pure: bytes in and
 * out, tested from buffers built to the documented layouts. Ports are written in network byte
 * order into the first two bytes of their DWORD, whose upper two bytes are zeroed.
 */
import { DecodeError } from "../../errors.ts";

/** Where a MIB_TCPROW or MIB_TCP6ROW keeps each field; null for the scope ids IPv4 has not. */
interface TcpRowLayout {
  name: string;
  length: number;
  addressBytes: 4 | 16;
  state: number;
  localAddr: number;
  localScope: number | null;
  localPort: number;
  remoteAddr: number;
  remoteScope: number | null;
  remotePort: number;
}

// MIB_TCPROW (tcpmib.h), as SetTcpEntry and GetPerTcpConnectionEStats take it: five DWORDs.
export const MIB_TCPROW_LEN = 20;
const TCPROW: TcpRowLayout = {
  name: "MIB_TCPROW", length: MIB_TCPROW_LEN, addressBytes: 4,
  state: 0, localAddr: 4, localScope: null, localPort: 8, remoteAddr: 12, remoteScope: null, remotePort: 16,
};

// MIB_TCP6ROW (tcpmib.h), as GetPerTcp6ConnectionEStats takes it.
export const MIB_TCP6ROW_LEN = 52;
const TCP6ROW: TcpRowLayout = {
  name: "MIB_TCP6ROW", length: MIB_TCP6ROW_LEN, addressBytes: 16,
  state: 0, localAddr: 4, localScope: 20, localPort: 24, remoteAddr: 28, remoteScope: 44, remotePort: 48,
};

/** The connection a MIB_TCPROW or MIB_TCP6ROW names. Addresses are 4 or 16 raw bytes. */
export interface ConnectionId {
  state: number;
  local: Uint8Array;
  localPort: number;
  localScopeId: number;
  remote: Uint8Array;
  remotePort: number;
  remoteScopeId: number;
}

function writePort(view: DataView, offset: number, port: number): void {
  view.setUint32(offset, 0, true);
  view.setUint16(offset, port, false);
}

function encodeRow(layout: TcpRowLayout, id: ConnectionId): Uint8Array {
  if (id.local.byteLength !== layout.addressBytes || id.remote.byteLength !== layout.addressBytes) {
    throw new RangeError(`${layout.name} takes IPv${layout.addressBytes === 4 ? 4 : 6} addresses`);
  }
  const buf = new Uint8Array(layout.length);
  const view = dataView(buf);
  view.setUint32(layout.state, id.state, true);
  buf.set(id.local, layout.localAddr);
  if (layout.localScope !== null) view.setUint32(layout.localScope, id.localScopeId, true);
  writePort(view, layout.localPort, id.localPort);
  buf.set(id.remote, layout.remoteAddr);
  if (layout.remoteScope !== null) view.setUint32(layout.remoteScope, id.remoteScopeId, true);
  writePort(view, layout.remotePort, id.remotePort);
  return buf;
}

/** Encodes a MIB_TCPROW (IPv4). */
export function encodeTcpRow(id: ConnectionId): Uint8Array {
  return encodeRow(TCPROW, id);
}

/** Encodes a MIB_TCP6ROW (IPv6). */
export function encodeTcp6Row(id: ConnectionId): Uint8Array {
  return encodeRow(TCP6ROW, id);
}

// TCP_ESTATS_DATA_ROD_v0 (tcpestats.h): ULONG64 counters, then ULONGs, with padding before
// ThruBytesAcked (68 -> 72) and ThruBytesReceived (84 -> 88).
export const TCP_ESTATS_DATA_ROD_V0_LEN = 96;
/** TCP_ESTATS_DATA_RW_v0: one BOOLEAN, EnableCollection. */
export const TCP_ESTATS_DATA_RW_V0_LEN = 1;
/** TCP_ESTATS_TYPE's TcpConnectionEstatsData. */
export const TCP_CONNECTION_ESTATS_DATA = 1;

export interface ConnectionCounters {
  bytesSent: number;
  bytesReceived: number;
  /** All segments, as tcp_info's segs_out/segs_in count them. */
  packetsSent: number;
  packetsReceived: number;
  dataSegmentsSent: number;
  dataSegmentsReceived: number;
  bytesAcked: number;
  bytesReceivedInOrder: number;
}

/** Each counter's ULONG64 in TCP_ESTATS_DATA_ROD_v0, by the field's name there. */
const ROD_OFFSETS: Readonly<Record<keyof ConnectionCounters, number>> = {
  bytesSent: 0, // DataBytesOut
  bytesReceived: 16, // DataBytesIn
  packetsSent: 32, // SegsOut
  packetsReceived: 40, // SegsIn
  dataSegmentsSent: 8, // DataSegsOut
  dataSegmentsReceived: 24, // DataSegsIn
  bytesAcked: 72, // ThruBytesAcked
  bytesReceivedInOrder: 88, // ThruBytesReceived
};

/** Decodes a TCP_ESTATS_DATA_ROD_v0. */
export function decodeDataRod(buf: Uint8Array): ConnectionCounters {
  if (buf.byteLength < TCP_ESTATS_DATA_ROD_V0_LEN) {
    throw new DecodeError(`TCP_ESTATS_DATA_ROD_v0: ${buf.byteLength} bytes, needs ${TCP_ESTATS_DATA_ROD_V0_LEN}`);
  }
  const view = dataView(buf);
  const u64 = (o: number) => view.getUint32(o, true) + view.getUint32(o + 4, true) * 0x1_0000_0000;
  return Object.fromEntries(Object.entries(ROD_OFFSETS).map(([k, o]) => [k, u64(o)])) as unknown as ConnectionCounters;
}

function dataView(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}
