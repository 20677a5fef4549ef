/**
 * The set-state program run in a small interpreter (helpers/bpf-interpreter.ts) on made-up
 * tracepoint records of both layouts the kernel has had: the same record comes out of each; the
 * owner is taken only in process context and carried to every later change, including the last;
 * accepted sockets take their listener's process; counters count what could not be kept or sent.
 * The interpreter enforces the verifier's context rules (aligned, not below offset 8), which the
 * older layout's odd offsets put to the test. The real kernel's verdict is in
 * test/e2e/bpf-sensor.test.ts.
 */
import { describe, expect, test } from "vitest";
import { BpfInterpreter, type Task } from "./helpers/bpf-interpreter.ts";
import {
  COUNTER,
  COUNTER_COUNT,
  LISTENER_KEY_SIZE,
  LISTENER_VALUE_SIZE,
  OWNER_KEY_SIZE,
  OWNER_VALUE_SIZE,
  HELPER,
  buildSetStateProgram,
  type CounterReads,
  type NetnsReads,
} from "../../src/engine/linux/bpf/set-state-program.ts";
import { decodeSetStateRecord, type SetStateRecord } from "../../src/engine/linux/bpf/set-state-record.ts";
import { parseTracepointFormat, setStateLayout, type SetStateLayout } from "../../src/engine/linux/bpf/tracepoint-format.ts";
import { FORMAT_6_18, FORMAT_BEFORE_5_6 } from "../fixtures/bpf/set-state-formats.ts";

const LAYOUTS: [string, SetStateLayout][] = [
  ["5.6+ layout", setStateLayout(parseTracepointFormat(FORMAT_6_18))],
  ["pre-5.6 layout", setStateLayout(parseTracepointFormat(FORMAT_BEFORE_5_6))],
];

const S = { ESTABLISHED: 1, SYN_SENT: 2, SYN_RECV: 3, FIN_WAIT1: 4, FIN_WAIT2: 5, CLOSE: 7, CLOSE_WAIT: 8, LAST_ACK: 9, LISTEN: 10 } as const;
type StateName = keyof typeof S;

interface Change {
  skaddr: bigint;
  from: StateName;
  to: StateName;
  family?: 4 | 6;
  protocol?: number;
  local: [string, number];
  remote: [string, number];
}

const v4 = (text: string) => text.split(".").map(Number);
/** Just enough IPv6 for the test's addresses (`::1`, `::`, `fd00::N`). */
const v6 = (text: string) => {
  const bytes = new Array<number>(16).fill(0);
  if (text === "::1") bytes[15] = 1;
  const m = /^fd00::(\d+)$/.exec(text);
  if (m) {
    bytes[0] = 0xfd;
    bytes[15] = Number(m[1]);
  }
  return bytes;
};

/** A tracepoint record laid out as `layout` says, as the kernel would fill it. */
function context(layout: SetStateLayout, c: Change): Uint8Array {
  const size = Math.max(...Object.values(layout).map((f) => f.offset + f.size));
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, 0x1234, true); // common_type: the program must never read it
  view.setBigUint64(layout.skaddr.offset, c.skaddr, true);
  view.setInt32(layout.oldstate.offset, S[c.from], true);
  view.setInt32(layout.newstate.offset, S[c.to], true);
  view.setUint16(layout.sport.offset, c.local[1], true);
  view.setUint16(layout.dport.offset, c.remote[1], true);
  const family = c.family ?? 4;
  view.setUint16(layout.family.offset, family === 4 ? 2 : 10, true);
  if (layout.protocol.size === 1) view.setUint8(layout.protocol.offset, c.protocol ?? 6);
  else view.setUint16(layout.protocol.offset, c.protocol ?? 6, true);
  if (family === 4) {
    bytes.set(v4(c.local[0]), layout.saddr.offset);
    bytes.set(v4(c.remote[0]), layout.daddr.offset);
    // The kernel fills the IPv6 fields with the mapped form; the program must not take them.
    bytes.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4(c.local[0])], layout.saddrV6.offset);
    bytes.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4(c.remote[0])], layout.daddrV6.offset);
  } else {
    bytes.set([9, 9, 9, 9], layout.saddr.offset);
    bytes.set([9, 9, 9, 9], layout.daddr.offset);
    bytes.set(v6(c.local[0]), layout.saddrV6.offset);
    bytes.set(v6(c.remote[0]), layout.daddrV6.offset);
  }
  return bytes;
}

