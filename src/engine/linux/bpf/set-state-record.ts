/**
 * The record the set-state program writes for each TCP state change, and its decoder.
 *
 * The layout is this project's own (the program builds it on its stack from the tracepoint's
 * fields and the per-socket owner), fixed whatever the kernel's tracepoint layout, so one
 * decoder serves every kernel. Integers are in the machine's byte order (the program stores
 * them as the kernel hands them); addresses are in network order; ports are host order (the
 * tracepoint converts them).
 *
 *   off size
 *     0  8  kernel time, ns (bpf_ktime_get_ns: CLOCK_MONOTONIC)
 *     8  8  socket address (struct sock *) — identity while the socket lives
 *    16  4  old state (kernel number)
 *    20  4  new state
 *    24  2  local port
 *    26  2  remote port
 *    28  2  address family (2 AF_INET, 10 AF_INET6)
 *    30  2  protocol (6 TCP)
 *    32 16  local address (IPv4 in the first 4 bytes)
 *    48 16  remote address
 *    64 40  owner: the layout of the owner map's values, copied as is
 *       64  4  tgid (the process id)      68  4  tid (thread)
 *       72  4  uid                        76  4  gid
 *       80 16  comm, NUL-padded
 *       96  4  owner source (OwnerSource)
 *      100  4  zero
 *   104 28  counters, read from the socket (struct tcp_sock) at the change
 *      104  8  bytes sent (tcp_info's bytes_sent, or bytes_acked before 4.19)
 *      112  8  bytes received
 *      120  4  segments out                124  4  segments in
 *      128  4  1 when read; 0 when the program reads none (no BTF) or a read failed
 *   132  4  the socket's network namespace inode (sk->__sk_common.skc_net->ns.inum), read from the
 *           socket at the change; 0 when the program reads none (no BTF) or the read failed
 *   136     total
 */
import { DecodeError } from "../../../errors.ts";
import { formatIPv4, formatIPv6 } from "../../../net/address.ts";
import type { TcpState } from "../../../model/endpoint.ts";
import { KERNEL_TCP_STATES } from "../sock-diag-codec.ts";

export const RECORD = {
  KTIME: 0,
  SKADDR: 8,
  OLDSTATE: 16,
  NEWSTATE: 20,
  SPORT: 24,
  DPORT: 26,
  FAMILY: 28,
  PROTOCOL: 30,
  SADDR: 32,
  DADDR: 48,
  OWNER: 64,
  COUNTERS: 104,
  NETNS: 132,
  SIZE: 136,
} as const;

/** The counter block, relative to its start. */
export const COUNTERS = {
  BYTES_SENT: 0,
  BYTES_RECEIVED: 8,
  SEGS_OUT: 16,
  SEGS_IN: 20,
  READ: 24,
  SIZE: 28,
} as const;

/** The owner block, relative to its start (the owner map's value has the same layout). */
export const OWNER = {
  TGID: 0,
  TID: 4,
  UID: 8,
  GID: 12,
  COMM: 16,
  COMM_SIZE: 16,
  SOURCE: 32,
  SIZE: 40,
} as const;

/** How the program learnt a socket's process (0 = it did not). */
export const OWNER_SOURCE = {
  none: 0,
  /** The connect() that moved the socket from CLOSE to SYN_SENT ran in the process. */
  connect: 1,
  /** The listen() that moved it to LISTEN. */
  listen: 2,
  /** An accepted socket takes its listener's process (looked up by the listener's address). */
  listener: 3,
  /** Known only from the local close (the socket predates the sensor, or its start was missed). */
  close: 4,
} as const;
export type OwnerSource = Exclude<keyof typeof OWNER_SOURCE, "none">;
const SOURCE_NAMES = new Map<number, OwnerSource>(
  (Object.entries(OWNER_SOURCE) as [keyof typeof OWNER_SOURCE, number][])
    .filter(([name]) => name !== "none")
    .map(([name, code]) => [code, name as OwnerSource]),
);

export const AF_INET = 2;
export const AF_INET6 = 10;

/** One TCP state change as the sensor saw it. */
export interface SetStateRecord {
  /** CLOCK_MONOTONIC time of the change, in nanoseconds. */
  kernelTimeNs: bigint;
  /** Kernel address of the socket: the same value for every change of one socket. */
  socket: bigint;
  /** The states by the project's names (TCP_NEW_SYN_RECV reads as SYN_RECV); null for a number unknown here. */
  oldState: TcpState | null;
  newState: TcpState | null;
  /** The kernel's numbers, for states newer than this code. */
  oldStateCode: number;
  newStateCode: number;
  family: 4 | 6;
  protocol: number;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** The owning process (tgid), null when the program did not learn one. */
  pid: number | null;
  /** The thread that made the change in process context (equal to pid for a single-threaded program). */
  tid: number | null;
  uid: number | null;
  gid: number | null;
  /** The kernel's task name (at most 15 bytes): text a process chose, untrusted. */
  comm: string | null;
  ownerSource: OwnerSource | null;
  /** The socket's counters at the change; null when they could not be read. */
  counters: SocketCounters | null;
  /** The socket's own network namespace inode; null when the program could not read it. */
  netns: number | null;
}

