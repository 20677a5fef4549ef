/**
 * The snapshot diff leaves what it is handed as it was (the engine's endpoints and the previous
 * table), and the joining of a cookieless socket with its dump keeps the refresh's event order.
 */
import { describe, expect, test } from "vitest";
import type { Endpoint } from "../../src/model/endpoint.ts";
import { rekeyed } from "../../src/monitor/cookieless-rekey.ts";
import { endpointKey } from "../../src/monitor/endpoint-key.ts";
import { compareEvents, type UnnumberedEvent } from "../../src/monitor/events.ts";
import { diffSnapshots } from "../../src/monitor/snapshot-diff.ts";
import { endpoint, processInfo } from "../support/endpoints.ts";

const asMap = (eps: Endpoint[]) => new Map(eps.map((e) => [endpointKey(e), e]));

describe("diffSnapshots", () => {
  test("carries the opening time and owner over on a copy, leaving the snapshot's endpoints as they came", () => {
    const before = endpoint({ cookie: "1", openedAt: "2026-01-01T00:00:00.000Z", process: processInfo({ pid: 7 }), pids: [7] });
    const seen = endpoint({ cookie: "1", state: "CLOSE_WAIT", openedAt: null, process: null, pids: [] });
    const untouched = structuredClone(seen);
    const previous = asMap([before]);
    const { events, current } = diffSnapshots(previous, [seen], { time: 5, elapsedMs: 1000 });
    expect(seen).toEqual(untouched);
    expect(previous.get("1")).toBe(before);
    const now = current.get("1")!;
    expect(now).not.toBe(seen);
    expect(now).toMatchObject({ state: "CLOSE_WAIT", openedAt: "2026-01-01T00:00:00.000Z", pids: [7] });
    expect(now.process?.pid).toBe(7);
    // The event names the table's endpoint, so what is later learned of it reaches both.
    expect(events.map((e) => e.endpoint)).toEqual([now]);
    expect(events[0]!.endpoint).toBe(now);
  });

  test("a socket its owner let go (inode 0 in the dump: FIN_WAIT, LAST_ACK) keeps the process it had", () => {
    const before = endpoint({ cookie: "2", inode: 4711, state: "ESTABLISHED", process: processInfo({ pid: 9 }), pids: [9] });
    const orphaned = endpoint({ cookie: "2", inode: 0, state: "FIN_WAIT1", process: null, pids: [] });
    const { events } = diffSnapshots(asMap([before]), [orphaned], { time: 5, elapsedMs: 1000 });
    expect(events.map((e) => [e.type, e.endpoint.state, e.endpoint.process?.pid, e.endpoint.pids])).toEqual([["state-changed", "FIN_WAIT1", 9, [9]]]);
    // Another inode under the same key is another owner's socket: nothing carried over.
    const other = endpoint({ cookie: "2", inode: 4712, state: "FIN_WAIT1", process: null, pids: [] });
    expect(diffSnapshots(asMap([before]), [other], { time: 5, elapsedMs: 1000 }).events[0]!.endpoint.process).toBeNull();
  });

  test("hands a socket that needs nothing carried over through as it is", () => {
    const seen = endpoint({ cookie: "1", bytesSent: 10 });
    const { current } = diffSnapshots(asMap([endpoint({ cookie: "1" })]), [seen], { time: 5, elapsedMs: 1000 });
    expect(current.get("1")).toBe(seen);
  });
});

describe("rekeyed", () => {
  test("a cookieless socket found again under its cookie becomes one state change, in event order", () => {
    // Sorted as the diff leaves them: opens, then counters, then closes.
    const sensed = endpoint({ cookie: null, localPort: 1005, state: "ESTABLISHED", openedAt: "2026-01-01T00:00:00.000Z" });
    const dumped = endpoint({ cookie: "9", localPort: 1005, state: "CLOSE_WAIT", process: null, pids: [] });
    const events: UnnumberedEvent[] = [
      { type: "opened", time: 1, endpoint: endpoint({ cookie: "2", localPort: 1001 }) },
      { type: "opened", time: 1, endpoint: dumped },
      { type: "opened", time: 1, endpoint: endpoint({ cookie: "3", localPort: 1009 }) },
      { type: "counters", time: 1, endpoint: endpoint({ cookie: "4", localPort: 1000 }) },
      { type: "closed", time: 1, endpoint: sensed },
    ];
    const out = rekeyed(events);
    expect(out.map((e) => `${e.type}:${e.endpoint.localPort}`)).toEqual(["opened:1001", "opened:1009", "state-changed:1005", "counters:1000"]);
    expect([...out].sort(compareEvents)).toEqual(out);
    expect(out[2]!.previousState).toBe("ESTABLISHED");
    expect(dumped.openedAt).toBe("2026-01-01T00:00:00.000Z");
    expect(dumped.process?.pid).toBe(10);
  });
});
