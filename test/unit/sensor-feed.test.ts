/**
 * The sensor feed turning records into transitions, over records as the program writes them and
 * a host that answers lookups as sock_diag does: here, which namespace a socket is placed in when
 * nothing but its listener can tell.
 */
import { describe, expect, test } from "vitest";
import type { Endpoint, TcpState } from "../../src/model/endpoint.ts";
import type { TcpTuple } from "../../src/engine/linux/diag-lookup.ts";
import type { SetStateRecord } from "../../src/engine/linux/bpf/set-state-record.ts";
import type { SensorCounters } from "../../src/engine/linux/bpf/sensor.ts";
import { SensorFeed, type SensorFeedHost } from "../../src/engine/linux/sensor-feed.ts";
import { ringBytesFromEnv } from "../../src/engine/linux/sensor-ring-env.ts";
import { endpoint } from "../support/endpoints.ts";

const HOME = 4026531840;
const OTHER = 4026532000;

function record(socket: bigint, oldState: TcpState, newState: TcpState, o: Partial<SetStateRecord> = {}): SetStateRecord {
  return {
    kernelTimeNs: 1_000_000n, socket, oldState, newState, oldStateCode: 0, newStateCode: 0, family: 4, protocol: 6,
    localAddress: "127.0.0.1", localPort: 7700, remoteAddress: "127.0.0.1", remotePort: 39173,
    pid: null, tid: null, uid: null, gid: null, comm: null, ownerSource: null, counters: null, netns: null, ...o,
  };
}

/** The accepted side of a connection that was over before its first record was read. */
const acceptedAndGone = [
  record(1n, "LISTEN", "SYN_RECV"),
  record(1n, "SYN_RECV", "ESTABLISHED"),
  record(1n, "ESTABLISHED", "CLOSE_WAIT"),
  record(1n, "CLOSE_WAIT", "LAST_ACK"),
  record(1n, "LAST_ACK", "CLOSE"),
];

function feed(records: SetStateRecord[], host: Partial<SensorFeedHost>, counters: Partial<SensorCounters> = {}): SensorFeed {
  const source = {
    notes: [],
    fds: [],
    drain: () => records.splice(0),
    pending: 0,
    counters: () => ({ lostRecords: 0, ownerMapFull: 0, listenerMapFull: 0, undecodable: 0, missedChanges: 0, ...counters }),
    running: true,
    stop: () => {},
  };
  return SensorFeed.over(source, {
    lookup: (_tuple: TcpTuple) => ({ endpoint: null as Endpoint | null, listener: false }),
    process: () => null,
    userName: () => null,
    netnsOf: () => HOME,
    homeNetns: HOME,
    allNamespaces: false,
    ...host,
  });
}