/** Where kernel 6.18 (x86-64) keeps the counters in struct tcp_sock, as its BTF says. */
const TCP_SOCK_6_18 = {
  bytesSent: { member: "bytes_sent", offset: 1544, size: 8 },
  bytesReceived: { member: "bytes_received", offset: 1752, size: 8 },
  segsOut: { member: "segs_out", offset: 1536, size: 4 },
  segsIn: { member: "segs_in", offset: 1760, size: 4 },
};

/** A struct tcp_sock's bytes with the four counters at TCP_SOCK_6_18's places, the rest filler. */
function tcpSock(c: { bytesSent: bigint; bytesReceived: bigint; segsOut: number; segsIn: number }): Uint8Array {
  const bytes = new Uint8Array(2304).fill(0xa5);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(TCP_SOCK_6_18.bytesSent.offset, c.bytesSent, true);
  view.setBigUint64(TCP_SOCK_6_18.bytesReceived.offset, c.bytesReceived, true);
  view.setUint32(TCP_SOCK_6_18.segsOut.offset, c.segsOut, true);
  view.setUint32(TCP_SOCK_6_18.segsIn.offset, c.segsIn, true);
  return bytes;
}

const CLIENT: Task = { tgid: 4242, tid: 4243, uid: 1000, gid: 100, comm: "beacon" };
const SERVER: Task = { tgid: 77, tid: 77, uid: 33, gid: 33, comm: "sw-listener" };
const OTHER: Task = { tgid: 9999, tid: 9999, uid: 0, gid: 0, comm: "ksoftirqd/1" };

/** Where kernel 6.18 (x86-64) keeps a socket's struct net pointer and the namespace's inode, as its BTF says. */
const NETNS_6_18 = { netPointer: 48, inum: 176, inumSize: 4 as const };

/** A socket's first bytes (struct sock_common) pointing at `net`, and a struct net with inode `inode` there. */
function placeInNamespace(vm: BpfInterpreter, sk: bigint, net: bigint, inode: number): void {
  const sock = new Uint8Array(256).fill(0x5a);
  new DataView(sock.buffer).setBigUint64(NETNS_6_18.netPointer, net, true);
  vm.kernelObject(sk, sock);
  const netBytes = new Uint8Array(512).fill(0x3c);
  new DataView(netBytes.buffer).setUint32(NETNS_6_18.inum, inode, true);
  vm.kernelObject(net, netBytes);
}

function sensor(layout: SetStateLayout, output: "ringbuf" | "perf" = "ringbuf", owners = 64, counters: CounterReads | null = null, netns: NetnsReads | null = null) {
  const built = buildSetStateProgram(layout, { owners: 3, listeners: 4, counters: 5, output: { kind: output, fd: 6 } }, { counters, netns });
  const vm = new BpfInterpreter(built.bytes);
  const maps = {
    owners: vm.hashMap(3, OWNER_KEY_SIZE, OWNER_VALUE_SIZE, owners),
    listeners: vm.hashMap(4, LISTENER_KEY_SIZE, LISTENER_VALUE_SIZE, 64),
    counters: vm.arrayMap(5, 8, COUNTER_COUNT),
    output: vm.outputMap(6),
  };
  const contextLoads: { offset: number; size: number }[] = [];
  const change = (c: Change, task: Task): SetStateRecord | null => {
    const before = maps.output.records.length;
    const result = vm.run(context(layout, c), task);
    expect(result.r0).toBe(0n);
    contextLoads.push(...result.contextLoads);
    return maps.output.records.length > before ? decodeSetStateRecord(maps.output.records.at(-1)!) : null;
  };
  const counter = (index: number) => new DataView(maps.counters.values[index]!.bytes.buffer).getBigUint64(0, true);
  return { built, vm, maps, change, counter, contextLoads };
}

