import { describe, expect, test } from "vitest";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { SocketEngine } from "../../src/engine/types.ts";
import { Monitor } from "../../src/monitor/monitor.ts";
import { endpoint as ep } from "../support/endpoints.ts";

/** An engine with no sockets of its own and the destroy notices the test queues. */
function withNotices(unreadableProcesses = 0) {
  const notices: Endpoint[] = [];
  const engine: SocketEngine = {
    name: "notices",
    snapshot: () => ({ endpoints: [], takenAt: 1000, source: "notices", notes: [], unreadableProcesses }),
    closedSockets: () => ({ drain: () => notices.splice(0), lost: () => 0, close() {} }),
    close() {},
  };
  const request = { protocols: new Set(["tcp", "udp"] as const), families: new Set([4, 6] as const), withProcesses: true };
  return { notices, monitor: new Monitor({ engine, request, clock: () => 1000 }) };
}

const blank = (o: Partial<Endpoint> = {}) =>
  ep({ localAddress: "0.0.0.0", localPort: 0, remoteAddress: "0.0.0.0", remotePort: 0, state: "CLOSE", process: null, pids: [], inode: 0, ...o });

describe("destroy notices without addresses", () => {
  test("become no event; a notice with addresses beside them does", () => {
    const { notices, monitor } = withNotices();
    monitor.start();
    notices.push(
      blank({ cookie: "1" }),
      blank({ cookie: "2", family: 6, localAddress: "::", remoteAddress: "::" }),
      blank({ cookie: "3", protocol: "udp", state: null }),
      ep({ cookie: "4", localPort: 5353, remotePort: 0, remoteAddress: "0.0.0.0", protocol: "udp", state: null, process: null, pids: [] }),
    );
    const events = [...monitor.refresh(), ...monitor.refresh()];
    expect(events.map((e) => `${e.type} ${e.endpoint.protocol} ${e.endpoint.localPort}`)).toEqual(["opened udp 5353", "closed udp 5353"]);
    expect(monitor.lostNotices()).toBe(0);
  });

  test("the first look's unreadable processes are kept for the daemon to tell", () => {
    const { monitor } = withNotices(3);
    expect(monitor.unreadableProcesses).toBe(0);
    monitor.start();
    expect(monitor.unreadableProcesses).toBe(3);
  });
});