describe("SensorFeed namespaces", () => {
  test("an accepted socket gone before it is read, with no owner of its own, is ours when our listener takes its address and port", () => {
    const f = feed([...acceptedAndGone], { lookup: () => ({ endpoint: null, listener: true }) });
    const states = f.drain().map((t) => t.endpoint.state);
    expect(states).toEqual(["SYN_RECV", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSE"]);
  });

  test("the same socket with no listener of ours on its port is another namespace's: left out", () => {
    const f = feed([...acceptedAndGone], { lookup: () => ({ endpoint: null, listener: false }) });
    expect(f.drain()).toEqual([]);
  });

  test("a socket whose owner lives in another namespace stays out whatever our listeners are", () => {
    const records = acceptedAndGone.map((r) => ({ ...r, pid: 77, comm: "elsewhere" }));
    const f = feed(records, { netnsOf: () => OTHER, lookup: () => ({ endpoint: null, listener: true }) });
    expect(f.drain()).toEqual([]);
  });
});

/**
 * The accepted side of a loopback connection as the program recorded it (kernel 6.18, its
 * namespace read from the socket): the child socket's own address from its birth at SYN_RECV.
 */
const RECORDED_NETNS = 4026531833;
const recordedAccepted: SetStateRecord[] = (
  [
    ["0x165db012e7bc", "LISTEN", 10, "SYN_RECV", 3, [0, 0, 0, 0]],
    ["0x165db0130887", "SYN_RECV", 3, "ESTABLISHED", 1, [0, 0, 0, 2]],
    ["0x165db348dec0", "ESTABLISHED", 1, "FIN_WAIT1", 4, [0, 0, 0, 2]],
    ["0x165db34f072c", "FIN_WAIT1", 4, "FIN_WAIT2", 5, [0, 0, 1, 3]],
    ["0x165db3657d3e", "FIN_WAIT2", 5, "CLOSE", 7, [0, 1, 2, 4]],
  ] as [string, TcpState, number, TcpState, number, number[]][]
).map(([time, oldState, oldStateCode, newState, newStateCode, [bytesSent, bytesReceived, packetsSent, packetsReceived]]) => ({
  kernelTimeNs: BigInt(time), socket: 0xffff888158714a00n, oldState, newState, oldStateCode, newStateCode, family: 4, protocol: 6,
  localAddress: "127.0.0.1", localPort: 7957, remoteAddress: "127.0.0.1", remotePort: 57678,
  pid: 13507, tid: 13507, uid: 0, gid: 0, comm: "bun", ownerSource: "listener",
  counters: { bytesSent: bytesSent!, bytesReceived: bytesReceived!, packetsSent: packetsSent!, packetsReceived: packetsReceived! },
  netns: RECORDED_NETNS,
}));

const looked = (o: Partial<Endpoint>): Endpoint =>
  endpoint({ localPort: 7957, remotePort: 57678, state: "SYN_RECV", inode: 0, packetsSent: 0, packetsReceived: 0, rttMs: 0.1, cookie: "901", process: null, pids: [], ...o });

describe("SensorFeed with the namespace in each record", () => {
  const processOf = (pid: number) => ({ pid, name: "bun", path: null, cmdline: null, uid: 0, user: "root", startTime: null, ppid: 1 });

  test("ours by the record's namespace alone: no guessing from the process or our listener", () => {
    const asked: (number | null)[] = [];
    const f = feed(recordedAccepted.map((r) => ({ ...r })), {
      homeNetns: RECORDED_NETNS,
      // Both guesses would say "elsewhere"; the record says ours.
      netnsOf: () => OTHER,
      lookup: (_tuple, netns) => (asked.push(netns), { endpoint: null, listener: false }),
      process: processOf,
    });
    const out = f.drain();
    expect(out.map((t) => t.endpoint.state)).toEqual(["SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "CLOSE"]);
    expect(out.every((t) => t.endpoint.process?.pid === 13507 && !t.endpoint.namespace)).toBe(true);
    expect(asked[0]).toBe(RECORDED_NETNS);
  });

  test("another namespace's socket is left out even where our listener takes its address and port", () => {
    const f = feed(recordedAccepted.map((r) => ({ ...r, netns: OTHER })), {
      homeNetns: RECORDED_NETNS,
      netnsOf: () => RECORDED_NETNS,
      lookup: () => ({ endpoint: looked({ cookie: "1" }), listener: true }),
    });
    expect(f.drain()).toEqual([]);
  });

  test("with every namespace: looked up in its own namespace and tagged with it, also when no lookup finds it", () => {
    const asked: (number | null)[] = [];
    const f = feed(recordedAccepted.map((r) => ({ ...r, netns: OTHER })), {
      homeNetns: RECORDED_NETNS,
      allNamespaces: true,
      lookup: (_tuple, netns) => (asked.push(netns), { endpoint: null, listener: false }),
      namespaceTag: (inode) => ({ inode, name: "theirs", container: null }),
    });
    const out = f.drain();
    expect(out).toHaveLength(5);
    expect(new Set(out.map((t) => t.endpoint.namespace?.name))).toEqual(new Set(["theirs"]));
    expect(new Set(asked)).toEqual(new Set([OTHER]));
  });

  test("an accepted socket looked up at SYN_RECV without an inode (not accepted yet) is looked up again once, at ESTABLISHED", () => {
    const answers = [looked({ state: "SYN_RECV", inode: 0 }), looked({ state: "ESTABLISHED", inode: 31337 })];
    let lookups = 0;
    // Read before its close (a socket already closed is not looked up: see below).
    const pending = recordedAccepted.slice(0, 4).map((r) => ({ ...r }));
    const f = feed(pending, {
      homeNetns: RECORDED_NETNS,
      lookup: () => ({ endpoint: answers[lookups++] ?? null, listener: true }),
      process: processOf,
    });
    const out = f.drain();
    pending.push({ ...recordedAccepted[4]! });
    out.push(...f.drain());
    expect(out.map((t) => [t.endpoint.state, t.endpoint.inode, t.endpoint.cookie])).toEqual([
      ["SYN_RECV", 0, "901"],
      ["ESTABLISHED", 31337, "901"],
      ["FIN_WAIT1", 31337, "901"],
      ["FIN_WAIT2", 31337, "901"],
      ["CLOSE", 31337, "901"],
    ]);
    expect(lookups).toBe(2);
    // The opening time and process stay those of the socket's birth.
    expect(out[1]!.endpoint.openedAt).toBe(out[0]!.endpoint.openedAt);
    expect(out[1]!.endpoint.process?.pid).toBe(13507);
    // Its counters are still the records'.
    expect(out[4]!.endpoint.packetsReceived).toBe(4);
  });
});

describe("SensorFeed lookups of sockets already closed", () => {
  // A reset connection's accepted side, all of it read at once: the socket is gone, and the
  // kernel may already have handed its four-tuple to the next connection.
  const reset = (netns: number | null) => [
    record(7n, "LISTEN", "SYN_RECV", { netns }),
    record(7n, "SYN_RECV", "ESTABLISHED", { netns }),
    record(7n, "ESTABLISHED", "CLOSE", { netns }),
  ];

  test.each([["read from the socket", HOME], ["not read (no BTF)", null]] as const)(
    "the next connection on its four-tuple does not lend it its cookie (namespace %s)",
    (_name, netns) => {
      const next = looked({ localPort: 7700, remotePort: 39173, state: "ESTABLISHED", inode: 88, cookie: "555" });
      const f = feed(reset(netns), { lookup: () => ({ endpoint: next, listener: false }) });
      const out = f.drain();
      expect(out.map((t) => [t.endpoint.state, t.endpoint.cookie])).toEqual([
        ["SYN_RECV", null],
        ["ESTABLISHED", null],
        ["CLOSE", null],
      ]);
    },
  );

  test("its timewait successor, which keeps its cookie, is still its own; a socket not yet closed takes what the lookup finds", () => {
    const timewait = looked({ state: "TIME_WAIT", cookie: "556" });
    const closing = [record(8n, "FIN_WAIT1", "FIN_WAIT2", { netns: HOME }), record(8n, "FIN_WAIT2", "CLOSE", { netns: HOME })];
    expect(feed(closing, { lookup: () => ({ endpoint: timewait, listener: false }) }).drain()[0]!.endpoint.cookie).toBe("556");
    // A CLOSE before a socket's first record ended an earlier socket at the same kernel address.
    const reused = [record(9n, "LAST_ACK", "CLOSE", { netns: HOME, remotePort: 1 }), record(9n, "LISTEN", "SYN_RECV", { netns: HOME })];
    expect(feed(reused, { lookup: () => ({ endpoint: looked({ cookie: "558" }), listener: false }) }).drain().map((t) => t.endpoint.cookie)).toEqual([null, "558"]);
    const open = [record(9n, "LISTEN", "SYN_RECV", { netns: HOME })];
    expect(feed(open, { lookup: () => ({ endpoint: looked({ cookie: "557" }), listener: false }) }).drain()[0]!.endpoint.cookie).toBe("557");
  });
});

describe("SensorFeed lookups it can do without", () => {
  const count = () => {
    let n = 0;
    return { host: { lookup: () => (n++, { endpoint: looked({ cookie: "600" }), listener: false }) }, get n() { return n; } };
  };

  test("a socket reset or closed by its peer before its records are read is not looked up: only another connection could be found", () => {
    const c = count();
    const reset = [record(11n, "CLOSE", "SYN_SENT", { netns: HOME, localPort: 40001, remotePort: 7700 }), record(11n, "SYN_SENT", "ESTABLISHED", { netns: HOME, localPort: 40001, remotePort: 7700 }), record(11n, "ESTABLISHED", "CLOSE", { netns: HOME, localPort: 40001, remotePort: 7700 })];
    const accepted = [
      record(12n, "LISTEN", "SYN_RECV", { netns: HOME }),
      record(12n, "SYN_RECV", "ESTABLISHED", { netns: HOME }),
      record(12n, "ESTABLISHED", "CLOSE_WAIT", { netns: HOME }),
      record(12n, "CLOSE_WAIT", "LAST_ACK", { netns: HOME }),
      record(12n, "LAST_ACK", "CLOSE", { netns: HOME }),
    ];
    const out = feed([...reset, ...accepted], c.host).drain();
    expect(c.n).toBe(0);
    expect(out).toHaveLength(8);
    expect(out.every((t) => t.endpoint.cookie === null)).toBe(true);
  });

  test("an active close may leave a timewait socket with its cookie, and a socket still open is looked up", () => {
    const c = count();
    const active = [record(13n, "ESTABLISHED", "FIN_WAIT1", { netns: HOME }), record(13n, "FIN_WAIT1", "FIN_WAIT2", { netns: HOME }), record(13n, "FIN_WAIT2", "CLOSE", { netns: HOME })];
    const open = [record(14n, "CLOSE", "SYN_SENT", { netns: HOME, localPort: 40002 }), record(14n, "SYN_SENT", "ESTABLISHED", { netns: HOME, localPort: 40002 })];
    feed([...active, ...open], c.host).drain();
    expect(c.n).toBe(2);
  });

  test("a CLOSE that ended an earlier socket at the same kernel address does not stop the next one's lookup", () => {
    const c = count();
    const reused = [record(15n, "ESTABLISHED", "CLOSE", { netns: HOME, remotePort: 1 }), record(15n, "CLOSE", "SYN_SENT", { netns: HOME, localPort: 40003 })];
    feed(reused, c.host).drain();
    expect(c.n).toBe(1);
  });
});

describe("SensorFeed counters and openedAt", () => {
  const counters = (bytesSent: number, bytesReceived: number, packetsSent: number, packetsReceived: number) => ({ bytesSent, bytesReceived, packetsSent, packetsReceived });
  const ms = (n: number) => BigInt(n) * 1_000_000n;

  test("each transition carries its record's counters; the opening time is the connect's, though that record had no port yet", () => {
    const records = [
      record(2n, "CLOSE", "SYN_SENT", { localPort: 0, kernelTimeNs: ms(1000), pid: 5, counters: counters(0, 0, 0, 0) }),
      record(2n, "SYN_SENT", "ESTABLISHED", { kernelTimeNs: ms(1002), counters: counters(0, 0, 1, 1) }),
      record(2n, "ESTABLISHED", "CLOSE", { kernelTimeNs: ms(1050), counters: counters(100, 300, 4, 3) }),
    ];
    const f = feed(records, {});
    const out = f.drain();
    expect(out.map((t) => t.endpoint.state)).toEqual(["ESTABLISHED", "CLOSE"]);
    const opened = out[0]!.endpoint.openedAt!;
    // The connect's kernel time, 2 ms before the ESTABLISHED one (ISO-8601 keeps whole ms).
    expect(Math.abs(Date.parse(opened) - (out[0]!.time - 2))).toBeLessThan(1);
    expect(out[1]!.endpoint.openedAt).toBe(opened);
    expect(out.map((t) => [t.endpoint.bytesSent, t.endpoint.bytesReceived, t.endpoint.packetsSent, t.endpoint.packetsReceived])).toEqual([
      [0, 0, 1, 1],
      [100, 300, 4, 3],
    ]);
  });

  test("a lookup's endpoint takes the record's counters and opening time; a record without counters leaves the lookup's", () => {
    const looked = endpoint({
      localPort: 7700, remotePort: 39173, inode: 42, bytesSent: 9, bytesReceived: 9, packetsSent: 9, packetsReceived: 9, rttMs: 0.1, cookie: "77", process: null, pids: [],
    });
    const withCounts = feed([record(3n, "LISTEN", "SYN_RECV", { counters: counters(0, 0, 0, 1) })], { lookup: () => ({ endpoint: looked, listener: true }) }).drain();
    expect(withCounts[0]!.endpoint).toMatchObject({ inode: 42, bytesSent: 0, packetsReceived: 1 });
    expect(withCounts[0]!.endpoint.openedAt).toEqual(expect.any(String));
    const without = feed([record(4n, "ESTABLISHED", "FIN_WAIT1")], { lookup: () => ({ endpoint: looked, listener: true }) }).drain();
    // First seen mid-life: older than the sensor, opening unknown.
    expect(without[0]!.endpoint).toMatchObject({ inode: 42, bytesSent: 9, packetsReceived: 9, openedAt: null });
  });

  test("a listener opens at listen", () => {
    const out = feed([record(5n, "CLOSE", "LISTEN", { remoteAddress: "0.0.0.0", remotePort: 0, pid: 5 })], {}).drain();
    expect(out[0]!.endpoint.openedAt).toEqual(expect.any(String));
  });
});

describe("SOCKWARDEN_SENSOR_RING_BYTES", () => {
  test("a whole number from a page to 256 MiB is taken; anything else is ignored with a note", () => {
    expect(ringBytesFromEnv({})).toEqual({ bytes: null, note: null });
    expect(ringBytesFromEnv({ SOCKWARDEN_SENSOR_RING_BYTES: "4096" })).toEqual({ bytes: 4096, note: null });
    expect(ringBytesFromEnv({ SOCKWARDEN_SENSOR_RING_BYTES: String(256 * 1024 * 1024) }).bytes).toBe(268435456);
    for (const bad of ["4095", "268435457", "1e6", "-8192", "8k", "0x1000", "12.5"]) {
      const r = ringBytesFromEnv({ SOCKWARDEN_SENSOR_RING_BYTES: bad });
      expect(r.bytes, bad).toBeNull();
      expect(r.note, bad).toContain("SOCKWARDEN_SENSOR_RING_BYTES");
    }
  });
});

describe("SensorFeed after a lost CLOSE", () => {
  // The ring overflowed and a socket's CLOSE never came; the kernel then gave its memory, so its
  // address, to a new socket. The new socket's first record (a connect from CLOSE, or an accepted
  // socket's birth from its listener) says it is another socket: nothing of the old one carries over.
  test.each([
    ["a connect", (socket: bigint, port: number, pid: number) => [record(socket, "CLOSE", "SYN_SENT", { netns: HOME, localPort: 0, pid, comm: `p${pid}` }), record(socket, "SYN_SENT", "ESTABLISHED", { netns: HOME, localPort: port, remotePort: 7700 })]],
    ["an accepted socket", (socket: bigint, port: number, pid: number) => [record(socket, "LISTEN", "SYN_RECV", { netns: HOME, localPort: 7700, remotePort: port, pid, comm: `p${pid}` }), record(socket, "SYN_RECV", "ESTABLISHED", { netns: HOME, localPort: 7700, remotePort: port })]],
  ] as const)("%s at the address of a socket whose CLOSE was lost is told with its own addresses and process", (_name, lifeOf) => {
    const records: SetStateRecord[] = lifeOf(21n, 40010, 5);
    const f = feed(records, {});
    expect(new Set(f.drain().map((t) => t.endpoint.process?.pid))).toEqual(new Set([5]));
    // Its CLOSE lost; a new socket at the same kernel address.
    records.push(...lifeOf(21n, 40011, 6));
    const second = f.drain();
    expect(second.length).toBeGreaterThan(0);
    for (const t of second) {
      expect([t.endpoint.localPort, t.endpoint.remotePort]).toContain(40011);
      expect(t.endpoint.process?.pid).toBe(6);
      expect(t.previousState === "CLOSE" || t.previousState === "LISTEN" ? t.endpoint.openedAt : "").toEqual(expect.any(String));
    }
  });
});

describe("SensorFeed after a lost CLOSE and a lost birth", () => {
  // The same, but the new socket's first records were lost too (one overflow can take both): its
  // first record read is a later change. Its addresses and ports, which no socket changes after
  // connect or accept, still say it is not the socket followed there.
  test.each([
    ["a connect, at ESTABLISHED", record(21n, "SYN_SENT", "ESTABLISHED", { netns: HOME, localPort: 40011, remotePort: 7700 })],
    ["an accepted socket, at ESTABLISHED", record(21n, "SYN_RECV", "ESTABLISHED", { netns: HOME, localPort: 7700, remotePort: 40011 })],
    ["a connection, at its close", record(21n, "ESTABLISHED", "FIN_WAIT1", { netns: HOME, localPort: 40011, remotePort: 7700 })],
  ] as const)("%s is told with its own addresses, not the old socket's, nor its process", (_name, later) => {
    const records: SetStateRecord[] = [
      record(21n, "CLOSE", "SYN_SENT", { netns: HOME, localPort: 0, remotePort: 7700, pid: 5, comm: "p5" }),
      record(21n, "SYN_SENT", "ESTABLISHED", { netns: HOME, localPort: 40010, remotePort: 7700 }),
    ];
    const f = feed(records, {});
    expect(f.drain().map((t) => t.endpoint.localPort)).toEqual([40010]);
    records.push({ ...later });
    const second = f.drain();
    expect(second).toHaveLength(1);
    const t = second[0]!;
    expect([t.endpoint.localPort, t.endpoint.remotePort]).toEqual([later.localPort, later.remotePort]);
    expect(t.endpoint.state).toBe(later.newState);
    expect(t.endpoint.process?.pid).not.toBe(5);
    // Not known from its birth: no opening time.
    expect(t.endpoint.openedAt).toBeNull();
  });
});

describe("SensorFeed losses", () => {
  test("changes the kernel skipped the program for count as lost, as a full ring's do", () => {
    const counters: Partial<SensorCounters> = {};
    let now = 0;
    const f = feed([], { monotonicMs: () => now }, counters);
    expect(f.lost()).toBe(0);
    counters.missedChanges = 3;
    now += 50;
    expect(f.lost()).toBe(3);
    counters.lostRecords = 2;
    now += 50;
    expect(f.lost()).toBe(5);
  });

  test("the kernel's counts are read again only after 50 ms: the monitor asks after every delivery", () => {
    const counters: Partial<SensorCounters> = {};
    let reads = 0;
    let now = 1000;
    const f = SensorFeed.over(
      { notes: [], fds: [], drain: () => [], pending: 0, running: true, stop: () => {}, counters: () => (reads++, { lostRecords: 0, ownerMapFull: 0, listenerMapFull: 0, undecodable: 0, missedChanges: 0, ...counters }) },
      { lookup: () => ({ endpoint: null, listener: false }), process: () => null, userName: () => null, netnsOf: () => HOME, homeNetns: HOME, allNamespaces: false, monotonicMs: () => now },
    );
    expect(f.lost()).toBe(0);
    counters.lostRecords = 7;
    now += 49;
    expect(f.lost()).toBe(0);
    now += 1;
    expect(f.lost()).toBe(7);
    expect(reads).toBe(2);
  });
});
