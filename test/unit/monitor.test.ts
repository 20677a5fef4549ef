import { describe, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ClosedSocketFeed, Snapshot, SocketEngine } from "../../src/engine/types.ts";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { ProcessInfo } from "../../src/model/process.ts";
import { diffSnapshots, counterDelta } from "../../src/monitor/snapshot-diff.ts";
import { endpointKey } from "../../src/monitor/endpoint-key.ts";
import { Monitor } from "../../src/monitor/monitor.ts";
import { MonitorLoop, clampInterval } from "../../src/monitor/monitor-loop.ts";
import type { Timers } from "../../src/timers.ts";
import { ProcessReader } from "../../src/engine/linux/process-map.ts";
import { UserTable } from "../../src/engine/linux/users.ts";
import { endpoint, processInfo } from "../support/endpoints.ts";

const proc = (pid: number, name: string): ProcessInfo => processInfo({ pid, name });

const ep = (o: Partial<Endpoint>): Endpoint => endpoint({ process: proc(10, "a"), ...o });

const asMap = (eps: Endpoint[]) => new Map(eps.map((e) => [endpointKey(e), e]));

describe("diffSnapshots", () => {
  test("opened, closed, state-changed and counters, in a fixed order", () => {
    const before = [ep({ cookie: "1" }), ep({ cookie: "2", localPort: 1001 }), ep({ cookie: "3", localPort: 1002 })];
    const after = [
      ep({ cookie: "1", state: "CLOSE_WAIT" }),
      ep({ cookie: "2", localPort: 1001, bytesSent: 5000, packetsSent: 6 }),
      ep({ cookie: "4", localPort: 1003 }),
    ];
    const { events } = diffSnapshots(asMap(before), after, { time: 100, elapsedMs: 500 });
    expect(events.map((e) => `${e.type}:${e.endpoint.cookie}`)).toEqual(["opened:4", "state-changed:1", "counters:2", "closed:3"]);
    expect(events[1]!.previousState).toBe("ESTABLISHED");
    expect(events[2]!.counters).toEqual({
      bytesSent: 5000, bytesReceived: 0, packetsSent: 5, packetsReceived: 0, intervalMs: 500, bytesSentPerSecond: 10000, bytesReceivedPerSecond: 0,
    });
  });

  test("the cookie, not the address pair, names a socket: a reused pair is a new connection", () => {
    const { events } = diffSnapshots(asMap([ep({ cookie: "1" })]), [ep({ cookie: "9" })], { time: 1, elapsedMs: 1000 });
    expect(events.map((e) => e.type)).toEqual(["opened", "closed"]);
  });

  test("without cookies the address pair is the key, and unconnected sockets add their inode", () => {
    const a = ep({ cookie: null, remotePort: 0, remoteAddress: "0.0.0.0", state: "LISTEN", inode: 5 });
    const b = ep({ cookie: null, remotePort: 0, remoteAddress: "0.0.0.0", state: "LISTEN", inode: 6 });
    expect(endpointKey(a)).not.toBe(endpointKey(b));
    const tw = ep({ cookie: null, state: "TIME_WAIT", inode: 0 });
    const { events } = diffSnapshots(asMap([ep({ cookie: null })]), [tw], { time: 1, elapsedMs: 1000 });
    expect(events.map((e) => `${e.type}:${e.previousState}->${e.endpoint.state}`)).toEqual(["state-changed:ESTABLISHED->TIME_WAIT"]);
  });

  test("an owner known before is kept when the same socket is seen without one", () => {
    const { events, current } = diffSnapshots(asMap([ep({})]), [ep({ process: null, pids: [] })], { time: 1, elapsedMs: 1 });
    expect(events).toEqual([]);
    expect([...current.values()][0]!.process?.pid).toBe(10);
  });

  test("counters that go backwards or are unknown are not traffic", () => {
    expect(counterDelta(ep({ bytesSent: 10 }), ep({ bytesSent: 5 }), 1000)).toBeNull();
    expect(counterDelta(ep({ bytesSent: null, packetsSent: null }), ep({ bytesSent: 7, packetsSent: null }), 1000)).toBeNull();
  });
});

/** An engine over a scripted list of snapshots and destroy notices. */
class ScriptedEngine implements SocketEngine {
  readonly name = "scripted";
  private i = 0;
  notices: Endpoint[] = [];
  constructor(private readonly snapshots: Endpoint[][]) {}
  snapshot(): Snapshot {
    const endpoints = (this.snapshots[Math.min(this.i, this.snapshots.length - 1)] ?? []).map((e) => ({ ...e }));
    this.i++;
    return { endpoints, takenAt: 1000 * this.i, source: "scripted", notes: [], unreadableProcesses: 0 };
  }
  closedSockets(): ClosedSocketFeed {
    return { drain: () => this.notices.splice(0), lost: () => 0, close: () => {} };
  }
  close(): void {}
}