const who = (r: SetStateRecord | null) => (r ? { pid: r.pid, tid: r.tid, uid: r.uid, gid: r.gid, comm: r.comm, ownerSource: r.ownerSource } : null);

describe.each(LAYOUTS)("%s", (_name, layout) => {
  test("a client connection: the connecting process on every change, including the last, whoever runs it", () => {
    const s = sensor(layout);
    const sk = 0xffff8881_0000_1000n;
    const remote: [string, number] = ["10.1.2.3", 443];
    const steps: [StateName, StateName, Task, [string, number]][] = [
      ["CLOSE", "SYN_SENT", CLIENT, ["192.168.1.5", 0]],
      ["SYN_SENT", "ESTABLISHED", OTHER, ["192.168.1.5", 51000]],
      ["ESTABLISHED", "FIN_WAIT1", CLIENT, ["192.168.1.5", 51000]],
      ["FIN_WAIT1", "FIN_WAIT2", OTHER, ["192.168.1.5", 51000]],
      ["FIN_WAIT2", "CLOSE", OTHER, ["192.168.1.5", 51000]],
    ];
    const records = steps.map(([from, to, task, local]) => s.change({ skaddr: sk, from, to, local, remote }, task)!);
    for (const r of records) {
      expect(who(r)).toEqual({ pid: 4242, tid: 4243, uid: 1000, gid: 100, comm: "beacon", ownerSource: "connect" });
      expect([r.family, r.protocol, r.localAddress, r.remoteAddress, r.remotePort]).toEqual([4, 6, "192.168.1.5", "10.1.2.3", 443]);
      expect(r.socket).toBe(sk);
    }
    expect(records.map((r) => `${r.oldState}->${r.newState}:${r.localPort}`)).toEqual([
      "CLOSE->SYN_SENT:0",
      "SYN_SENT->ESTABLISHED:51000",
      "ESTABLISHED->FIN_WAIT1:51000",
      "FIN_WAIT1->FIN_WAIT2:51000",
      "FIN_WAIT2->CLOSE:51000",
    ]);
    // Kernel times in order, one per record.
    expect(records.map((r) => r.kernelTimeNs)).toEqual([...records.map((r) => r.kernelTimeNs)].sort());
    // CLOSE dropped the entry.
    expect(s.maps.owners.entries.size).toBe(0);
  });

  test("IPv6: the family's own addresses", () => {
    const s = sensor(layout);
    const r = s.change({ skaddr: 1n, from: "CLOSE", to: "SYN_SENT", family: 6, local: ["fd00::5", 0], remote: ["fd00::9", 22] }, CLIENT)!;
    expect([r.family, r.localAddress, r.remoteAddress, r.remotePort]).toEqual([6, "fd00::5", "fd00::9", 22]);
  });

  test("an accepted socket takes its listener's process, by exact address or through a wildcard listener", () => {
    for (const listenAddress of ["10.0.0.1", "0.0.0.0"]) {
      const s = sensor(layout);
      const listener = 0xaaa0n;
      const listen = s.change({ skaddr: listener, from: "CLOSE", to: "LISTEN", local: [listenAddress, 8080], remote: ["0.0.0.0", 0] }, SERVER);
      expect(who(listen)).toMatchObject({ pid: 77, comm: "sw-listener", ownerSource: "listen" });
      expect(s.maps.listeners.entries.size).toBe(1);

      const child = 0xbbb0n;
      // The child is born in softirq, here in the client's task (as on loopback).
      const first = s.change({ skaddr: child, from: "LISTEN", to: "SYN_RECV", local: ["10.0.0.1", 8080], remote: ["10.0.0.2", 40000] }, CLIENT);
      const rest = (
        [
          ["SYN_RECV", "ESTABLISHED", CLIENT],
          ["ESTABLISHED", "CLOSE_WAIT", OTHER],
          ["CLOSE_WAIT", "LAST_ACK", SERVER],
          ["LAST_ACK", "CLOSE", OTHER],
        ] as [StateName, StateName, Task][]
      ).map(([from, to, task]) => s.change({ skaddr: child, from, to, local: ["10.0.0.1", 8080], remote: ["10.0.0.2", 40000] }, task));
      for (const r of [first, ...rest]) expect(who(r)).toEqual({ pid: 77, tid: 77, uid: 33, gid: 33, comm: "sw-listener", ownerSource: "listener" });
      expect(s.maps.owners.entries.size).toBe(1); // only the listener's own

      s.change({ skaddr: listener, from: "LISTEN", to: "CLOSE", local: [listenAddress, 8080], remote: ["0.0.0.0", 0] }, SERVER);
      expect(s.maps.listeners.entries.size).toBe(0);
      expect(s.maps.owners.entries.size).toBe(0);
    }
  });

  test("a closing listener removes only its own entry (another namespace's listener may have filed the same key since)", () => {
    const s = sensor(layout);
    const key = { local: ["0.0.0.0", 80] as [string, number], remote: ["0.0.0.0", 0] as [string, number] };
    s.change({ skaddr: 1n, from: "CLOSE", to: "LISTEN", ...key }, SERVER);
    s.change({ skaddr: 2n, from: "CLOSE", to: "LISTEN", ...key }, CLIENT);
    s.change({ skaddr: 1n, from: "LISTEN", to: "CLOSE", ...key }, SERVER);
    expect(s.maps.listeners.entries.size).toBe(1);
    const child = s.change({ skaddr: 3n, from: "LISTEN", to: "SYN_RECV", local: ["10.0.0.1", 80], remote: ["10.0.0.2", 5] }, OTHER);
    expect(who(child)).toMatchObject({ pid: 4242, ownerSource: "listener" });
  });

  test.each([
    ["bpf_probe_read_kernel", HELPER.probeReadKernel],
    ["bpf_probe_read (before 5.5)", HELPER.probeRead],
  ] as const)("every record carries its socket's namespace inode, read through skc_net with %s", (_name, helper) => {
    const s = sensor(layout, "ringbuf", 64, null, { ...NETNS_6_18, helper });
    const sk = 0xffff8881_0000_3000n;
    const net = 0xffff8882_0000_0000n;
    placeInNamespace(s.vm, sk, net, 4026532999);
    const addr = { local: ["10.0.0.1", 1000] as [string, number], remote: ["10.0.0.2", 2000] as [string, number] };
    expect(s.change({ skaddr: sk, from: "ESTABLISHED", to: "CLOSE", ...addr }, OTHER)!.netns).toBe(4026532999);
    expect(s.vm.probeReads).toEqual([
      { address: sk + 48n, size: 8, ok: true },
      { address: net + 176n, size: 4, ok: true },
    ]);
    // A socket whose memory cannot be read: namespace unknown, and the second read not tried.
    expect(s.change({ skaddr: 0xdead0000n, from: "ESTABLISHED", to: "CLOSE", ...addr }, OTHER)!.netns).toBeNull();
    expect(s.vm.probeReads).toHaveLength(3);
    // Without the reads: none made, namespace unknown.
    const plain = sensor(layout);
    plain.vm.kernelObject(sk, new Uint8Array(256));
    expect(plain.change({ skaddr: sk, from: "ESTABLISHED", to: "CLOSE", ...addr }, OTHER)!.netns).toBeNull();
    expect(plain.vm.probeReads).toEqual([]);
  });

  test("same-port listeners of two namespaces keep apart: each accepted socket takes its own namespace's listener, whichever listened last", () => {
    const s = sensor(layout, "ringbuf", 64, null, { ...NETNS_6_18, helper: HELPER.probeReadKernel });
    const [netA, netB] = [0xffff8882_0000_0000n, 0xffff8882_0001_0000n];
    const key = { local: ["127.0.0.1", 7900] as [string, number], remote: ["0.0.0.0", 0] as [string, number] };
    const sockets: [bigint, bigint, number][] = [
      [0x1000n, netA, 4026532100], // A's listener
      [0x2000n, netB, 4026532200], // B's listener, listening last
      [0x3000n, netA, 4026532100], // A's accepted socket
      [0x4000n, netB, 4026532200], // B's accepted socket
    ];
    for (const [sk, net, inode] of sockets) placeInNamespace(s.vm, sk, net, inode);
    s.change({ skaddr: 0x1000n, from: "CLOSE", to: "LISTEN", ...key }, SERVER);
    s.change({ skaddr: 0x2000n, from: "CLOSE", to: "LISTEN", ...key }, CLIENT);
    expect(s.maps.listeners.entries.size).toBe(2);
    const child = { local: ["127.0.0.1", 7900] as [string, number], remote: ["127.0.0.1", 30000] as [string, number] };
    const a = s.change({ skaddr: 0x3000n, from: "LISTEN", to: "SYN_RECV", ...child }, OTHER)!;
    const b = s.change({ skaddr: 0x4000n, from: "LISTEN", to: "SYN_RECV", ...child }, OTHER)!;
    expect([a.netns, a.pid, a.ownerSource]).toEqual([4026532100, 77, "listener"]);
    expect([b.netns, b.pid, b.ownerSource]).toEqual([4026532200, 4242, "listener"]);
    // A's listener closing takes only its own namespace's entry.
    s.change({ skaddr: 0x1000n, from: "LISTEN", to: "CLOSE", ...key }, SERVER);
    expect(s.maps.listeners.entries.size).toBe(1);
    s.change({ skaddr: 0x2000n, from: "LISTEN", to: "CLOSE", ...key }, CLIENT);
    expect(s.maps.listeners.entries.size).toBe(0);
  });

  test("a socket first seen at its local close takes the closing task; one seen only in softirq has no process", () => {
    const s = sensor(layout);
    const addr = { local: ["10.0.0.1", 1000] as [string, number], remote: ["10.0.0.2", 2000] as [string, number] };
    expect(who(s.change({ skaddr: 5n, from: "ESTABLISHED", to: "CLOSE_WAIT", ...addr }, OTHER))).toMatchObject({ pid: null, comm: null, ownerSource: null });
    expect(who(s.change({ skaddr: 5n, from: "CLOSE_WAIT", to: "LAST_ACK", ...addr }, SERVER))).toMatchObject({ pid: 77, ownerSource: "close" });
    expect(who(s.change({ skaddr: 5n, from: "LAST_ACK", to: "CLOSE", ...addr }, OTHER))).toMatchObject({ pid: 77, ownerSource: "close" });
    expect(who(s.change({ skaddr: 6n, from: "ESTABLISHED", to: "FIN_WAIT1", ...addr }, CLIENT))).toMatchObject({ pid: 4242, ownerSource: "close" });
    // Reset in softirq, no earlier record: nothing to name.
    expect(who(s.change({ skaddr: 7n, from: "ESTABLISHED", to: "CLOSE", ...addr }, OTHER))).toMatchObject({ pid: null, ownerSource: null });
  });

  test("a simultaneous open (SYN_SENT→SYN_RECV) keeps its own process", () => {
    const s = sensor(layout);
    const addr = { local: ["10.0.0.1", 1000] as [string, number], remote: ["10.0.0.2", 2000] as [string, number] };
    s.change({ skaddr: 8n, from: "CLOSE", to: "SYN_SENT", ...addr }, CLIENT);
    expect(who(s.change({ skaddr: 8n, from: "SYN_SENT", to: "SYN_RECV", ...addr }, OTHER))).toMatchObject({ pid: 4242, ownerSource: "connect" });
  });

  test("other protocols (SCTP, MPTCP) send nothing", () => {
    const s = sensor(layout);
    expect(s.change({ skaddr: 9n, from: "CLOSE", to: "LISTEN", protocol: 132, local: ["0.0.0.0", 1], remote: ["0.0.0.0", 0] }, SERVER)).toBeNull();
    if (layout.protocol.size === 2) {
      expect(s.change({ skaddr: 9n, from: "CLOSE", to: "LISTEN", protocol: 262, local: ["0.0.0.0", 1], remote: ["0.0.0.0", 0] }, SERVER)).toBeNull();
    }
    expect(s.maps.owners.entries.size).toBe(0);
  });

  test("counted: records the output had no room for, owners the map could not keep", () => {
    const s = sensor(layout, "ringbuf", 1);
    const addr = { local: ["10.0.0.1", 0] as [string, number], remote: ["10.0.0.2", 2000] as [string, number] };
    s.change({ skaddr: 10n, from: "CLOSE", to: "SYN_SENT", ...addr }, CLIENT);
    const r = s.change({ skaddr: 11n, from: "CLOSE", to: "SYN_SENT", ...addr }, CLIENT);
    // The record still names the process it saw; later changes of that socket will not.
    expect(who(r)).toMatchObject({ pid: 4242 });
    expect(s.counter(COUNTER.ownerMapFull)).toBe(1n);
    s.maps.output.full = true;
    expect(s.change({ skaddr: 10n, from: "SYN_SENT", to: "ESTABLISHED", ...addr }, OTHER)).toBeNull();
    expect(s.change({ skaddr: 10n, from: "ESTABLISHED", to: "CLOSE", ...addr }, OTHER)).toBeNull();
    expect(s.counter(COUNTER.lostRecords)).toBe(2n);
    // The owner is dropped at CLOSE even when its record was lost.
    expect(s.maps.owners.entries.size).toBe(0);
  });

  test.each([
    ["bpf_probe_read_kernel", HELPER.probeReadKernel],
    ["bpf_probe_read (before 5.5)", HELPER.probeRead],
  ] as const)("counters read from the socket with %s at every change, at the places BTF gave", (_name, helper) => {
    const s = sensor(layout, "ringbuf", 64, { ...TCP_SOCK_6_18, helper });
    const sk = 0xffff8881_0000_2000n;
    const addr = { local: ["10.0.0.1", 1000] as [string, number], remote: ["10.0.0.2", 2000] as [string, number] };
    const socket = tcpSock({ bytesSent: 5_000_000_000n, bytesReceived: 101n, segsOut: 7, segsIn: 9 });
    s.vm.kernelObject(sk, socket);
    const closing = s.change({ skaddr: sk, from: "FIN_WAIT2", to: "CLOSE", ...addr }, OTHER)!;
    expect(closing.counters).toEqual({ bytesSent: 5_000_000_000, bytesReceived: 101, packetsSent: 7, packetsReceived: 9 });
    // Exactly the four members, at the socket's address plus their offsets.
    expect(s.vm.probeReads.map((r) => [Number(r.address - sk), r.size, r.ok])).toEqual([
      [1544, 8, true],
      [1752, 8, true],
      [1536, 4, true],
      [1760, 4, true],
    ]);
    // Every change, not only closing ones.
    new DataView(socket.buffer).setUint32(1536, 8, true);
    expect(s.change({ skaddr: sk, from: "CLOSE", to: "SYN_SENT", ...addr }, CLIENT)!.counters).toMatchObject({ packetsSent: 8 });
  });

  test("a socket whose memory cannot be read has its counters unknown; a program without reads never reads", () => {
    const s = sensor(layout, "ringbuf", 64, { ...TCP_SOCK_6_18, helper: HELPER.probeReadKernel });
    const addr = { local: ["10.0.0.1", 1000] as [string, number], remote: ["10.0.0.2", 2000] as [string, number] };
    expect(s.change({ skaddr: 0xdead0000n, from: "ESTABLISHED", to: "CLOSE", ...addr }, OTHER)!.counters).toBeNull();
    expect(s.vm.probeReads).toEqual([{ address: 0xdead0000n + 1544n, size: 8, ok: false }]);
    const plain = sensor(layout);
    plain.vm.kernelObject(0xdead0000n, tcpSock({ bytesSent: 1n, bytesReceived: 1n, segsOut: 1, segsIn: 1 }));
    expect(plain.change({ skaddr: 0xdead0000n, from: "ESTABLISHED", to: "CLOSE", ...addr }, OTHER)!.counters).toBeNull();
    expect(plain.vm.probeReads).toEqual([]);
  });

  test("perf output: the same records through bpf_perf_event_output", () => {
    const s = sensor(layout, "perf");
    const r = s.change({ skaddr: 12n, from: "CLOSE", to: "SYN_SENT", local: ["10.0.0.1", 0], remote: ["10.0.0.2", 2000] }, CLIENT);
    expect(who(r)).toMatchObject({ pid: 4242, ownerSource: "connect" });
  });
});

