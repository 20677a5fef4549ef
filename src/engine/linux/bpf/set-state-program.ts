/**
 * The eBPF program on `sock:inet_sock_set_state`: one record (set-state-record.ts) per TCP state
 * change, with the process that owns the socket.
 *
 * Why the owner is kept in a map: the tracepoint fires in whatever task is running. Only a few
 * changes run in the owning process's own system call — connect (CLOSE→SYN_SENT), listen
 * (CLOSE→LISTEN) and the local close (→FIN_WAIT1, CLOSE_WAIT→LAST_ACK); the rest run in softirq,
 * often in an unrelated task (on loopback, in the peer's). So the program takes the current
 * task's identity only at connect and listen, keeps it per socket address in a hash map, copies
 * it into every later record of that socket, and drops it at CLOSE. A socket first seen at its
 * local close (it predates the sensor) takes the closing task.
 *
 * Accepted sockets: the child socket is born in softirq as a copy of its listener; its first
 * change is →SYN_RECV, with the listener's port and either the listener's local address or
 * already its own (6.18 shows its own: a listener on 0.0.0.0 has children on 127.0.0.1). At
 * LISTEN the program also files the listener's owner under (local port, family, local address)
 * in a second map; a child's first change looks its listener up there, exactly, then with the
 * wildcard address, and keeps the result as its own owner.
 *
 * Namespaces: the tracepoint names none, but the socket knows its own (sk->__sk_common.skc_net
 * → struct net → ns.inum). Where the kernel's BTF says where those are (netns-fields.ts), every
 * record carries that inode, read with two probe reads, and the listener map is keyed by it too,
 * so same-port listeners of two namespaces keep apart and each accepted socket takes its own
 * namespace's listener. Without BTF the inode is 0 everywhere: one entry per address and port,
 * the last listener's, and the consumer places sockets by their processes instead.
 *
 * Reading the context: the verifier refuses loads below offset 8 and misaligned loads, and the
 * field offsets differ between kernels (protocol u8 before 5.6, u16 since, moving the addresses
 * by one byte), so every field is copied to the stack with the widest loads its offset allows,
 * down to single bytes, at offsets read from the format file.
 *
 * Counters: where the kernel's BTF says where struct tcp_sock keeps them (tcp-counter-fields.ts),
 * every record carries the socket's byte and segment counts, read with bpf_probe_read_kernel
 * (bpf_probe_read before 5.5) from the socket address the tracepoint gives. Every change is read,
 * not only the closing ones: it costs four helper calls, and the close that matters (a reset in
 * softirq, a FIN_WAIT2 socket replaced by its timewait twin) is not always recognisable here.
 */
import { Assembler, HELPER, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, isLittleEndianHost, type Size } from "./assembler.ts";
import type { FieldPlace, SetStateLayout } from "./tracepoint-format.ts";
import { AF_INET6, COUNTERS, OWNER, OWNER_SOURCE, RECORD } from "./set-state-record.ts";
import { IPPROTO_TCP, kernelTcpState } from "../sock-diag-codec.ts";
import type { CounterField } from "./tcp-counter-fields.ts";
import type { NetnsFields } from "./netns-fields.ts";

export { HELPER } from "./assembler.ts";

const TCP_SYN_SENT = kernelTcpState("SYN_SENT");
const TCP_SYN_RECV = kernelTcpState("SYN_RECV");
const TCP_FIN_WAIT1 = kernelTcpState("FIN_WAIT1");
const TCP_CLOSE = kernelTcpState("CLOSE");
const TCP_LAST_ACK = kernelTcpState("LAST_ACK");
const TCP_LISTEN = kernelTcpState("LISTEN");

/** Counters the program keeps in its counter map, by index. */
export const COUNTER = {
  /** Records the output (ring or perf buffer) had no room for. */
  lostRecords: 0,
  /** Sockets whose owner could not be stored (the owner map was full). */
  ownerMapFull: 1,
  /** Listeners that could not be filed (the listener map was full). */
  listenerMapFull: 2,
} as const;
export const COUNTER_COUNT = 3;

