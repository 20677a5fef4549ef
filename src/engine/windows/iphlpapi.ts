/**
 * iphlpapi.dll calls the Windows engine makes, bound through koffi. Raw bindings only: each
 * returns the Win32 error code (NO_ERROR = 0) as the function does; callers decide what it means.
 * Buffers are passed as `void *`: koffi hands the function their memory for the call's duration.
 */
import { koffi } from "../native/koffi-addon.ts";

export const NO_ERROR = 0;
export const ERROR_ACCESS_DENIED = 5;
export const ERROR_NOT_SUPPORTED = 50;
export const ERROR_INVALID_PARAMETER = 87;
export const ERROR_INSUFFICIENT_BUFFER = 122;
export const ERROR_NOT_FOUND = 1168;
/** SetTcpEntry's answer when the connection is not in the table (any more). */
export const ERROR_MR_MID_NOT_FOUND = 317;

export interface Iphlpapi {
  /** GetExtendedTcpTable(pTcpTable, pdwSize, bOrder, ulAf, TableClass, 0); `size[0]` is in/out. */
  getExtendedTcpTable(table: Uint8Array | null, size: number[], af: number, tableClass: number): number;
  getExtendedUdpTable(table: Uint8Array | null, size: number[], af: number, tableClass: number): number;
  /** SetTcpEntry(PMIB_TCPROW). */
  setTcpEntry(row: Uint8Array): number;
  /** GetPerTcpConnectionEStats(row, type, Rw, 0, RwSize, Ros, 0, RosSize, Rod, 0, RodSize). */
  getPerTcpConnectionEStats(row: Uint8Array, type: number, rw: Uint8Array | null, ros: Uint8Array | null, rod: Uint8Array | null): number;
  getPerTcp6ConnectionEStats(row: Uint8Array, type: number, rw: Uint8Array | null, ros: Uint8Array | null, rod: Uint8Array | null): number;
  /** SetPerTcpConnectionEStats(row, type, Rw, 0, RwSize, 0). */
  setPerTcpConnectionEStats(row: Uint8Array, type: number, rw: Uint8Array): number;
  setPerTcp6ConnectionEStats(row: Uint8Array, type: number, rw: Uint8Array): number;
  /**
   * GetOwnerModuleFrom{Tcp,Tcp6,Udp,Udp6}Entry(row, TCPIP_OWNER_MODULE_INFO_BASIC, buffer, size):
   * `buffer` is native memory (koffi.alloc) because the answer holds pointers into itself.
   */
  getOwnerModule(kind: "tcp4" | "tcp6" | "udp4" | "udp6", row: Uint8Array, buffer: unknown, size: number[]): number;
  /** Whether this iphlpapi exports the per-connection statistics calls (wine 8 does not). */
  hasConnectionStatistics: boolean;
}

let bound: Iphlpapi | null = null;

export function iphlpapi(): Iphlpapi {
  if (bound) return bound;
  const lib = koffi().load("iphlpapi.dll");
  const tcpTable = lib.func(
    "uint32_t __stdcall GetExtendedTcpTable(void *pTcpTable, _Inout_ uint32_t *pdwSize, int bOrder, uint32_t ulAf, int TableClass, uint32_t Reserved)",
  );
  const udpTable = lib.func(
    "uint32_t __stdcall GetExtendedUdpTable(void *pUdpTable, _Inout_ uint32_t *pdwSize, int bOrder, uint32_t ulAf, int TableClass, uint32_t Reserved)",
  );
  const setTcpEntry = lib.func("uint32_t __stdcall SetTcpEntry(void *pTcpRow)");
  // Wine (and very old Windows) lacks some of these: a missing export is bound as null and the
  // call answers ERROR_NOT_SUPPORTED.
  const optional = (definition: string) => {
    try {
      return lib.func(definition);
    } catch {
      return null;
    }
  };
  const missing = () => ERROR_NOT_SUPPORTED;
  const estatsProto = (name: string) =>
    optional(
      `uint32_t __stdcall ${name}(void *Row, int EstatsType, void *Rw, uint32_t RwVersion, uint32_t RwSize, void *Ros, uint32_t RosVersion, uint32_t RosSize, void *Rod, uint32_t RodVersion, uint32_t RodSize)`,
    );
  const getEstats = estatsProto("GetPerTcpConnectionEStats");
  const getEstats6 = estatsProto("GetPerTcp6ConnectionEStats");
  const setEstatsProto = (name: string) =>
    optional(`uint32_t __stdcall ${name}(void *Row, int EstatsType, void *Rw, uint32_t RwVersion, uint32_t RwSize, uint32_t Offset)`);
  const setEstats = setEstatsProto("SetPerTcpConnectionEStats");
  const setEstats6 = setEstatsProto("SetPerTcp6ConnectionEStats");
  const ownerProto = (name: string) =>
    optional(`uint32_t __stdcall ${name}(void *pEntry, int Class, void *pBuffer, _Inout_ uint32_t *pdwSize)`);
  const owner = {
    tcp4: ownerProto("GetOwnerModuleFromTcpEntry"),
    tcp6: ownerProto("GetOwnerModuleFromTcp6Entry"),
    udp4: ownerProto("GetOwnerModuleFromUdpEntry"),
    udp6: ownerProto("GetOwnerModuleFromUdp6Entry"),
  };
  const len = (b: Uint8Array | null) => (b ? b.byteLength : 0);
  bound = {
    getExtendedTcpTable: (t, size, af, cls) => tcpTable(t, size, 0, af, cls, 0) as number,
    getExtendedUdpTable: (t, size, af, cls) => udpTable(t, size, 0, af, cls, 0) as number,
    setTcpEntry: (row) => setTcpEntry(row) as number,
    getPerTcpConnectionEStats: getEstats
      ? (row, type, rw, ros, rod) => getEstats(row, type, rw, 0, len(rw), ros, 0, len(ros), rod, 0, len(rod)) as number
      : missing,
    getPerTcp6ConnectionEStats: getEstats6
      ? (row, type, rw, ros, rod) => getEstats6(row, type, rw, 0, len(rw), ros, 0, len(ros), rod, 0, len(rod)) as number
      : missing,
    setPerTcpConnectionEStats: setEstats ? (row, type, rw) => setEstats(row, type, rw, 0, rw.byteLength, 0) as number : missing,
    setPerTcp6ConnectionEStats: setEstats6 ? (row, type, rw) => setEstats6(row, type, rw, 0, rw.byteLength, 0) as number : missing,
    getOwnerModule: (kind, row, buffer, size) => owner[kind]?.(row, 0, buffer, size) ?? ERROR_NOT_SUPPORTED,
    hasConnectionStatistics: getEstats !== null && setEstats !== null,
  };
  return bound;
}
