/**
 * The sensor feed turning records into transitions, over records as the program writes them and
 * a host that answers lookups as sock_diag does: here, which namespace a socket is placed in when
 * nothing but its listener can tell.
 */
import { describe, expect, test } from "vitest";
import type { Endpoint, TcpState } from "../../src/engine/types.ts";
import type { TcpTuple } from "../../src/engine/linux/diag-lookup.ts";
import type { SetStateRecord } from "../../src/engine/linux/bpf/set-state-record.ts";
import { SensorFeed, ringBytesFromEnv, type SensorFeedHost } from "../../src/engine/linux/sensor-feed.ts";

const HOME = 4026531840;
const OTHER = 4026532000;

function record(socket: bigint, oldState: TcpState, newState: TcpState, o: Partial<SetStateRecord> = {}): SetStateRecord {
  return {
    kernelTimeNs: 1_000_000n, socket, oldState, newState, oldStateCode: 0, newStateCode: 0, family: 4, protocol: 6,
    localAddress: "127.0.0.1", localPort: 7700, remoteAddress: "127.0.0.1", remotePort: 39173,
    pid: null, tid: null, uid: null, gid: null, comm: null, ownerSource: null, counters: null, ...o,
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

function feed(records: SetStateRecord[], host: Partial<SensorFeedHost>): SensorFeed {
  const source = {
    notes: [],
    fds: [],
    drain: () => records.splice(0),
    counters: () => ({ lostRecords: 0, ownerMapFull: 0, listenerMapFull: 0, undecodable: 0 }),
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
    const looked: Endpoint = {
      protocol: "tcp", family: 4, localAddress: "127.0.0.1", localPort: 7700, remoteAddress: "127.0.0.1", remotePort: 39173,
      state: "ESTABLISHED", inode: 42, uid: 0, user: "root", interfaceIndex: 0, receiveQueue: 0, sendQueue: 0,
      bytesSent: 9, bytesReceived: 9, packetsSent: 9, packetsReceived: 9, rttMs: 0.1, cookie: "77", process: null, pids: [],
    };
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