/** Sizes of the maps' keys and values, for the loader to create them. */
export const OWNER_KEY_SIZE = 8;
export const OWNER_VALUE_SIZE = OWNER.SIZE;
/**
 * Listener key: network namespace inode (u32, 0 when not read), family (u16), local port (u16),
 * local address (16 bytes, IPv4 in the first 4).
 */
export const LISTENER_KEY_SIZE = 24;
/** Listener value: the owner block, then the listener's socket address (so only it removes its entry). */
export const LISTENER_VALUE_SIZE = OWNER.SIZE + 8;
const LISTENER_SKADDR = OWNER.SIZE;

export interface SetStateMaps {
  /** Hash map: socket address → owner block. */
  owners: number;
  /** Hash map: listener key → owner block + listener socket address. */
  listeners: number;
  /** Array map of COUNTER_COUNT u64 counters. */
  counters: number;
  /** Where records go: a BPF ring buffer (5.8+) or a perf event array (one buffer per CPU). */
  output: { kind: "ringbuf" | "perf"; fd: number };
}

// Stack frame (offsets from r10). Everything the program reads from the stack is zeroed first,
// as the verifier requires, and so that narrow fields leave no stale bytes in the record.
const REC = -RECORD.SIZE; // -136
const SKKEY = REC - 8; // -144
const LKEY = SKKEY - 24; // -168
const LVAL = LKEY - LISTENER_VALUE_SIZE; // -216
const CTRKEY = LVAL - 8; // -224
/** The socket's struct net pointer, on its way to the namespace inode. */
const NETPTR = CTRKEY - 8; // -232
const FRAME_BOTTOM = NETPTR;

const BPF_ANY = 0;
/** perf_event_output flag: the buffer of the CPU the program runs on. */
const BPF_F_CURRENT_CPU = 0xffff_ffff;

const CHUNKS: readonly [number, Size][] = [
  [8, "dw"],
  [4, "w"],
  [2, "h"],
  [1, "b"],
];

function aligned(offset: number, size: number): boolean {
  return ((offset % size) + size) % size === 0;
}

/** The socket's counters to read at each change, and the helper that reads kernel memory. */
export interface CounterReads {
  bytesSent: CounterField;
  bytesReceived: CounterField;
  segsOut: CounterField;
  segsIn: CounterField;
  helper: typeof HELPER.probeReadKernel | typeof HELPER.probeRead;
}

/** Where the socket's namespace inode is, and the helper that reads kernel memory. */
export type NetnsReads = Omit<Extract<NetnsFields, { ok: true }>, "ok"> & { helper: CounterReads["helper"] };

export interface BuildOptions {
  littleEndian?: boolean;
  /** Without them the record's counters say "not read" (null). */
  counters?: CounterReads | null;
  /** Without them the record's namespace is 0 ("not read") and listeners are keyed without one. */
  netns?: NetnsReads | null;
}

export interface BuiltProgram {
  assembler: Assembler;
  /** The encoded instructions for BPF_PROG_LOAD. */
  bytes: Buffer;
  /** Instructions (8-byte slots). */
  instructionCount: number;
}

