/**
 * Pure decoder for the tables iphlpapi's GetExtendedTcpTable and GetExtendedUdpTable fill in, and
 * encoder for the fixed rows SetTcpEntry and the per-connection statistics calls take. No I/O:
 * bytes in, records out, so it is tested from buffers built to the documented layouts.
 *
 * Layouts are Microsoft's (learn.microsoft.com, Win32 API, tcpmib.h / udpmib.h / tcpestats.h):
 * MIB_TCPTABLE_OWNER_MODULE, MIB_TCP6TABLE_OWNER_MODULE, MIB_UDPTABLE_OWNER_MODULE,
 * MIB_UDP6TABLE_OWNER_MODULE and their OWNER_PID counterparts, MIB_TCPROW, MIB_TCP6ROW and
 * TCP_ESTATS_DATA_ROD_v0, as laid out for x64 (natural alignment: a table whose rows hold a
 * LARGE_INTEGER starts them at offset 8, the others at 4). Every integer is little-endian except
 * what the documentation calls network byte order: IPv4 addresses (the DWORD's bytes are the
 * address bytes in order) and ports (the first two bytes of the DWORD, big-endian; the upper two
 * bytes are documented as possibly holding junk and are ignored).
 */
import { DecodeError } from "../../errors.ts";
import { formatIPv4, formatIPv6 } from "../../net/address.ts";
import type { Family, Protocol, TcpState } from "../../model/endpoint.ts";

// GetExtendedTcpTable's TableClass (TCP_TABLE_CLASS) and GetExtendedUdpTable's (UDP_TABLE_CLASS).
export const TCP_TABLE_OWNER_PID_ALL = 5;
export const TCP_TABLE_OWNER_MODULE_ALL = 8;
export const UDP_TABLE_OWNER_PID = 1;
export const UDP_TABLE_OWNER_MODULE = 2;

// ws2def.h address families as GetExtended*Table's ulAf takes them.
export const WIN_AF_INET = 2;
export const WIN_AF_INET6 = 23;

/** Size of OwningModuleInfo: ULONGLONG[TCPIP_OWNING_MODULE_SIZE], TCPIP_OWNING_MODULE_SIZE = 16. */
const OWNING_MODULE_INFO_LEN = 16 * 8;

/** MIB_TCP_STATE_DELETE_TCB: the state SetTcpEntry is given to close a connection. */
export const MIB_TCP_STATE_DELETE_TCB = 12;

/**
 * MIB_TCP_STATE values 1..12 to the kernel-style names the rest of sockwarden uses. DELETE_TCB
 * (12) is a connection being torn down: shown as CLOSE.
 */
export const MIB_TCP_STATES: readonly (TcpState | undefined)[] = [
  undefined,
  "CLOSE", // 1 MIB_TCP_STATE_CLOSED
  "LISTEN", // 2
  "SYN_SENT", // 3
  "SYN_RECV", // 4 MIB_TCP_STATE_SYN_RCVD
  "ESTABLISHED", // 5 MIB_TCP_STATE_ESTAB
  "FIN_WAIT1", // 6
  "FIN_WAIT2", // 7
  "CLOSE_WAIT", // 8
  "CLOSING", // 9
  "LAST_ACK", // 10
  "TIME_WAIT", // 11
  "CLOSE", // 12 MIB_TCP_STATE_DELETE_TCB
];

/** The state name for a MIB_TCP_STATE value; values outside 1..12 are shown as CLOSE. */
export function tcpStateName(value: number): TcpState {
  return MIB_TCP_STATES[value] ?? "CLOSE";
}

/** The reverse, for SetTcpEntry and the statistics calls, which take the row as listed. */
export function mibTcpState(name: TcpState): number {
  const i = MIB_TCP_STATES.indexOf(name);
  return i > 0 ? i : 1;
}

/** How one table class is laid out. Offsets are from the start of a row; -1: no such field. */
export interface RowLayout {
  readonly name: string;
  readonly protocol: Protocol;
  readonly family: Family;
  /** Offset of table[0] in the table: 4, or 8 when rows need 8-byte alignment. */
  readonly firstRow: number;
  readonly size: number;
  readonly state: number;
  readonly localAddr: number;
  readonly localScopeId: number;
  readonly localPort: number;
  readonly remoteAddr: number;
  readonly remoteScopeId: number;
  readonly remotePort: number;
  readonly owningPid: number;
  readonly createTimestamp: number;
  readonly flags: number;
  readonly owningModuleInfo: number;
}

const NONE = -1;

/** MIB_TCPROW_OWNER_PID (tcpmib.h): six DWORDs. */
export const TCPROW_OWNER_PID: RowLayout = {
  name: "MIB_TCPROW_OWNER_PID",
  protocol: "tcp",
  family: 4,
  firstRow: 4,
  size: 24,
  state: 0,
  localAddr: 4,
  localScopeId: NONE,
  localPort: 8,
  remoteAddr: 12,
  remoteScopeId: NONE,
  remotePort: 16,
  owningPid: 20,
  createTimestamp: NONE,
  flags: NONE,
  owningModuleInfo: NONE,
};

