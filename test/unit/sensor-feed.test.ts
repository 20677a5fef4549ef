/**
 * The sensor feed turning records into transitions, over records as the program writes them and
 * a host that answers lookups as sock_diag does: here, which namespace a socket is placed in when
 * nothing but its listener can tell.
 */
import { describe, expect, test } from "vitest";
import type { Endpoint, TcpState } from "../../src/engine/types.ts";
import type { TcpTuple } from "../../src/engine/linux/diag-lookup.ts";
import type { SetStateRecord } from "../../src/engine/linux/bpf/set-state-record.ts";
import { SensorFeed, type SensorFeedHost } from "../../src/engine/linux/sensor-feed.ts";

const HOME = 4026531840;
const OTHER = 4026532000;

function record(socket: bigint, oldState: TcpState, newState: TcpState, o: Partial<SetStateRecord> = {}): SetStateRecord {
  return {
    kernelTimeNs: 1_000_000n, socket, oldState, newState, oldStateCode: 0, newStateCode: 0, family: 4, protocol: 6,
    localAddress: "127.0.0.1", localPort: 7700, remoteAddress: "127.0.0.1", remotePort: 39173,
    pid: null, tid: null, uid: null, gid: null, comm: null, ownerSource: null, ...o,
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
