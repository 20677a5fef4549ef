/**
 * A reset frees its port at once and the kernel hands it out again: connections that follow one
 * another on one 4-tuple are each reported, whether or not the sensor's lookup found them (a
 * socket gone before its lookup has no cookie), while late changes of a retired one stay out.
 */
import { describe, expect, test } from "vitest";
import type { Endpoint, Snapshot, SocketEngine, SocketTransition, TransitionFeed } from "../../src/engine/types.ts";
import { Monitor } from "../../src/monitor/monitor.ts";

function ep(o: Partial<Endpoint>): Endpoint {
  return {
    protocol: "tcp", family: 4, localAddress: "127.0.0.1", localPort: 1000, remoteAddress: "127.0.0.1", remotePort: 2000,
    state: "ESTABLISHED", inode: 1, uid: 0, user: "root", interfaceIndex: 0, receiveQueue: 0, sendQueue: 0,
    bytesSent: 0, bytesReceived: 0, packetsSent: 1, packetsReceived: 1, rttMs: 1, cookie: "1",
    process: { pid: 10, name: "beacon", path: null, cmdline: null, uid: 0, user: "root", startTime: null, ppid: 1 }, pids: [10], ...o,
  };
}

/** An engine whose snapshots and transitions the test sets; its clock is the test's. */
function scripted(options: { sensor?: boolean } = {}) {
  let now = 1000;
  let table: Endpoint[] = [];
  let waiting: SocketTransition[] = [];
  let lost = 0;
  let snapshots = 0;
  let ready: (() => void) | null = null;
  const feed: TransitionFeed = {
    notes: [],
    drain: () => waiting.splice(0),
    lost: () => lost,
    onReady: (r) => {
      ready = r;
    },
    close: () => {},
  };
  const engine: SocketEngine = {
    name: "scripted",
    snapshot: (): Snapshot => (snapshots++, { endpoints: table.map((e) => ({ ...e })), takenAt: now, source: "scripted", notes: [], unreadableProcesses: 0 }),
    close: () => {},
    ...(options.sensor === false ? {} : { transitions: () => feed }),
  };
  const monitor = new Monitor({ engine, request: { protocols: new Set(["tcp"]), families: new Set([4]), withProcesses: true }, clock: () => now, transitions: true, closedSockets: false });
  return {
    monitor,
    set table(eps: Endpoint[]) {
      table = eps;
    },
    advance(ms: number) {
      now += ms;
    },
    get snapshots() {
      return snapshots;
    },
    /** What the engine does when the kernel has written records. */
    wake() {
      ready?.();
    },
    lose(n: number) {
      lost += n;
    },
    change(endpoint: Endpoint, previousState: Endpoint["state"], at = now) {
      waiting.push({ endpoint, previousState, time: at });
    },
  };
}

const summary = (events: { type: string; endpoint: Endpoint; previousState?: unknown }[]) =>
  events.map((e) => `${e.type} ${e.endpoint.localPort} ${e.previousState ? `${e.previousState}->` : ""}${e.endpoint.state}`);

describe("connections on the 4-tuple of one just closed", () => {
  test.each([
    { label: "with cookies", cookies: ["11", "12", "13"] },
    { label: "without cookies", cookies: [null, null, null] },
    { label: "the first with a cookie, the next without", cookies: ["11", null, null] },
  ])("each is opened and closed once ($label)", ({ cookies }) => {
    const s = scripted();
    s.monitor.start();
    const events: string[] = [];
    for (let i = 0; i < 3; i++) {
      s.advance(2);
      s.change(ep({ cookie: cookies[i], state: "ESTABLISHED" }), "SYN_SENT");
      if (i < 2) {
        s.advance(1);
        s.change(ep({ cookie: cookies[i], state: "CLOSE" }), "ESTABLISHED");
      }
      events.push(...summary(s.monitor.takeTransitions()));
    }
    expect(events).toEqual([
      "opened 1000 ESTABLISHED", "closed 1000 ESTABLISHED",
      "opened 1000 ESTABLISHED", "closed 1000 ESTABLISHED",
      "opened 1000 ESTABLISHED",
    ]);
  });

  test("a late change of the retired connection does not open it again", () => {
    const s = scripted();
    s.monitor.start();
    s.advance(5);
    s.change(ep({ cookie: null, state: "ESTABLISHED" }), "SYN_SENT");
    s.change(ep({ cookie: null, state: "CLOSE" }), "ESTABLISHED");
    expect(summary(s.monitor.takeTransitions())).toEqual(["opened 1000 ESTABLISHED", "closed 1000 ESTABLISHED"]);
    // Read late, but made before the close.
    s.change(ep({ cookie: null, state: "FIN_WAIT1" }), "ESTABLISHED", 1004);
    expect(summary(s.monitor.takeTransitions())).toEqual([]);
  });

  test("a closed connection that was handed its successor's cookie does not hide the successor", () => {
    const s = scripted();
    s.monitor.start();
    s.advance(2);
    // Its lookup ran after it was reset and found the next connection on the same addresses.
    s.change(ep({ cookie: "13", state: "ESTABLISHED" }), "SYN_SENT");
    s.advance(1);
    s.change(ep({ cookie: "13", state: "CLOSE" }), "ESTABLISHED");
    s.advance(2);
    s.change(ep({ cookie: "13", state: "ESTABLISHED" }), "SYN_SENT");
    expect(summary(s.monitor.takeTransitions())).toEqual(["opened 1000 ESTABLISHED", "closed 1000 ESTABLISHED", "opened 1000 ESTABLISHED"]);
  });
});