/** MIB_TCPROW_OWNER_MODULE (tcpmib.h): the PID row, a LARGE_INTEGER timestamp, module data. */
export const TCPROW_OWNER_MODULE: RowLayout = {
  ...TCPROW_OWNER_PID,
  name: "MIB_TCPROW_OWNER_MODULE",
  firstRow: 8,
  size: 32 + OWNING_MODULE_INFO_LEN, // 160
  createTimestamp: 24,
  owningModuleInfo: 32,
};

/** MIB_TCP6ROW_OWNER_PID (tcpmib.h): UCHAR[16] addresses with scope ids; state after the ports. */
export const TCP6ROW_OWNER_PID: RowLayout = {
  name: "MIB_TCP6ROW_OWNER_PID",
  protocol: "tcp",
  family: 6,
  firstRow: 4,
  size: 56,
  localAddr: 0,
  localScopeId: 16,
  localPort: 20,
  remoteAddr: 24,
  remoteScopeId: 40,
  remotePort: 44,
  state: 48,
  owningPid: 52,
  createTimestamp: NONE,
  flags: NONE,
  owningModuleInfo: NONE,
};

/** MIB_TCP6ROW_OWNER_MODULE (tcpmib.h). */
export const TCP6ROW_OWNER_MODULE: RowLayout = {
  ...TCP6ROW_OWNER_PID,
  name: "MIB_TCP6ROW_OWNER_MODULE",
  firstRow: 8,
  size: 64 + OWNING_MODULE_INFO_LEN, // 192
  createTimestamp: 56,
  owningModuleInfo: 64,
};

/** MIB_UDPROW_OWNER_PID (udpmib.h): address, port, pid. */
export const UDPROW_OWNER_PID: RowLayout = {
  name: "MIB_UDPROW_OWNER_PID",
  protocol: "udp",
  family: 4,
  firstRow: 4,
  size: 12,
  state: NONE,
  localAddr: 0,
  localScopeId: NONE,
  localPort: 4,
  remoteAddr: NONE,
  remoteScopeId: NONE,
  remotePort: NONE,
  owningPid: 8,
  createTimestamp: NONE,
  flags: NONE,
  owningModuleInfo: NONE,
};

/**
 * MIB_UDPROW_OWNER_MODULE (udpmib.h): 4 bytes of padding before the LARGE_INTEGER, then the
 * SpecificPortBind/dwFlags union (an int) and 4 more bytes of padding before OwningModuleInfo.
 */
export const UDPROW_OWNER_MODULE: RowLayout = {
  ...UDPROW_OWNER_PID,
  name: "MIB_UDPROW_OWNER_MODULE",
  firstRow: 8,
  size: 32 + OWNING_MODULE_INFO_LEN, // 160
  createTimestamp: 16,
  flags: 24,
  owningModuleInfo: 32,
};

/** MIB_UDP6ROW_OWNER_PID (udpmib.h). */
export const UDP6ROW_OWNER_PID: RowLayout = {
  name: "MIB_UDP6ROW_OWNER_PID",
  protocol: "udp",
  family: 6,
  firstRow: 4,
  size: 28,
  state: NONE,
  localAddr: 0,
  localScopeId: 16,
  localPort: 20,
  remoteAddr: NONE,
  remoteScopeId: NONE,
  remotePort: NONE,
  owningPid: 24,
  createTimestamp: NONE,
  flags: NONE,
  owningModuleInfo: NONE,
};

/** MIB_UDP6ROW_OWNER_MODULE (udpmib.h): padding after dwOwningPid and after the flags union. */
export const UDP6ROW_OWNER_MODULE: RowLayout = {
  ...UDP6ROW_OWNER_PID,
  name: "MIB_UDP6ROW_OWNER_MODULE",
  firstRow: 8,
  size: 48 + OWNING_MODULE_INFO_LEN, // 176
  createTimestamp: 32,
  flags: 40,
  owningModuleInfo: 48,
};

/** The row layout for a protocol, family and class kind. */
export function rowLayout(protocol: Protocol, family: Family, withModule: boolean): RowLayout {
  if (protocol === "tcp") {
    if (family === 4) return withModule ? TCPROW_OWNER_MODULE : TCPROW_OWNER_PID;
    return withModule ? TCP6ROW_OWNER_MODULE : TCP6ROW_OWNER_PID;
  }
  if (family === 4) return withModule ? UDPROW_OWNER_MODULE : UDPROW_OWNER_PID;
  return withModule ? UDP6ROW_OWNER_MODULE : UDP6ROW_OWNER_PID;
}

/** The GetExtended*Table arguments that produce a table of this layout. */
export function tableRequest(layout: RowLayout): { af: number; tableClass: number } {
  const module = layout.owningModuleInfo !== NONE;
  const tableClass =
    layout.protocol === "tcp"
      ? module
        ? TCP_TABLE_OWNER_MODULE_ALL
        : TCP_TABLE_OWNER_PID_ALL
      : module
        ? UDP_TABLE_OWNER_MODULE
        : UDP_TABLE_OWNER_PID;
  return { af: layout.family === 4 ? WIN_AF_INET : WIN_AF_INET6, tableClass };
}

