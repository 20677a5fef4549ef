/**
 * MIB_TCP_STATE (tcpmib.h): the TCP state numbers of Windows' tables and of the rows SetTcpEntry
 * and the statistics calls take, to and from the kernel-style names the rest of sockwarden uses.
 */
import type { TcpState } from "../../model/endpoint.ts";

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
