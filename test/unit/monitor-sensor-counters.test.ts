/**
 * What the sensor's changes add to what the looks know: a CLOSE carries the socket's final
 * counters (the last look's are older) and the opening time, which no look can tell and which a
 * look replacing the endpoint keeps. The Monitor is the real one over a scripted engine.
 */
import { expect, test } from "vitest";
import type { Endpoint, Snapshot, SocketEngine, SocketTransition, TransitionFeed } from "../../src/engine/types.ts";
import { Monitor } from "../../src/monitor/monitor.ts";

const OPENED = "2026-12-07T12:00:00.000Z";

function ep(o: Partial<Endpoint>): Endpoint {
  return {
    protocol: "tcp", family: 4, localAddress: "127.0.0.1", localPort: 1000, remoteAddress: "127.0.0.1", remotePort: 2000,
    state: "ESTABLISHED", inode: 1, uid: 0, user: "root", interfaceIndex: 0, receiveQueue: 0, sendQueue: 0,
    bytesSent: 10, bytesReceived: 20, packetsSent: 1, packetsReceived: 2, rttMs: 1, cookie: "1",
    process: { pid: 10, name: "beacon", path: null, cmdline: null, uid: 0, user: "root", startTime: null, ppid: 1 }, pids: [10], ...o,
  };
}

function scripted() {
  let now = 1000;
  let table: Endpoint[] = [];
  const waiting: SocketTransition[] = [];
  const feed: TransitionFeed = { notes: [], drain: () => waiting.splice(0), lost: () => 0, onReady: () => {}, close: () => {} };
  const engine: SocketEngine = {
    name: "scripted",
    snapshot: (): Snapshot => ({ endpoints: table.map((e) => ({ ...e })), takenAt: now, source: "scripted", notes: [], unreadableProcesses: 0 }),
    close: () => {},
    transitions: () => feed,
  };
  const monitor = new Monitor({ engine, request: { protocols: new Set(["tcp"]), families: new Set([4]), withProcesses: true }, clock: () => now, transitions: true, closedSockets: false });
  return {
    monitor,
    set table(eps: Endpoint[]) {
      table = eps;
    },
    advance: (ms: number) => void (now += ms),
    change: (endpoint: Endpoint, previousState: Endpoint["state"]) => void waiting.push({ endpoint, previousState, time: now }),
  };
}

const counts = (e: Endpoint) => [e.bytesSent, e.bytesReceived, e.packetsSent, e.packetsReceived];

test("a CLOSE of a socket known from a look carries the change's final counters and opening time", () => {
  const s = scripted();
  s.table = [ep({})];
  s.monitor.start();
  s.advance(10);
  s.change(ep({ state: "CLOSE", cookie: null, inode: 0, process: null, pids: [], bytesSent: 500, bytesReceived: 901, packetsSent: 7, packetsReceived: 8, openedAt: OPENED }), "ESTABLISHED");
  const [closed] = s.monitor.takeTransitions();
  expect(closed).toMatchObject({ type: "closed", endpoint: { state: "ESTABLISHED", inode: 1, cookie: "1", openedAt: OPENED, process: { name: "beacon" } } });
  expect(counts(closed!.endpoint)).toEqual([500, 901, 7, 8]);
});

test("a change without counters (no BTF) leaves the look's; a state change takes them too", () => {
  const s = scripted();
  s.table = [ep({})];
  s.monitor.start();
  s.advance(10);
  s.change(ep({ state: "FIN_WAIT1", bytesSent: 30, bytesReceived: 40, packetsSent: 3, packetsReceived: 4 }), "ESTABLISHED");
  s.advance(1);
  s.change(ep({ state: "CLOSE", bytesSent: null, bytesReceived: null, packetsSent: null, packetsReceived: null }), "FIN_WAIT1");
  const [changed, closed] = s.monitor.takeTransitions();
  expect(changed!.type).toBe("state-changed");
  expect(counts(changed!.endpoint)).toEqual([30, 40, 3, 4]);
  expect(counts(closed!.endpoint)).toEqual([30, 40, 3, 4]);
  expect(closed!.endpoint.openedAt ?? null).toBeNull();
});

test("a look that replaces a sensor-opened endpoint keeps its opening time, to the close", () => {
  const s = scripted();
  s.monitor.start();
  s.advance(10);
  s.change(ep({ openedAt: OPENED }), "SYN_SENT");
  expect(s.monitor.takeTransitions().map((e) => e.type)).toEqual(["opened"]);
  s.advance(1000);
  s.table = [ep({ bytesSent: 99 })];
  s.monitor.refresh();
  expect(s.monitor.current()[0]).toMatchObject({ bytesSent: 99, openedAt: OPENED });
  s.advance(10);
  s.change(ep({ state: "CLOSE", bytesSent: 120 }), "ESTABLISHED");
  expect(s.monitor.takeTransitions()[0]!.endpoint).toMatchObject({ openedAt: OPENED, bytesSent: 120 });
});
