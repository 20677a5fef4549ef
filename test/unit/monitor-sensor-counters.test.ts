/**
 * What the sensor's changes add to what the looks know: a CLOSE carries the socket's final
 * counters (the last look's are older) and the opening time, which no look can tell and which a
 * look replacing the endpoint keeps. The Monitor is the real one over a scripted engine.
 */
import { expect, test } from "vitest";
import type { Endpoint } from "../../src/model/endpoint.ts";
import { endpoint } from "../support/endpoints.ts";
import { scripted } from "./helpers/scripted-monitor.ts";

const OPENED = "2026-12-07T12:00:00.000Z";

const ep = (o: Partial<Endpoint>): Endpoint => endpoint({ bytesSent: 10, bytesReceived: 20, packetsReceived: 2, ...o });

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
