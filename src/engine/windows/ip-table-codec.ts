/**
 * Pure decoder for the tables iphlpapi's GetExtendedTcpTable and GetExtendedUdpTable fill in. No
 * I/O: bytes in, records out, so it is tested from buffers built to the documented layouts.
 *
 * Layouts are Microsoft's (learn.microsoft.com, Win32 API, tcpmib.h / udpmib.h):
 * MIB_TCPTABLE_OWNER_MODULE, MIB_TCP6TABLE_OWNER_MODULE, MIB_UDPTABLE_OWNER_MODULE,
 * MIB_UDP6TABLE_OWNER_MODULE and their OWNER_PID counterparts, as ip-row-layouts.ts spells them
 * out. Every integer is little-endian except what the documentation calls network byte order:
 * IPv4 addresses (the DWORD's bytes are the address bytes in order) and ports (the first two
 * bytes of the DWORD, big-endian; the upper two bytes are documented as possibly holding junk
 * and are ignored).
 *
 * The codec is one import for the engine and its tests: the layouts, the TCP state numbers and
 * the single-connection rows (tcp-connection-codec.ts), each in a file of its own, are passed on
 * from here.
 */
import { DecodeError } from "../../errors.ts";
import { formatIPv4, formatIPv6 } from "../../net/address.ts";
import type { Family, Protocol } from "../../model/endpoint.ts";
import { NONE, type RowLayout } from "./ip-row-layouts.ts";

export {
  TCP_TABLE_OWNER_PID_ALL,
  TCP_TABLE_OWNER_MODULE_ALL,
  UDP_TABLE_OWNER_PID,
  UDP_TABLE_OWNER_MODULE,
  WIN_AF_INET,
  WIN_AF_INET6,
  TCPROW_OWNER_PID,
  TCPROW_OWNER_MODULE,
  TCP6ROW_OWNER_PID,
  TCP6ROW_OWNER_MODULE,
  UDPROW_OWNER_PID,
  UDPROW_OWNER_MODULE,
  UDP6ROW_OWNER_PID,
  UDP6ROW_OWNER_MODULE,
  rowLayout,
  tableRequest,
  type RowLayout,
} from "./ip-row-layouts.ts";
export { MIB_TCP_STATE_DELETE_TCB, MIB_TCP_STATES, mibTcpState, tcpStateName } from "./mib-tcp-state.ts";
export {
  MIB_TCPROW_LEN,
  MIB_TCP6ROW_LEN,
  TCP_ESTATS_DATA_ROD_V0_LEN,
  TCP_ESTATS_DATA_RW_V0_LEN,
  TCP_CONNECTION_ESTATS_DATA,
  decodeDataRod,
  encodeTcpRow,
  encodeTcp6Row,
  type ConnectionCounters,
  type ConnectionId,
} from "./tcp-connection-codec.ts";

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
