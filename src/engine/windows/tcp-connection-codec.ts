/**
 * One TCP connection as the calls on a single connection take and give it: the fixed MIB_TCPROW
 * and MIB_TCP6ROW that SetTcpEntry (closing) and GetPerTcp(6)ConnectionEStats (counters) take,
 * and the TCP_ESTATS_DATA_ROD_v0 the latter fills in (tcpmib.h, tcpestats.h). Pure: bytes in and
 * out, tested from buffers built to the documented layouts. Ports are written in network byte
 * order into the first two bytes of their DWORD, whose upper two bytes are zeroed.
 */
import { DecodeError } from "../../errors.ts";

// MIB_TCPROW (tcpmib.h), as SetTcpEntry and GetPerTcpConnectionEStats take it: five DWORDs.
export const MIB_TCPROW_LEN = 20;
const TCPROW_STATE = 0;
const TCPROW_LOCAL_ADDR = 4;
const TCPROW_LOCAL_PORT = 8;
const TCPROW_REMOTE_ADDR = 12;
const TCPROW_REMOTE_PORT = 16;

// MIB_TCP6ROW (tcpmib.h), as GetPerTcp6ConnectionEStats takes it.
export const MIB_TCP6ROW_LEN = 52;
const TCP6ROW_STATE = 0;
const TCP6ROW_LOCAL_ADDR = 4;
const TCP6ROW_LOCAL_SCOPE = 20;
const TCP6ROW_LOCAL_PORT = 24;
const TCP6ROW_REMOTE_ADDR = 28;
const TCP6ROW_REMOTE_SCOPE = 44;
const TCP6ROW_REMOTE_PORT = 48;

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

/** Encodes a MIB_TCPROW (IPv4). */
export function encodeTcpRow(id: ConnectionId): Uint8Array {
  if (id.local.byteLength !== 4 || id.remote.byteLength !== 4) throw new RangeError("MIB_TCPROW takes IPv4 addresses");
  const buf = new Uint8Array(MIB_TCPROW_LEN);
  const view = dataView(buf);
  view.setUint32(TCPROW_STATE, id.state, true);
  buf.set(id.local, TCPROW_LOCAL_ADDR);
  writePort(view, TCPROW_LOCAL_PORT, id.localPort);
  buf.set(id.remote, TCPROW_REMOTE_ADDR);
  writePort(view, TCPROW_REMOTE_PORT, id.remotePort);
  return buf;
}

/** Encodes a MIB_TCP6ROW (IPv6). */
export function encodeTcp6Row(id: ConnectionId): Uint8Array {
  if (id.local.byteLength !== 16 || id.remote.byteLength !== 16) throw new RangeError("MIB_TCP6ROW takes IPv6 addresses");
  const buf = new Uint8Array(MIB_TCP6ROW_LEN);
  const view = dataView(buf);
  view.setUint32(TCP6ROW_STATE, id.state, true);
  buf.set(id.local, TCP6ROW_LOCAL_ADDR);
  view.setUint32(TCP6ROW_LOCAL_SCOPE, id.localScopeId, true);
  writePort(view, TCP6ROW_LOCAL_PORT, id.localPort);
  buf.set(id.remote, TCP6ROW_REMOTE_ADDR);
  view.setUint32(TCP6ROW_REMOTE_SCOPE, id.remoteScopeId, true);
  writePort(view, TCP6ROW_REMOTE_PORT, id.remotePort);
  return buf;
}

// TCP_ESTATS_DATA_ROD_v0 (tcpestats.h): ULONG64 counters, then ULONGs, with padding before
// ThruBytesAcked (68 -> 72) and ThruBytesReceived (84 -> 88).
export const TCP_ESTATS_DATA_ROD_V0_LEN = 96;
const ROD_DATA_BYTES_OUT = 0;
const ROD_DATA_SEGS_OUT = 8;
const ROD_DATA_BYTES_IN = 16;
const ROD_DATA_SEGS_IN = 24;
const ROD_SEGS_OUT = 32;
const ROD_SEGS_IN = 40;
const ROD_THRU_BYTES_ACKED = 72;
const ROD_THRU_BYTES_RECEIVED = 88;
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

/** Decodes a TCP_ESTATS_DATA_ROD_v0. */
export function decodeDataRod(buf: Uint8Array): ConnectionCounters {
  if (buf.byteLength < TCP_ESTATS_DATA_ROD_V0_LEN) {
    throw new DecodeError(`TCP_ESTATS_DATA_ROD_v0: ${buf.byteLength} bytes, needs ${TCP_ESTATS_DATA_ROD_V0_LEN}`);
  }
  const view = dataView(buf);
  const u64 = (o: number) => view.getUint32(o, true) + view.getUint32(o + 4, true) * 0x1_0000_0000;
  return {
    bytesSent: u64(ROD_DATA_BYTES_OUT),
    bytesReceived: u64(ROD_DATA_BYTES_IN),
    packetsSent: u64(ROD_SEGS_OUT),
    packetsReceived: u64(ROD_SEGS_IN),
    dataSegmentsSent: u64(ROD_DATA_SEGS_OUT),
    dataSegmentsReceived: u64(ROD_DATA_SEGS_IN),
    bytesAcked: u64(ROD_THRU_BYTES_ACKED),
    bytesReceivedInOrder: u64(ROD_THRU_BYTES_RECEIVED),
  };
}

function dataView(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}
