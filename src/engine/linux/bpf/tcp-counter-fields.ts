/**
 * Where a TCP socket's counters lie in the running kernel's `struct tcp_sock`, from its BTF, for
 * the set-state program to read at each state change. The tracepoint's record carries no
 * counters, and a socket reaching CLOSE is already out of the tables sock_diag looks in, so
 * reading them from the socket itself is the only way a close can carry its final figures.
 *
 * The meanings are those of tcp_info as sock_diag reports them (linux-engine.ts): bytes sent is
 * `bytes_sent` (4.19+), else `bytes_acked` (which also counts the SYN and FIN); bytes received
 * `bytes_received`; packets `segs_out` / `segs_in`.
 */
import type { Btf } from "./btf.ts";

export interface CounterField {
  /** Member name in struct tcp_sock. */
  member: string;
  /** Byte offset from the socket's address (struct sock is the first member of tcp_sock). */
  offset: number;
  /** Bytes to read: the member's size. */
  size: number;
}

/** The four counters' places, or why they cannot be read. */
export type CounterFields =
  | { ok: true; bytesSent: CounterField; bytesReceived: CounterField; segsOut: CounterField; segsIn: CounterField }
  | { ok: false; reason: string };

/** The widest each counter can be in the record (set-state-record.ts). */
const SLOT = { bytesSent: 8, bytesReceived: 8, segsOut: 4, segsIn: 4 } as const;

export function tcpCounterFields(btf: Btf | null): CounterFields {
  if (!btf) return { ok: false, reason: "the kernel has no BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF)" };
  const tcpSock = btf.struct("tcp_sock");
  if (!tcpSock) return { ok: false, reason: "the kernel's BTF has no struct tcp_sock" };
  const place = (slot: keyof typeof SLOT, ...names: string[]): CounterField | string => {
    for (const name of names) {
      const m = btf.member(tcpSock, name);
      if (!m) continue;
      if (m.bitfieldSize !== 0 || m.bitOffset % 8 !== 0) return `tcp_sock.${name} is a bit field`;
      if (m.size !== 4 && m.size !== 8) return `tcp_sock.${name} is ${m.size} bytes`;
      if (m.size > SLOT[slot]) return `tcp_sock.${name} is ${m.size} bytes, wider than expected`;
      return { member: name, offset: m.bitOffset / 8, size: m.size };
    }
    return `struct tcp_sock has no ${names.join(" or ")}`;
  };
  const bytesSent = place("bytesSent", "bytes_sent", "bytes_acked");
  const bytesReceived = place("bytesReceived", "bytes_received");
  const segsOut = place("segsOut", "segs_out");
  const segsIn = place("segsIn", "segs_in");
  for (const p of [bytesSent, bytesReceived, segsOut, segsIn]) if (typeof p === "string") return { ok: false, reason: p };
  return {
    ok: true,
    bytesSent: bytesSent as CounterField,
    bytesReceived: bytesReceived as CounterField,
    segsOut: segsOut as CounterField,
    segsIn: segsIn as CounterField,
  };
}