/** One row, flat. UDP rows have state 0 and an unspecified remote end. */
export interface TableRow {
  protocol: Protocol;
  family: Family;
  /** MIB_TCP_STATE value (1..12); 0 for UDP. */
  state: number;
  localAddress: string;
  localPort: number;
  /** IPv6 scope id (the interface index for link-local addresses); 0 for IPv4. */
  localScopeId: number;
  remoteAddress: string;
  remotePort: number;
  remoteScopeId: number;
  pid: number;
  /** When the socket was bound or connected (ms since the epoch); null when the table has none. */
  createdAt: number | null;
  /** UDP module rows: bound to a specific port (SpecificPortBind); null elsewhere. */
  specificPortBind: boolean | null;
  /** Where the row starts in the table, for calls that take the row back (owner module). */
  offset: number;
}

/** 100-ns intervals between 1601-01-01 (FILETIME's epoch) and 1970-01-01. */
const FILETIME_UNIX_EPOCH_MS = 11_644_473_600_000;

/** A FILETIME (two little-endian DWORDs) as ms since the Unix epoch; null for zero. */
export function fileTimeToMs(buf: Uint8Array, offset: number): number | null {
  const view = dataView(buf);
  const low = view.getUint32(offset, true);
  const high = view.getUint32(offset + 4, true);
  if (low === 0 && high === 0) return null;
  return Math.floor((high * 0x1_0000_0000 + low) / 10_000) - FILETIME_UNIX_EPOCH_MS;
}

function dataView(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** The dwNumEntries every table starts with; rejects a buffer too short to hold it. */
export function tableEntryCount(buf: Uint8Array, layout: RowLayout): number {
  if (buf.byteLength < 4) {
    throw new DecodeError(`${tableName(layout)}: ${buf.byteLength} bytes, too short for dwNumEntries (4)`);
  }
  return dataView(buf).getUint32(0, true);
}

function tableName(layout: RowLayout): string {
  return layout.name.replace("ROW", "TABLE");
}

/**
 * Decodes a whole table. `length` is how many bytes of `buf` the call filled (default: all).
 * A table whose dwNumEntries promises more rows than the bytes hold is rejected, naming both.
 */
export function decodeTable(buf: Uint8Array, layout: RowLayout, length = buf.byteLength): TableRow[] {
  if (length > buf.byteLength) length = buf.byteLength;
  const bytes = length === buf.byteLength ? buf : buf.subarray(0, length);
  const count = tableEntryCount(bytes, layout);
  if (count === 0) return [];
  const needed = layout.firstRow + count * layout.size;
  if (needed > length) {
    throw new DecodeError(
      `${tableName(layout)}: dwNumEntries ${count} needs ${needed} bytes (${layout.firstRow} + ${count} x ${layout.size}), buffer holds ${length}`,
    );
  }
  const view = dataView(bytes);
  const rows: TableRow[] = new Array(count);
  for (let i = 0; i < count; i++) rows[i] = decodeRowAt(bytes, view, layout, layout.firstRow + i * layout.size);
  return rows;
}

/** Decodes one row starting at `offset`; the caller has checked that it fits. */
function decodeRowAt(buf: Uint8Array, view: DataView, layout: RowLayout, offset: number): TableRow {
  const v4 = layout.family === 4;
  const address = (field: number): string => {
    if (field === NONE) return v4 ? "0.0.0.0" : "::";
    return v4 ? formatIPv4(buf, offset + field) : formatIPv6(buf, offset + field);
  };
  const port = (field: number): number => (field === NONE ? 0 : view.getUint16(offset + field, false));
  const dword = (field: number): number => (field === NONE ? 0 : view.getUint32(offset + field, true));
  return {
    protocol: layout.protocol,
    family: layout.family,
    state: dword(layout.state),
    localAddress: address(layout.localAddr),
    localPort: port(layout.localPort),
    localScopeId: dword(layout.localScopeId),
    remoteAddress: address(layout.remoteAddr),
    remotePort: port(layout.remotePort),
    remoteScopeId: dword(layout.remoteScopeId),
    pid: dword(layout.owningPid),
    createdAt: layout.createTimestamp === NONE ? null : fileTimeToMs(buf, offset + layout.createTimestamp),
    specificPortBind: layout.flags === NONE ? null : (view.getUint32(offset + layout.flags, true) & 1) === 1,
    offset,
  };
}

/** One row's bytes, for the calls that take a row back (GetOwnerModuleFrom*Entry). */
export function rowBytes(buf: Uint8Array, layout: RowLayout, row: TableRow): Uint8Array {
  if (row.offset + layout.size > buf.byteLength) {
    throw new DecodeError(`${layout.name} at ${row.offset}: needs ${layout.size} bytes, buffer holds ${buf.byteLength - row.offset}`);
  }
  return buf.subarray(row.offset, row.offset + layout.size);
}

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