/** Assembles the program for the given field layout and map file descriptors. */
export function buildSetStateProgram(layout: SetStateLayout, maps: SetStateMaps, options: BuildOptions = {}): BuiltProgram {
  const littleEndian = options.littleEndian ?? isLittleEndianHost();
  const a = new Assembler();
  let labelCount = 0;
  const unique = (name: string) => `${name}_${labelCount++}`;

  /**
   * Copies a context field to the stack, `slotSize` bytes wide there (≥ the field): a narrower
   * field goes to the slot's low-order end, which depends on the byte order.
   */
  const copyField = (field: FieldPlace, stackOffset: number, slotSize = field.size) => {
    const dst = littleEndian ? stackOffset : stackOffset + (slotSize - field.size);
    let done = 0;
    while (done < field.size) {
      const left = field.size - done;
      const [width, size] = CHUNKS.find(([w]) => w <= left && aligned(field.offset + done, w) && aligned(dst + done, w))!;
      a.ldx(size, R1, R6, field.offset + done).stx(size, R10, dst + done, R1);
      done += width;
    }
  };

  const copyStack = (from: number, to: number, bytes: number) => {
    for (let i = 0; i < bytes; i += 8) a.ldx("dw", R1, R10, from + i).stx("dw", R10, to + i, R1);
  };

  const count = (index: number) => {
    const skip = unique("count_done");
    a.st("w", R10, CTRKEY, index)
      .ldMapFd(R1, maps.counters)
      .mov64Reg(R2, R10)
      .alu64Imm("add", R2, CTRKEY)
      .call(HELPER.mapLookupElem)
      .jmpImm("jeq", R0, 0, skip)
      .mov64Imm(R1, 1)
      .atomicAdd("dw", R0, 0, R1)
      .label(skip);
  };

  /** Fills the listener key from the record's namespace and local side; `wildcard` leaves the address zero. */
  const listenerKey = (wildcard: boolean) => {
    a.ldx("w", R1, R10, REC + RECORD.NETNS).stx("w", R10, LKEY, R1);
    a.ldx("h", R1, R10, REC + RECORD.FAMILY).stx("h", R10, LKEY + 4, R1);
    a.ldx("h", R1, R10, REC + RECORD.SPORT).stx("h", R10, LKEY + 6, R1);
    for (let i = 0; i < 16; i += 4) {
      if (wildcard) a.st("w", R10, LKEY + 8 + i, 0);
      else a.ldx("w", R1, R10, REC + RECORD.SADDR + i).stx("w", R10, LKEY + 8 + i, R1);
    }
  };

  /**
   * The socket's namespace inode: the struct net pointer, then its ns.inum. A failed read leaves
   * 0 ("not read"): the probe helpers zero their destination on failure.
   */
  const readNetns = (reads: NetnsReads) => {
    a.mov64Reg(R1, R10)
      .alu64Imm("add", R1, NETPTR)
      .mov64Imm(R2, 8)
      .mov64Reg(R3, R7)
      .alu64Imm("add", R3, reads.netPointer)
      .call(reads.helper)
      .jmpImm("jne", R0, 0, "netns_done")
      .ldx("dw", R3, R10, NETPTR)
      .jmpImm("jeq", R3, 0, "netns_done")
      .alu64Imm("add", R3, reads.inum)
      .mov64Reg(R1, R10)
      .alu64Imm("add", R1, REC + RECORD.NETNS)
      .mov64Imm(R2, reads.inumSize)
      .call(reads.helper)
      .label("netns_done");
  };

  const lookup = (mapFd: number, keyOffset: number) => {
    a.ldMapFd(R1, mapFd).mov64Reg(R2, R10).alu64Imm("add", R2, keyOffset).call(HELPER.mapLookupElem);
  };

  /**
   * The socket's counters, read from the socket itself at every change (at CLOSE it is already
   * unhashed, out of sock_diag's reach). A failed read leaves the flag 0: counters unknown.
   */
  const readCounters = (reads: CounterReads) => {
    const base = REC + RECORD.COUNTERS;
    const places: [CounterField, number, number][] = [
      [reads.bytesSent, COUNTERS.BYTES_SENT, 8],
      [reads.bytesReceived, COUNTERS.BYTES_RECEIVED, 8],
      [reads.segsOut, COUNTERS.SEGS_OUT, 4],
      [reads.segsIn, COUNTERS.SEGS_IN, 4],
    ];
    for (const [field, at, slot] of places) {
      // A narrower member goes to the slot's low-order end.
      const dst = base + at + (littleEndian ? 0 : slot - field.size);
      a.mov64Reg(R1, R10)
        .alu64Imm("add", R1, dst)
        .mov64Imm(R2, field.size)
        .mov64Reg(R3, R7)
        .alu64Imm("add", R3, field.offset)
        .call(reads.helper)
        .jmpImm("jne", R0, 0, "counters_done");
    }
    a.st("w", R10, base + COUNTERS.READ, 1).label("counters_done");
  };

  // r6 = context for the whole program; r7 = socket address, r8 = new state, r9 = old state.
  a.mov64Reg(R6, R1);
  for (let off = FRAME_BOTTOM; off < 0; off += 8) a.st("dw", R10, off, 0);

  copyField(layout.protocol, REC + RECORD.PROTOCOL, 2);
  a.ldx("h", R0, R10, REC + RECORD.PROTOCOL).jmpImm("jne", R0, IPPROTO_TCP, "out");

  a.call(HELPER.ktimeGetNs).stx("dw", R10, REC + RECORD.KTIME, R0);
  copyField(layout.skaddr, REC + RECORD.SKADDR);
  copyField(layout.oldstate, REC + RECORD.OLDSTATE);
  copyField(layout.newstate, REC + RECORD.NEWSTATE);
  copyField(layout.sport, REC + RECORD.SPORT);
  copyField(layout.dport, REC + RECORD.DPORT);
  copyField(layout.family, REC + RECORD.FAMILY);
  // The tracepoint fills both address pairs (v4-mapped for IPv6 sockets); the record keeps the
  // family's own.
  a.ldx("h", R0, R10, REC + RECORD.FAMILY).jmpImm("jeq", R0, AF_INET6, "v6");
  copyField(layout.saddr, REC + RECORD.SADDR);
  copyField(layout.daddr, REC + RECORD.DADDR);
  a.ja("addresses_done").label("v6");
  copyField(layout.saddrV6, REC + RECORD.SADDR);
  copyField(layout.daddrV6, REC + RECORD.DADDR);
  a.label("addresses_done");

  a.ldx("dw", R7, R10, REC + RECORD.SKADDR)
    .stx("dw", R10, SKKEY, R7)
    .ldx("w", R8, R10, REC + RECORD.NEWSTATE)
    .ldx("w", R9, R10, REC + RECORD.OLDSTATE);
  // Before anything keyed by it: the listener map is per namespace.
  if (options.netns) readNetns(options.netns);

  const source = REC + RECORD.OWNER + OWNER.SOURCE;
  // connect: CLOSE → SYN_SENT
  a.jmpImm("jne", R8, TCP_SYN_SENT, "not_connect")
    .jmpImm("jne", R9, TCP_CLOSE, "not_connect")
    .st("w", R10, source, OWNER_SOURCE.connect)
    .ja("take_current")
    .label("not_connect");
  // listen: → LISTEN
  a.jmpImm("jne", R8, TCP_LISTEN, "not_listen").st("w", R10, source, OWNER_SOURCE.listen).ja("take_current").label("not_listen");
  // An accepted child's first change (→SYN_RECV, except a simultaneous open from SYN_SENT).
  a.jmpImm("jne", R8, TCP_SYN_RECV, "known_owner").jmpImm("jeq", R9, TCP_SYN_SENT, "known_owner");
  listenerKey(false);
  lookup(maps.listeners, LKEY);
  a.jmpImm("jne", R0, 0, "listener_found");
  listenerKey(true);
  lookup(maps.listeners, LKEY);
  a.jmpImm("jeq", R0, 0, "known_owner").label("listener_found");
  for (let i = 0; i < OWNER.SIZE; i += 8) a.ldx("dw", R1, R0, i).stx("dw", R10, REC + RECORD.OWNER + i, R1);
  a.st("w", R10, source, OWNER_SOURCE.listener).ja("store_owner");

  // Every other change: the owner filed earlier, if any.
  a.label("known_owner");
  lookup(maps.owners, SKKEY);
  a.jmpImm("jeq", R0, 0, "no_owner");
  for (let i = 0; i < OWNER.SIZE; i += 8) a.ldx("dw", R1, R0, i).stx("dw", R10, REC + RECORD.OWNER + i, R1);
  a.ja("emit");
  a.label("no_owner")
    .jmpImm("jeq", R8, TCP_FIN_WAIT1, "local_close")
    .jmpImm("jeq", R8, TCP_LAST_ACK, "local_close")
    .ja("emit")
    .label("local_close")
    .st("w", R10, source, OWNER_SOURCE.close);

  // The current task, in whose system call this change runs.
  a.label("take_current")
    .call(HELPER.getCurrentPidTgid)
    .stx("w", R10, REC + RECORD.OWNER + OWNER.TID, R0)
    .alu64Imm("rsh", R0, 32)
    .stx("w", R10, REC + RECORD.OWNER + OWNER.TGID, R0)
    .call(HELPER.getCurrentUidGid)
    .stx("w", R10, REC + RECORD.OWNER + OWNER.UID, R0)
    .alu64Imm("rsh", R0, 32)
    .stx("w", R10, REC + RECORD.OWNER + OWNER.GID, R0)
    .mov64Reg(R1, R10)
    .alu64Imm("add", R1, REC + RECORD.OWNER + OWNER.COMM)
    .mov64Imm(R2, OWNER.COMM_SIZE)
    .call(HELPER.getCurrentComm);

  // Kept for the socket's later changes, which run in softirq.
  a.label("store_owner")
    .ldMapFd(R1, maps.owners)
    .mov64Reg(R2, R10)
    .alu64Imm("add", R2, SKKEY)
    .mov64Reg(R3, R10)
    .alu64Imm("add", R3, REC + RECORD.OWNER)
    .mov64Imm(R4, BPF_ANY)
    .call(HELPER.mapUpdateElem)
    .jmpImm("jeq", R0, 0, "owner_stored");
  count(COUNTER.ownerMapFull);
  a.label("owner_stored").jmpImm("jne", R8, TCP_LISTEN, "emit");

  // A new listener: file its owner under its local address for the sockets it will accept.
  listenerKey(false);
  copyStack(REC + RECORD.OWNER, LVAL, OWNER.SIZE);
  a.stx("dw", R10, LVAL + LISTENER_SKADDR, R7)
    .ldMapFd(R1, maps.listeners)
    .mov64Reg(R2, R10)
    .alu64Imm("add", R2, LKEY)
    .mov64Reg(R3, R10)
    .alu64Imm("add", R3, LVAL)
    .mov64Imm(R4, BPF_ANY)
    .call(HELPER.mapUpdateElem)
    .jmpImm("jeq", R0, 0, "emit");
  count(COUNTER.listenerMapFull);

  a.label("emit");
  if (options.counters) readCounters(options.counters);
  if (maps.output.kind === "ringbuf") {
    a.ldMapFd(R1, maps.output.fd)
      .mov64Reg(R2, R10)
      .alu64Imm("add", R2, REC)
      .mov64Imm(R3, RECORD.SIZE)
      .mov64Imm(R4, 0)
      .call(HELPER.ringbufOutput);
  } else {
    a.mov64Reg(R1, R6)
      .ldMapFd(R2, maps.output.fd)
      .mov32Imm(R3, BPF_F_CURRENT_CPU)
      .mov64Reg(R4, R10)
      .alu64Imm("add", R4, REC)
      .mov64Imm(R5, RECORD.SIZE)
      .call(HELPER.perfEventOutput);
  }
  a.jmpImm("jeq", R0, 0, "emitted");
  count(COUNTER.lostRecords);
  a.label("emitted");

  // CLOSE ends the socket: its owner goes, and a closing listener takes its entry with it
  // (only its own: another namespace's listener may have filed the same key since).
  a.jmpImm("jne", R8, TCP_CLOSE, "out")
    .ldMapFd(R1, maps.owners)
    .mov64Reg(R2, R10)
    .alu64Imm("add", R2, SKKEY)
    .call(HELPER.mapDeleteElem)
    .jmpImm("jne", R9, TCP_LISTEN, "out");
  listenerKey(false);
  lookup(maps.listeners, LKEY);
  a.jmpImm("jeq", R0, 0, "out")
    .ldx("dw", R1, R0, LISTENER_SKADDR)
    .jmpReg("jne", R1, R7, "out")
    .ldMapFd(R1, maps.listeners)
    .mov64Reg(R2, R10)
    .alu64Imm("add", R2, LKEY)
    .call(HELPER.mapDeleteElem);

  a.label("out").mov64Imm(R0, 0).exit();
  return { assembler: a, bytes: a.assemble(littleEndian), instructionCount: a.length };
}