const request = { protocols: new Set(["tcp", "udp"] as const), families: new Set([4, 6] as const), withProcesses: true };

describe("Monitor", () => {
  test("numbers events across refreshes and keeps times from going back", () => {
    const listener = ep({ cookie: "L", state: "LISTEN", remotePort: 0, remoteAddress: "0.0.0.0", localPort: 80, process: proc(7, "web") });
    const engine = new ScriptedEngine([[listener], [listener, ep({ cookie: "2" })], [listener]]);
    const m = new Monitor({ engine, request, clock: () => 500 });
    expect(m.start()).toHaveLength(1);
    const first = m.refresh();
    const second = m.refresh();
    expect([...first, ...second].map((e) => `${e.seq}:${e.type}`)).toEqual(["1:opened", "2:closed"]);
    expect(m.announce(m.current()).map((e) => e.seq)).toEqual([3]);
  });

  test("a connection seen only in a destroy notice becomes an opened/closed pair after one refresh, owned by the listener", () => {
    const listener = ep({ cookie: "L", state: "LISTEN", remotePort: 0, remoteAddress: "0.0.0.0", localAddress: "0.0.0.0", localPort: 80, process: proc(7, "web") });
    const engine = new ScriptedEngine([[listener]]);
    const m = new Monitor({ engine, request, clock: () => 1500 });
    m.start();
    engine.notices.push(ep({ cookie: "S", localPort: 80, remotePort: 5555, state: "CLOSE", process: null, pids: [], bytesReceived: 42 }));
    m.collectClosed();
    expect(m.refresh()).toEqual([]); // held: a timewait successor could still show up
    const events = m.refresh();
    expect(events.map((e) => `${e.type}:${e.shortLived}:${e.endpoint.process?.name}`)).toEqual(["opened:true:web", "closed:true:web"]);
    expect(events[1]!.endpoint.bytesReceived).toBe(42);
  });

  test("a notice for a known socket gives its closed event the final counters", () => {
    const conn = ep({ cookie: "C", bytesSent: 100 });
    const engine = new ScriptedEngine([[conn], []]);
    const m = new Monitor({ engine, request });
    m.start();
    engine.notices.push(ep({ cookie: "C", bytesSent: 900, state: "CLOSE", process: null }));
    const events = m.refresh();
    expect(events.map((e) => e.type)).toEqual(["closed"]);
    expect(events[0]!.endpoint.bytesSent).toBe(900);
    expect(events[0]!.endpoint.process?.pid).toBe(10);
  });

  test("a notice for a socket that lives on in TIME_WAIT is left to the diff", () => {
    const conn = ep({ cookie: "C" });
    const engine = new ScriptedEngine([[conn], [ep({ cookie: "C", state: "TIME_WAIT", inode: 0, process: null, pids: [] })]]);
    const m = new Monitor({ engine, request });
    m.start();
    engine.notices.push(ep({ cookie: "C", state: "CLOSE", process: null }));
    expect(m.refresh().map((e) => `${e.type}:${e.endpoint.state}`)).toEqual(["state-changed:TIME_WAIT"]);
    expect(m.refresh()).toEqual([]);
  });

  test("an engine without notices is said once", () => {
    const engine: SocketEngine = { name: "plain", snapshot: () => ({ endpoints: [], takenAt: 0, source: "x", notes: [], unreadableProcesses: 0 }), close() {} };
    const m = new Monitor({ engine, request });
    expect(m.notes.join()).toMatch(/shorter than one refresh/);
  });
});