/** A TCP socket's counters, with tcp_info's meanings (as sock_diag reports them). */
export interface SocketCounters {
  bytesSent: number;
  bytesReceived: number;
  packetsSent: number;
  packetsReceived: number;
}

const decoder = new TextDecoder("utf-8");

function stateName(code: number): TcpState | null {
  return KERNEL_TCP_STATES[code] ?? null;
}

/**
 * Decodes one record. `littleEndian` is the byte order of the machine that wrote it (the
 * running one, unless a recording says otherwise).
 */
export function decodeSetStateRecord(bytes: Uint8Array, littleEndian = true): SetStateRecord {
  if (bytes.length < RECORD.SIZE) {
    throw new DecodeError(`set-state record is ${bytes.length} bytes, expected ${RECORD.SIZE}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, RECORD.SIZE);
  const familyCode = view.getUint16(RECORD.FAMILY, littleEndian);
  if (familyCode !== AF_INET && familyCode !== AF_INET6) {
    throw new DecodeError(`set-state record has address family ${familyCode}, expected ${AF_INET} or ${AF_INET6}`);
  }
  const family = familyCode === AF_INET ? 4 : 6;
  const address = (offset: number) => (family === 4 ? formatIPv4(bytes, offset) : formatIPv6(bytes, offset));
  const oldStateCode = view.getUint32(RECORD.OLDSTATE, littleEndian);
  const newStateCode = view.getUint32(RECORD.NEWSTATE, littleEndian);

  const owner = RECORD.OWNER;
  const sourceCode = view.getUint32(owner + OWNER.SOURCE, littleEndian);
  const ownerSource = SOURCE_NAMES.get(sourceCode) ?? null;
  if (sourceCode !== OWNER_SOURCE.none && ownerSource === null) {
    throw new DecodeError(`set-state record has owner source ${sourceCode}, which no program version writes`);
  }
  const known = ownerSource !== null;
  let comm: string | null = null;
  if (known) {
    const raw = bytes.subarray(owner + OWNER.COMM, owner + OWNER.COMM + OWNER.COMM_SIZE);
    const end = raw.indexOf(0);
    comm = decoder.decode(end < 0 ? raw : raw.subarray(0, end));
  }
  return {
    kernelTimeNs: view.getBigUint64(RECORD.KTIME, littleEndian),
    socket: view.getBigUint64(RECORD.SKADDR, littleEndian),
    oldState: stateName(oldStateCode),
    newState: stateName(newStateCode),
    oldStateCode,
    newStateCode,
    family,
    protocol: view.getUint16(RECORD.PROTOCOL, littleEndian),
    localAddress: address(RECORD.SADDR),
    localPort: view.getUint16(RECORD.SPORT, littleEndian),
    remoteAddress: address(RECORD.DADDR),
    remotePort: view.getUint16(RECORD.DPORT, littleEndian),
    pid: known ? view.getUint32(owner + OWNER.TGID, littleEndian) : null,
    tid: known ? view.getUint32(owner + OWNER.TID, littleEndian) : null,
    uid: known ? view.getUint32(owner + OWNER.UID, littleEndian) : null,
    gid: known ? view.getUint32(owner + OWNER.GID, littleEndian) : null,
    comm,
    ownerSource,
    counters: decodeCounters(view, littleEndian),
    // No namespace has inode 0: it is the program's "not read".
    netns: view.getUint32(RECORD.NETNS, littleEndian) || null,
  };
}

function decodeCounters(view: DataView, littleEndian: boolean): SocketCounters | null {
  const at = RECORD.COUNTERS;
  const read = view.getUint32(at + COUNTERS.READ, littleEndian);
  if (read === 0) return null;
  if (read !== 1) throw new DecodeError(`set-state record has counter flag ${read}, which no program version writes`);
  return {
    // 2^53 bytes is beyond any socket's life: Number keeps them exact.
    bytesSent: Number(view.getBigUint64(at + COUNTERS.BYTES_SENT, littleEndian)),
    bytesReceived: Number(view.getBigUint64(at + COUNTERS.BYTES_RECEIVED, littleEndian)),
    packetsSent: view.getUint32(at + COUNTERS.SEGS_OUT, littleEndian),
    packetsReceived: view.getUint32(at + COUNTERS.SEGS_IN, littleEndian),
  };
}

/** The socket address as text, for maps keyed by socket and for logs. */
export function socketKey(socket: bigint): string {
  return `0x${socket.toString(16)}`;
}
