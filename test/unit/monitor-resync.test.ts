/**
 * With the sensor running, the refresh every interval dumps only what the sensor does not cover
 * (UDP, and TCP when counters are wanted) and compares only that; a full dump (the resync) comes
 * every resync period and at once after lost sensor changes. Without the sensor every refresh is
 * full. The engine is scripted and records what each snapshot asked for; Monitor and MonitorLoop
 * are the real ones, driven by manual timers.
 */
import { describe, expect, test } from "vitest";
import type { Endpoint, Protocol } from "../../src/model/endpoint.ts";
import type { Snapshot, SnapshotRequest, SocketEngine, SocketTransition, TransitionFeed } from "../../src/engine/types.ts";
import { UnsupportedError } from "../../src/errors.ts";
import type { EndpointEvent } from "../../src/monitor/events.ts";
import { Monitor } from "../../src/monitor/monitor.ts";
import { MonitorLoop, clampResync } from "../../src/monitor/monitor-loop.ts";
import { ManualTimers } from "./helpers/manual-timers.ts";
import { endpoint as ep } from "../support/endpoints.ts";


const udp = (o: Partial<Endpoint>): Endpoint =>
  ep({ protocol: "udp", state: null, remoteAddress: "0.0.0.0", remotePort: 0, bytesSent: null, bytesReceived: null, packetsSent: null, packetsReceived: null, rttMs: null, ...o });

type SensorMode = "runs" | "absent" | "refused";

/** An engine whose table and sensor the test sets; each snapshot dumps only what it is asked. */
function scripted(options: { sensor?: SensorMode; protocols?: Protocol[]; counters?: boolean; requireSensor?: boolean; tcpDumpMs?: number } = {}) {
  const timers = new ManualTimers();
  const wall = () => 1_000_000 + timers.now;
  let table: Endpoint[] = [];
  const waiting: SocketTransition[] = [];
  let lost = 0;
  let ready: (() => void) | null = null;
  /** What each snapshot asked for, e.g. "tcp+udp" or "udp". */
  const dumps: string[] = [];
  let closed = 0;
  const feed: TransitionFeed = {
    notes: [],
    drain: () => waiting.splice(0),
    lost: () => lost,
    onReady: (r) => {
      ready = r;
    },
    close: () => {},
  };
  const sensor = options.sensor ?? "runs";
  const engine: SocketEngine = {
    name: "scripted",
    snapshot: (request: SnapshotRequest): Snapshot => {
      dumps.push([...request.protocols].sort().join("+"));
      // A dump of TCP costs this long (driven time), as one of many sockets does.
      if (request.protocols.has("tcp")) timers.now += options.tcpDumpMs ?? 0;
      const endpoints = table.filter((e) => request.protocols.has(e.protocol)).map((e) => ({ ...e }));
      return { endpoints, takenAt: wall(), source: "scripted", notes: [], unreadableProcesses: 0 };
    },
    close: () => {
      closed++;
    },
    ...(sensor === "absent"
      ? {}
      : {
          transitions: () => {
            if (sensor === "refused") throw new UnsupportedError("eBPF sensor unavailable: this process lacks the capabilities");
            return feed;
          },
        }),
  };
  const monitor = new Monitor({
    engine,
    request: { protocols: new Set(options.protocols ?? ["tcp", "udp"]), families: new Set([4]), withProcesses: true },
    clock: wall,
    transitions: true,
    requireSensor: options.requireSensor,
    counters: options.counters,
    closedSockets: false,
  });
  return {
    monitor,
    timers,
    dumps,
    get engineClosed() {
      return closed;
    },
    set table(eps: Endpoint[]) {
      table = eps;
    },
    change(endpoint: Endpoint, previousState: Endpoint["state"], at = wall()) {
      waiting.push({ endpoint, previousState, time: at });
      ready?.();
    },
    lose(n: number) {
      lost += n;
      ready?.();
    },
    /** The loop over this monitor, started after the first look; its events are collected. */
    loop(intervalMs: number, resyncMs: number, resyncAdaptive = false) {
      const got: EndpointEvent[] = [];
      monitor.start();
      const loop = new MonitorLoop(monitor, { intervalMs, resyncMs, resyncAdaptive, onEvents: (e) => void got.push(...e), onError: (e) => { throw e; }, timers, clock: timers.clock });
      loop.start();
      return { loop, got };
    },
  };
}

