/**
 * After each refresh the loop collects garbage: a young collection, and a full one by the time
 * share; with "when-grown" (watch), a full one only when the process has grown since the last. A
 * full collection at 100k idle sockets cost 40-300 ms and, run by the time share alone, took most
 * of the CPU of a watcher that had nothing to do. The monitor and loop are the real ones; the
 * resident size is scripted.
 */
import { describe, expect, test } from "vitest";
import { MonitorLoop } from "../../src/monitor/monitor-loop.ts";
import { scripted } from "./helpers/scripted-monitor.ts";
import { endpoint as ep } from "../support/endpoints.ts";
import { ManualTimers } from "./helpers/manual-timers.ts";

const MiB = 1 << 20;

function loopWith(resident: () => number, collect: true | "when-grown" = "when-grown") {
  const s = scripted();
  s.table = [ep({ localPort: 1000 })];
  const timers = new ManualTimers();
  s.monitor.start();
  const loop = new MonitorLoop(s.monitor, {
    intervalMs: 1000,
    resyncMs: 30_000,
    onEvents: () => undefined,
    onError: (e) => {
      throw e;
    },
    timers,
    clock: timers.clock,
    collectAfterRefresh: collect,
    residentBytes: resident,
  });
  loop.start();
  return { loop, timers };
}

describe("garbage collection after refreshes, when grown", () => {
  test("a process that does not grow gets one full collection, then young ones only", () => {
    const { loop, timers } = loopWith(() => 150 * MiB);
    timers.advance(60_500);
    expect(loop.collections.full).toBe(1);
    expect(loop.collections.young).toBe(59);
    loop.stop();
  });

  test("growth past the margin brings a full collection, once per growth", () => {
    let rss = 150 * MiB;
    const { loop, timers } = loopWith(() => rss);
    timers.advance(10_500);
    expect(loop.collections.full).toBe(1);
    // Below the margin (the larger of 32 MiB and a quarter): still young.
    rss = 180 * MiB;
    timers.advance(5000);
    expect(loop.collections.full).toBe(1);
    // Past it: one full collection, after which the new size is the reference.
    rss = 200 * MiB;
    timers.advance(5000);
    expect(loop.collections.full).toBe(2);
    rss = 240 * MiB;
    timers.advance(5000);
    expect(loop.collections.full).toBe(2);
    rss = 260 * MiB;
    timers.advance(1000);
    expect(loop.collections.full).toBe(3);
    loop.stop();
  });
});

describe("garbage collection after refreshes, by time share (the daemon)", () => {
  test("full collections follow the share rule whatever the size", () => {
    // The scripted clock does not move while a collection runs: each costs nothing, so the
    // share rule allows one after every refresh.
    const { loop, timers } = loopWith(() => 150 * MiB, true);
    timers.advance(10_500);
    expect(loop.collections.full).toBe(10);
    expect(loop.collections.young).toBe(0);
    loop.stop();
  });
});