describe("MonitorLoop", () => {
  function fakeTimers() {
    let now = 0;
    const queue: { at: number; fn: () => void; id: number }[] = [];
    let ids = 0;
    const timers: Timers = {
      setTimeout: (fn, ms) => {
        const t = { at: now + ms, fn, id: ++ids };
        queue.push(t);
        return t.id;
      },
      clearTimeout: (id) => {
        const i = queue.findIndex((t) => t.id === id);
        if (i >= 0) queue.splice(i, 1);
      },
    };
    const advance = (ms: number) => {
      const end = now + ms;
      for (let guard = 0; guard < 100_000; guard++) {
        queue.sort((a, b) => a.at - b.at);
        const next = queue[0];
        if (!next || next.at > end) break;
        queue.shift();
        now = next.at;
        next.fn();
      }
      now = end;
    };
    return { timers, advance, clock: () => now };
  }

  test("refreshes once per interval, pauses, resumes and changes interval", () => {
    const { timers, advance, clock } = fakeTimers();
    let refreshes = 0;
    let collects = 0;
    const monitor = { refresh: () => (refreshes++, []), collectClosed: () => collects++ } as unknown as Monitor;
    const loop = new MonitorLoop(monitor, { intervalMs: 1000, onEvents: () => {}, onError: (e) => { throw e; }, timers, clock });
    loop.start();
    advance(3050);
    expect(refreshes).toBe(3);
    expect(collects).toBeGreaterThan(20); // notices are read between refreshes
    loop.pause();
    const collectsBefore = collects;
    advance(5000);
    expect(refreshes).toBe(3);
    // Paused, it keeps reading notices at the usual pace, and does not spin.
    expect(collects - collectsBefore).toBeGreaterThan(40);
    expect(collects - collectsBefore).toBeLessThanOrEqual(51);
    loop.resume();
    advance(10);
    expect(refreshes).toBe(4);
    loop.setInterval(200);
    expect(loop.interval).toBe(200);
    advance(1000);
    expect(refreshes).toBeGreaterThanOrEqual(8);
    loop.stop();
    const stopped = refreshes;
    advance(5000);
    expect(refreshes).toBe(stopped);
  });

  test("a failing refresh is reported and the loop goes on", () => {
    const { timers, advance, clock } = fakeTimers();
    const errors: unknown[] = [];
    let n = 0;
    const monitor = { refresh: () => { if (++n === 1) throw new Error("boom"); return []; }, collectClosed: () => {} } as unknown as Monitor;
    const loop = new MonitorLoop(monitor, { intervalMs: 100, onEvents: () => {}, onError: (e) => errors.push(e), timers, clock });
    loop.start();
    advance(350);
    expect(errors).toHaveLength(1);
    expect(n).toBe(3);
  });

  test("handling that takes its time holds the next refresh, never the reading of notices", async () => {
    const { timers, advance, clock } = fakeTimers();
    let refreshes = 0;
    let collects = 0;
    const monitor = { refresh: () => (refreshes++, []), collectClosed: () => collects++ } as unknown as Monitor;
    let finish: () => void = () => {};
    const loop = new MonitorLoop(monitor, {
      intervalMs: 1000,
      onEvents: () => new Promise<void>((resolve) => (finish = resolve)),
      onError: (e) => { throw e; },
      timers,
      clock,
    });
    loop.start();
    advance(1000);
    expect(refreshes).toBe(1);
    // The rules take 5 s over the first refresh: no refresh overlaps it, notices are still read.
    const collectsBefore = collects;
    advance(5000);
    expect(refreshes).toBe(1);
    expect(collects - collectsBefore).toBeGreaterThanOrEqual(45);
    finish();
    await Promise.resolve();
    await Promise.resolve();
    // The refresh that came due meanwhile starts at once; then the rhythm goes on.
    advance(0);
    expect(refreshes).toBe(2);
    finish();
    await Promise.resolve();
    await Promise.resolve();
    advance(1000);
    expect(refreshes).toBe(3);
    loop.stop();
  });

  test("intervals are clamped to 0.1 s .. 1 h", () => {
    expect([clampInterval(5), clampInterval(1e9), clampInterval(NaN), clampInterval(250)]).toEqual([100, 3_600_000, 1000, 250]);
  });
});

describe("PID reuse", () => {
  test("a PID that now names another process is read again", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "sw-pid-"));
    try {
      fs.writeFileSync(path.join(root, "stat"), "btime 1700000000\n");
      const write = (name: string, start: number) => {
        fs.mkdirSync(path.join(root, "42"), { recursive: true });
        fs.writeFileSync(path.join(root, "42", "stat"), `42 (${name}) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 ${start} 0 0\n`);
        fs.writeFileSync(path.join(root, "42", "comm"), `${name}\n`);
      };
      write("old", 100);
      const reader = new ProcessReader({ procRoot: root, users: new UserTable("/nonexistent"), clockTicks: 100 });
      expect(reader.read(42)?.name).toBe("old");
      write("new", 900);
      expect(reader.read(42)?.name).toBe("old"); // cached until revalidated
      reader.revalidate();
      expect(reader.read(42)?.name).toBe("new");
      fs.rmSync(path.join(root, "42"), { recursive: true });
      reader.revalidate();
      expect(reader.read(42)).toBeNull();
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
