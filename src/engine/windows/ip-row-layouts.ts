/**
 * How the tables GetExtendedTcpTable and GetExtendedUdpTable fill in are laid out, one layout
 * per table class and family, and the call arguments that ask for each. Offsets are Microsoft's
 * (learn.microsoft.com, Win32 API, tcpmib.h / udpmib.h) for x64, natural alignment: a table whose
 * rows hold a LARGE_INTEGER starts them at offset 8, the others at 4. Data, no code that reads
 * bytes: ip-table-codec.ts decodes tables by these.
 */
import type { Family, Protocol } from "../../model/endpoint.ts";

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

/** A field the layout does not have. */
export const NONE = -1;

/** A layout from the fields its row has: those every row has, and the others only where given. */
function layout(has: Pick<RowLayout, "name" | "protocol" | "family" | "firstRow" | "size" | "localAddr" | "localPort" | "owningPid"> & Partial<RowLayout>): RowLayout {
  return {
    state: NONE, localScopeId: NONE, remoteAddr: NONE, remoteScopeId: NONE, remotePort: NONE,
    createTimestamp: NONE, flags: NONE, owningModuleInfo: NONE,
    ...has,
  };
}

/**
 * A table's _OWNER_MODULE row: its _OWNER_PID row, then a LARGE_INTEGER creation time (so rows
 * start 8-aligned), for UDP the SpecificPortBind/dwFlags union, and OwningModuleInfo last.
 */
function moduleRow(pidRow: RowLayout, at: { createTimestamp: number; flags?: number; owningModuleInfo: number }): RowLayout {
  return {
    ...pidRow,
    name: pidRow.name.replace("_OWNER_PID", "_OWNER_MODULE"),
    firstRow: 8,
    size: at.owningModuleInfo + OWNING_MODULE_INFO_LEN,
    ...at,
  };
}

/** MIB_TCPROW_OWNER_PID (tcpmib.h): six DWORDs. */
export const TCPROW_OWNER_PID = layout({
  name: "MIB_TCPROW_OWNER_PID", protocol: "tcp", family: 4, firstRow: 4, size: 24,
  state: 0, localAddr: 4, localPort: 8, remoteAddr: 12, remotePort: 16, owningPid: 20,
});

/** MIB_TCPROW_OWNER_MODULE (tcpmib.h): the PID row, a LARGE_INTEGER timestamp, module data. */
export const TCPROW_OWNER_MODULE = moduleRow(TCPROW_OWNER_PID, { createTimestamp: 24, owningModuleInfo: 32 });

/** MIB_TCP6ROW_OWNER_PID (tcpmib.h): UCHAR[16] addresses with scope ids; state after the ports. */
export const TCP6ROW_OWNER_PID = layout({
  name: "MIB_TCP6ROW_OWNER_PID", protocol: "tcp", family: 6, firstRow: 4, size: 56,
  localAddr: 0, localScopeId: 16, localPort: 20, remoteAddr: 24, remoteScopeId: 40, remotePort: 44, state: 48, owningPid: 52,
});

/** MIB_TCP6ROW_OWNER_MODULE (tcpmib.h). */
export const TCP6ROW_OWNER_MODULE = moduleRow(TCP6ROW_OWNER_PID, { createTimestamp: 56, owningModuleInfo: 64 });

/** MIB_UDPROW_OWNER_PID (udpmib.h): address, port, pid. */
export const UDPROW_OWNER_PID = layout({
  name: "MIB_UDPROW_OWNER_PID", protocol: "udp", family: 4, firstRow: 4, size: 12,
  localAddr: 0, localPort: 4, owningPid: 8,
});

/**
 * MIB_UDPROW_OWNER_MODULE (udpmib.h): 4 bytes of padding before the LARGE_INTEGER, then the
 * SpecificPortBind/dwFlags union (an int) and 4 more bytes of padding before OwningModuleInfo.
 */
export const UDPROW_OWNER_MODULE = moduleRow(UDPROW_OWNER_PID, { createTimestamp: 16, flags: 24, owningModuleInfo: 32 });

/** MIB_UDP6ROW_OWNER_PID (udpmib.h). */
export const UDP6ROW_OWNER_PID = layout({
  name: "MIB_UDP6ROW_OWNER_PID", protocol: "udp", family: 6, firstRow: 4, size: 28,
  localAddr: 0, localScopeId: 16, localPort: 20, owningPid: 24,
});

/** MIB_UDP6ROW_OWNER_MODULE (udpmib.h): padding after dwOwningPid and after the flags union. */
export const UDP6ROW_OWNER_MODULE = moduleRow(UDP6ROW_OWNER_PID, { createTimestamp: 32, flags: 40, owningModuleInfo: 48 });

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