test("a 4-byte bytes_acked (a kernel of another build) goes to the low-order end of its slot", () => {
  const s = sensor(LAYOUTS[0]![1], "ringbuf", 64, {
    ...TCP_SOCK_6_18,
    bytesSent: { member: "bytes_acked", offset: 1600, size: 4 },
    helper: HELPER.probeReadKernel,
  });
  const socket = tcpSock({ bytesSent: 0n, bytesReceived: 2n, segsOut: 3, segsIn: 4 });
  new DataView(socket.buffer).setUint32(1600, 77, true);
  s.vm.kernelObject(0x5000n, socket);
  const r = s.change({ skaddr: 0x5000n, from: "ESTABLISHED", to: "CLOSE", local: ["10.0.0.1", 1], remote: ["10.0.0.2", 2] }, OTHER)!;
  expect(r.counters).toEqual({ bytesSent: 77, bytesReceived: 2, packetsSent: 3, packetsReceived: 4 });
});

test("both layouts give the same record for the same change", () => {
  const records = LAYOUTS.map(([, layout]) => {
    const s = sensor(layout);
    return s.change({ skaddr: 0x1234n, from: "CLOSE", to: "SYN_SENT", local: ["172.16.0.9", 0], remote: ["1.2.3.4", 25] }, CLIENT);
  });
  expect(records[0]).toEqual(records[1]);
});