const summary = (events: readonly EndpointEvent[]) => events.map((e) => `${e.type} ${e.endpoint.protocol} ${e.endpoint.localPort}${e.endpoint.state ? ` ${e.endpoint.state}` : ""}`);

describe("refreshes with the sensor running", () => {
  test("every interval dumps UDP only; every resync dumps everything", () => {
    const s = scripted();
    const { loop } = s.loop(1000, 5000);
    s.timers.advance(10_050);
    // The first look, then nine partial refreshes and two resyncs, each resync in place of the
    // partial refresh due at the same moment.
    expect(s.dumps).toEqual(["tcp+udp", "udp", "udp", "udp", "udp", "tcp+udp", "udp", "udp", "udp", "udp", "tcp+udp"]);
    loop.stop();
  });

  test("a resync comes at its time even when the interval is longer", () => {
    const s = scripted();
    const { loop } = s.loop(10_000, 3000);
    s.timers.advance(10_050);
    // Resyncs at 3, 6 and 9 s; the interval's own refresh at 10 s is partial.
    expect(s.dumps).toEqual(["tcp+udp", "tcp+udp", "tcp+udp", "tcp+udp", "udp"]);
    loop.setResync(60_000);
    s.timers.advance(30_000);
    // The resync already due (12 s) stays; the next is a minute after it.
    expect(s.dumps.slice(5)).toEqual(["tcp+udp", "udp", "udp", "udp"]);
    loop.stop();
  });

  test("a resync period not asked for grows where full dumps are slow, to keep them within 1% of the time; one asked for is kept", () => {
    const resyncsIn = (adaptive: boolean, tcpDumpMs: number) => {
      const s = scripted({ tcpDumpMs });
      const { loop } = s.loop(1000, 30_000, adaptive);
      s.timers.advance(300_000);
      loop.stop();
      // The first look is one of the dumps with TCP.
      return s.dumps.filter((d) => d.includes("tcp")).length - 1;
    };
    // 0.7 s a dump: at most one every 70 s, the first at 30 s (30, 100.7, 171.4, 242.1).
    expect(resyncsIn(true, 700)).toBe(4);
    // Asked for: every 30 s, whatever a dump costs.
    expect(resyncsIn(false, 700)).toBe(10);
    // A fast dump (70 ms) keeps the 30 s rhythm.
    expect(resyncsIn(true, 70)).toBe(10);
  });

  test("a connection whose CLOSE the sensor never told, found by a dump as its TIME_WAIT successor, is told closed there, once", () => {
    const s = scripted();
    const { loop, got } = s.loop(1000, 5000);
    const conn = ep({ cookie: "31", localPort: 7900, remotePort: 31002, state: "ESTABLISHED", bytesSent: 1, bytesReceived: 2 });
    s.change(conn, "SYN_RECV");
    s.change({ ...conn, state: "FIN_WAIT1" }, "ESTABLISHED");
    // Its FIN_WAIT2 and CLOSE records never come; the kernel keeps a TIME_WAIT socket under its cookie.
    s.table = [{ ...conn, state: "TIME_WAIT", inode: 0, bytesSent: null, bytesReceived: null, packetsSent: null, packetsReceived: null }];
    s.timers.advance(5000);
    expect(summary(got)).toEqual(["opened tcp 7900 ESTABLISHED", "state-changed tcp 7900 FIN_WAIT1", "closed tcp 7900 FIN_WAIT1"]);
    expect(got[2]!.endpoint).toMatchObject({ bytesSent: 1, bytesReceived: 2 });
    // Later dumps that still find the TIME_WAIT socket, and the one that finds it gone, say nothing more.
    s.timers.advance(5000);
    s.table = [];
    s.timers.advance(15_000);
    expect(got).toHaveLength(3);
    loop.stop();
  });

  test("the resync period is kept within 1 s .. 1 day", () => {
    expect(clampResync(10)).toBe(1000);
    expect(clampResync(30_000)).toBe(30_000);
    expect(clampResync(1e12)).toBe(86_400_000);
    expect(clampResync(Number.NaN)).toBe(30_000);
  });

  test("a partial refresh reports UDP changes and never closes the TCP endpoints it left out", () => {
    const s = scripted();
    const listener = ep({ cookie: "1", localPort: 80, remoteAddress: "0.0.0.0", remotePort: 0, state: "LISTEN" });
    const conn = ep({ cookie: "2", localPort: 80, remotePort: 40000 });
    const dns = udp({ cookie: "3", localPort: 53 });
    s.table = [listener, conn, dns];
    const { loop, got } = s.loop(1000, 30_000);
    // UDP changes between looks: a socket goes, another comes.
    s.table = [listener, conn, udp({ cookie: "4", localPort: 5353 })];
    s.timers.advance(1000);
    expect(s.dumps.at(-1)).toBe("udp");
    expect(summary(got)).toEqual(["opened udp 5353", "closed udp 53"]);
    // A few more partial refreshes: the TCP endpoints stay in the table, nothing is said of them.
    s.timers.advance(3000);
    expect(summary(got)).toHaveLength(2);
    expect(s.monitor.current().filter((e) => e.protocol === "tcp").map((e) => e.cookie).sort()).toEqual(["1", "2"]);
    // The resync compares TCP too: a connection gone without the sensor saying so closes there.
    s.table = [listener, udp({ cookie: "4", localPort: 5353 })];
    s.timers.advance(26_000);
    expect(s.dumps.at(-1)).toBe("tcp+udp");
    expect(summary(got.slice(2))).toEqual(["closed tcp 80 ESTABLISHED"]);
    loop.stop();
  });

  test("TCP state changes come from the sensor at once; the partial refreshes add nothing to them", () => {
    const s = scripted();
    const { loop, got } = s.loop(1000, 30_000);
    const conn = ep({ cookie: "7", localPort: 41000, remotePort: 80, state: "SYN_SENT" });
    s.change(conn, "CLOSE");
    s.change({ ...conn, state: "ESTABLISHED" }, "SYN_SENT");
    expect(summary(got)).toEqual(["opened tcp 41000 SYN_SENT", "state-changed tcp 41000 ESTABLISHED"]);
    // The dump never shows it (TCP is not dumped between resyncs); the table keeps it.
    s.timers.advance(5000);
    expect(got).toHaveLength(2);
    expect(s.monitor.table().has("7")).toBe(true);
    s.change({ ...conn, state: "FIN_WAIT1" }, "ESTABLISHED");
    s.change({ ...conn, state: "CLOSE" }, "FIN_WAIT2");
    expect(summary(got.slice(2))).toEqual(["state-changed tcp 41000 FIN_WAIT1", "closed tcp 41000 FIN_WAIT1"]);
    loop.stop();
  });

  test("a connection the sensor closed is not reported again by resyncs that find its TIME_WAIT, however many partial refreshes came between", () => {
    const s = scripted();
    const { loop, got } = s.loop(1000, 10_000);
    const conn = ep({ cookie: "9", localPort: 42000, remotePort: 443 });
    s.change(conn, "SYN_SENT");
    s.change({ ...conn, state: "CLOSE" }, "FIN_WAIT2");
    expect(summary(got)).toEqual(["opened tcp 42000 ESTABLISHED", "closed tcp 42000 ESTABLISHED"]);
    // Its TIME_WAIT successor keeps the cookie and outlives several resyncs (60 s on Linux).
    s.table = [ep({ cookie: "9", localPort: 42000, remotePort: 443, state: "TIME_WAIT", inode: 0, process: null, pids: [] })];
    s.timers.advance(9_500);
    expect(s.dumps.filter((d) => d === "udp")).toHaveLength(9);
    s.timers.advance(30_000);
    s.table = [];
    s.timers.advance(30_000);
    expect(s.dumps.filter((d) => d === "tcp+udp").length).toBeGreaterThanOrEqual(7);
    expect(summary(got)).toHaveLength(2);
    loop.stop();
  });

  test("a connection closed without a cookie: its TIME_WAIT, found by addresses at a resync, is not told; a new connection on those addresses is", () => {
    const s = scripted();
    const { loop, got } = s.loop(1000, 10_000);
    // The sensor's socket table lookup came too late: no cookie, the addresses name it.
    const gone = ep({ cookie: null, inode: 0, localPort: 44000, remotePort: 443 });
    s.change(gone, "SYN_SENT");
    s.change({ ...gone, state: "CLOSE" }, "FIN_WAIT2");
    s.table = [ep({ cookie: "70", inode: 0, localPort: 44000, remotePort: 443, state: "TIME_WAIT", process: null, pids: [] })];
    s.timers.advance(10_500);
    expect(summary(got)).toEqual(["opened tcp 44000 ESTABLISHED", "closed tcp 44000 ESTABLISHED"]);
    // The same client port again (the TIME_WAIT is gone), between resyncs.
    const again = ep({ cookie: "71", localPort: 44000, remotePort: 443, state: "SYN_SENT" });
    s.change(again, "CLOSE");
    s.change({ ...again, state: "ESTABLISHED" }, "SYN_SENT");
    s.table = [{ ...again, state: "ESTABLISHED" }];
    s.timers.advance(20_000);
    expect(summary(got.slice(2))).toEqual(["opened tcp 44000 SYN_SENT", "state-changed tcp 44000 ESTABLISHED"]);
    loop.stop();
  });

  test("a change made just before a UDP-only dump began is not taken for stale", () => {
    const s = scripted();
    const conn = ep({ cookie: "5", localPort: 43000, remotePort: 22 });
    s.table = [conn];
    s.monitor.start();
    s.timers.advance(1000);
    expect(s.monitor.refresh("partial")).toEqual([]);
    expect(s.dumps.at(-1)).toBe("udp");
    // Written by the kernel just before that dump began, read only once it was under way: the
    // dump had no TCP in it, so nothing has told this change yet.
    s.change({ ...conn, state: "CLOSE_WAIT" }, "ESTABLISHED", 1_000_999);
    expect(summary(s.monitor.takeTransitions())).toEqual(["state-changed tcp 43000 CLOSE_WAIT"]);
  });

  test("changes the sensor lost bring a full dump at once, and the resync rhythm goes on", () => {
    const s = scripted();
    const { loop } = s.loop(1000, 10_000);
    s.timers.advance(2500);
    expect(s.dumps).toEqual(["tcp+udp", "udp", "udp"]);
    s.lose(4);
    s.timers.advance(0);
    expect(s.dumps).toEqual(["tcp+udp", "udp", "udp", "tcp+udp"]);
    expect(s.monitor.resyncDue).toBe(false);
    s.timers.advance(7600);
    // The interval restarts from the loss's refresh; the resync stays at 10 s.
    expect(s.dumps.slice(4)).toEqual(["udp", "udp", "udp", "udp", "udp", "udp", "udp", "tcp+udp"]);
    loop.stop();
  });

  test("a loss found by the refresh itself makes that refresh full", () => {
    const s = scripted();
    s.monitor.start();
    s.timers.advance(1000);
    s.lose(1);
    s.monitor.refresh("partial");
    expect(s.dumps.at(-1)).toBe("tcp+udp");
  });

  test("with counters wanted every interval dumps TCP too, and the sensor still reports at once", () => {
    const s = scripted({ counters: true });
    const conn = ep({ cookie: "2", localPort: 80, remotePort: 40000, bytesSent: 0 });
    s.table = [conn];
    const { loop, got } = s.loop(1000, 30_000);
    s.table = [{ ...conn, bytesSent: 5000 }];
    s.timers.advance(1000);
    expect(s.dumps).toEqual(["tcp+udp", "tcp+udp"]);
    expect(summary(got)).toEqual(["counters tcp 80 ESTABLISHED"]);
    expect(got[0]!.counters?.bytesSentPerSecond).toBe(5000);
    s.change({ ...conn, state: "CLOSE_WAIT" }, "ESTABLISHED");
    expect(summary(got.slice(1))).toEqual(["state-changed tcp 80 CLOSE_WAIT"]);
    // Counters can be asked for later (a rule that subscribes to them, loaded on a reload).
    s.monitor.counters = false;
    s.timers.advance(1000);
    expect(s.dumps.at(-1)).toBe("udp");
    loop.stop();
  });

  test("counters' rates at a resync are over the time since TCP was last dumped", () => {
    const s = scripted();
    const conn = ep({ cookie: "2", localPort: 80, remotePort: 40000, bytesSent: 0 });
    s.table = [conn];
    const { loop, got } = s.loop(1000, 10_000);
    s.table = [{ ...conn, bytesSent: 100_000 }];
    s.timers.advance(10_000);
    const counters = got.filter((e) => e.type === "counters");
    expect(counters).toHaveLength(1);
    expect(counters[0]!.counters?.intervalMs).toBe(10_000);
    expect(counters[0]!.counters?.bytesSentPerSecond).toBe(10_000);
    loop.stop();
  });

  test("with TCP alone asked for and no counters, the refreshes between resyncs dump nothing", () => {
    const s = scripted({ protocols: ["tcp"] });
    const { loop, got } = s.loop(1000, 5000);
    s.timers.advance(4500);
    expect(s.dumps).toEqual(["tcp"]);
    s.change(ep({ cookie: "8", state: "SYN_SENT" }), "CLOSE");
    expect(summary(got)).toEqual(["opened tcp 1000 SYN_SENT"]);
    s.timers.advance(600);
    expect(s.dumps).toEqual(["tcp", "tcp"]);
    loop.stop();
  });
});

