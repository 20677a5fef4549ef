/**
 * The eBPF sensor's records carry PIDs of the initial PID namespace. A daemon in a nested PID
 * namespace with a /proc of its own (a container) must never report or signal those: they name
 * other processes there, or none. Its feed then finds a socket's owner in /proc by the inode.
 */
import { describe, expect, test } from "vitest";
import type { TcpState } from "../../src/model/endpoint.ts";
import type { SetStateRecord } from "../../src/engine/linux/bpf/set-state-record.ts";
import { SensorFeed, type SensorFeedHost } from "../../src/engine/linux/sensor-feed.ts";
import { INIT_PID_NAMESPACE_INODE, nsPids, recordPids, type PidNamespaceReads } from "../../src/engine/linux/record-pids.ts";
import { listener as aListener } from "../support/endpoints.ts";

const NESTED = 4026532400;

function reads(files: { self: number | null; one?: number | null; status?: string | null }): PidNamespaceReads {
  return {
    namespaceInode: (path) => (path.endsWith("/self/ns/pid") ? files.self : path.endsWith("/1/ns/pid") ? (files.one ?? null) : null),
    text: (path) => (path.endsWith("/self/status") ? (files.status ?? null) : null),
  };
}

const status = (nspid: string) => `Name:\tsockwarden\nPid:\t19\nNSpid:\t${nspid}\nNStgid:\t${nspid}\n`;

describe("whether the records' PIDs are this /proc's", () => {
  test("NSpid lists one number per namespace level the /proc sees", () => {
    expect(nsPids(status("14894\t19"))).toEqual([14894, 19]);
    expect(nsPids(status("19"))).toEqual([19]);
    expect(nsPids("Name:\tx\nPid:\t3\n")).toBeNull();
  });

  test("in the initial PID namespace they are", () => {
    expect(recordPids("/proc", reads({ self: INIT_PID_NAMESPACE_INODE, status: status("812") }))).toEqual({ usable: true, note: null });
  });

  test("in a nested namespace with its own /proc (one NSpid number) they are not, and a note says so once", () => {
    const answer = recordPids("/proc", reads({ self: NESTED, one: NESTED, status: status("19") }));
    expect(answer.usable).toBe(false);
    expect(answer.note).toMatch(/nested PID namespace/);
  });

  test("in a nested namespace seeing the initial namespace's /proc they are (the first NSpid number is theirs)", () => {
    expect(recordPids("/proc", reads({ self: NESTED, one: INIT_PID_NAMESPACE_INODE, status: status("14894\t19") })).usable).toBe(true);
  });

  test("seeing an intermediate namespace's /proc, or one whose PID 1 cannot be read, they are not", () => {
    expect(recordPids("/proc", reads({ self: NESTED, one: NESTED - 1, status: status("300\t19") })).usable).toBe(false);
    expect(recordPids("/proc", reads({ self: NESTED, one: null, status: status("14894\t19") })).usable).toBe(false);
  });
});

function record(oldState: TcpState, newState: TcpState): SetStateRecord {
  return {
    kernelTimeNs: 1_000_000n, socket: 7n, oldState, newState, oldStateCode: 0, newStateCode: 0, family: 4, protocol: 6,
    localAddress: "127.0.0.1", localPort: 7101, remoteAddress: "0.0.0.0", remotePort: 0,
    // The listener's owner as the kernel names it: 14894 in the initial namespace, 19 in ours.
    pid: 14894, tid: 14894, uid: 0, gid: 0, comm: "victimA", ownerSource: "listen", counters: null, netns: 4026531840,
  };
}

const listener = aListener({ localPort: 7101, inode: 5551, sendQueue: 128, cookie: "3", process: null, pids: [] });

const processOf = (pid: number) => ({ pid, name: pid === 19 ? "victimA" : "someone-else", path: null, cmdline: null, uid: 0, user: "root", startTime: null, ppid: 1 });

function feed(host: Partial<SensorFeedHost>): { feed: SensorFeed; asked: number[] } {
  const records = [record("CLOSE", "LISTEN")];
  const asked: number[] = [];
  const source = {
    notes: [],
    fds: [],
    drain: () => records.splice(0),
    pending: 0,
    counters: () => ({ lostRecords: 0, ownerMapFull: 0, listenerMapFull: 0, undecodable: 0, missedChanges: 0 }),
    running: true,
    stop: () => {},
  };
  const f = SensorFeed.over(source, {
    lookup: () => ({ endpoint: { ...listener }, listener: true }),
    process: (pid) => (asked.push(pid), processOf(pid)),
    userName: () => "root",
    netnsOf: () => 4026531840,
    homeNetns: 4026531840,
    allNamespaces: false,
    ...host,
  });
  return { feed: f, asked };
}

describe("a feed whose records' PIDs are not ours", () => {
  test("never reports or reads the record's PID; the owner comes from /proc by the socket's inode", () => {
    const placed: number[] = [];
    const { feed: f, asked } = feed({
      recordPids: false,
      placeOwner: (ep) => {
        placed.push(ep.inode);
        ep.process = processOf(19);
        ep.pids = [19];
      },
    });
    const [t] = f.drain();
    expect(placed).toEqual([5551]);
    expect(asked).toEqual([]);
    expect(t!.endpoint.process?.pid).toBe(19);
    expect(t!.endpoint.pids).toEqual([19]);
  });

  test("with nobody holding the socket it has no process, rather than the kernel's PID", () => {
    const { feed: f } = feed({ recordPids: false, placeOwner: () => {} });
    const [t] = f.drain();
    expect(t!.endpoint.process).toBeNull();
    expect(t!.endpoint.pids).toEqual([]);
  });

  test("where they are ours the record's PID is used as before, without a /proc scan", () => {
    const placed: number[] = [];
    const { feed: f } = feed({ placeOwner: (ep) => void placed.push(ep.inode) });
    const [t] = f.drain();
    expect(t!.endpoint.process?.pid).toBe(14894);
    expect(placed).toEqual([]);
  });
});