test("context reads: every field byte read, none below offset 8, misaligned fields byte by byte", () => {
  for (const [, layout] of LAYOUTS) {
    const s = sensor(layout);
    s.change({ skaddr: 1n, from: "CLOSE", to: "SYN_SENT", local: ["10.0.0.1", 0], remote: ["10.0.0.2", 1] }, CLIENT);
    s.change({ skaddr: 2n, from: "CLOSE", to: "SYN_SENT", family: 6, local: ["::1", 0], remote: ["::1", 1] }, CLIENT);
    const read = new Set<number>();
    for (const load of s.contextLoads) for (let i = 0; i < load.size; i++) read.add(load.offset + i);
    for (const field of Object.values(layout)) {
      for (let i = 0; i < field.size; i++) expect(read.has(field.offset + i), `byte ${field.offset + i}`).toBe(true);
    }
    expect(Math.min(...read)).toBe(8);
  }
  // The pre-5.6 IPv4 addresses at 31 and 35 go to 8-aligned places in the record: byte by byte.
  const old = sensor(LAYOUTS[1]![1]);
  old.change({ skaddr: 1n, from: "CLOSE", to: "SYN_SENT", local: ["10.0.0.1", 0], remote: ["10.0.0.2", 1] }, CLIENT);
  const addressLoads = old.contextLoads.filter((l) => l.offset >= 31 && l.offset < 39);
  expect(addressLoads.map((l) => l.offset)).toEqual([31, 32, 33, 34, 35, 36, 37, 38]);
  expect(new Set(addressLoads.map((l) => l.size))).toEqual(new Set([1]));
});