describe("refreshes without the sensor", () => {
  test.each<[string, SensorMode]>([
    ["an engine with no sensor", "absent"],
    ["a sensor that cannot start", "refused"],
  ])("%s: a full dump every interval, whatever the resync period", (_name, sensor) => {
    const s = scripted({ sensor });
    expect(s.monitor.sensing).toBe(false);
    expect(s.monitor.notes).toHaveLength(1);
    expect(s.monitor.notes[0]).toMatch(/polling every refresh/);
    const conn = ep({ cookie: "2", localPort: 80, remotePort: 40000 });
    s.table = [conn, udp({ cookie: "3", localPort: 53 })];
    const { loop, got } = s.loop(1000, 2000);
    s.table = [udp({ cookie: "3", localPort: 53 })];
    s.timers.advance(5050);
    expect(s.dumps).toEqual(["tcp+udp", "tcp+udp", "tcp+udp", "tcp+udp", "tcp+udp", "tcp+udp"]);
    expect(summary(got)).toEqual(["closed tcp 80 ESTABLISHED"]);
    loop.stop();
  });

  test("a sensor required and unavailable is an error of its own, and what was opened is released", () => {
    expect(() => scripted({ sensor: "refused", requireSensor: true })).toThrow(UnsupportedError);
    try {
      scripted({ sensor: "refused", requireSensor: true });
    } catch (err) {
      expect((err as Error).message).toBe("eBPF sensor unavailable: this process lacks the capabilities; --sensor auto would poll instead");
      expect((err as UnsupportedError).exitCode).toBe(5);
    }
    expect(() => scripted({ sensor: "absent", requireSensor: true })).toThrow(/^eBPF sensor unavailable: the scripted engine has no sensor of state changes; --sensor auto would poll instead$/);
  });
});
