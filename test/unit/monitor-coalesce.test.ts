/**
 * The loop's hold on the sensor's changes under churn: the first changes after quiet go at once,
 * a stream of them is gathered into fewer, larger batches, and quiet ends the hold. The Monitor
 * and MonitorLoop are the real ones; the engine and timers are scripted.
 */
import { describe, expect, test } from "vitest";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { Snapshot, SocketEngine, SocketTransition, TransitionFeed } from "../../src/engine/types.ts";
import { Monitor } from "../../src/monitor/monitor.ts";
import { COALESCE_AFTER, COALESCE_MS, MonitorLoop } from "../../src/monitor/monitor-loop.ts";
import type { EndpointEvent } from "../../src/monitor/events.ts";
import type { Timers } from "../../src/timers.ts";
import { endpoint } from "../support/endpoints.ts";

const ep = (port: number, state: Endpoint["state"]): Endpoint => endpoint({ localPort: port, state, inode: port, cookie: String(port) });

function harness(handleMs: number) {
  let now = 0;
  const waiting: SocketTransition[] = [];
  let ready: (() => void) | null = null;
  const feed: TransitionFeed = { notes: [], drain: () => waiting.splice(0), lost: () => 0, onReady: (r) => void (ready = r), close: () => {} };
  const engine: SocketEngine = {
    name: "scripted",
    snapshot: (): Snapshot => ({ endpoints: [], takenAt: now, source: "scripted", notes: [], unreadableProcesses: 0 }),
    close: () => {},
    transitions: () => feed,
  };
  const monitor = new Monitor({ engine, request: { protocols: new Set(["tcp"]), families: new Set([4]), withProcesses: true }, clock: () => now, transitions: true, closedSockets: false });
  const queue: { at: number; fn: () => void; id: number }[] = [];
  let ids = 0;
  const timers: Timers = {
    setTimeout: (fn, ms) => queue.push({ at: now + ms, fn, id: ++ids }) && ids,
    clearTimeout: (id) => {
      const i = queue.findIndex((t) => t.id === id);
      if (i >= 0) queue.splice(i, 1);
    },
  };
  const batches: { at: number; events: EndpointEvent[] }[] = [];
  const settle: (() => void)[] = [];
  monitor.start();
  const loop = new MonitorLoop(monitor, {
    intervalMs: 60_000,
    resyncMs: 60_000,
    // Handling takes `handleMs` of the scripted clock: it ends when the test's timers get there.
    onEvents: (events, origin) => {
      if (origin !== "sensor") return;
      batches.push({ at: now, events });
      return new Promise<void>((resolve) => {
        queue.push({ at: now + handleMs, fn: () => settle.push(resolve), id: ++ids });
      });
    },
    onError: (e) => {
      throw e;
    },
    timers,
    clock: () => now,
  });
  loop.start();
  let port = 1000;
  return {
    batches,
    loop,
    /** One connect seen by the kernel: the feed wakes the loop. */
    connect() {
      waiting.push({ endpoint: ep(port++, "SYN_SENT"), previousState: "CLOSE", time: now });
      ready?.();
    },
    /** Runs timers up to `ms` later, letting each handled batch's promise settle. */
    async advance(ms: number) {
      const end = now + ms;
      for (let guard = 0; guard < 100_000; guard++) {
        while (settle.length) {
          settle.shift()!();
          await Promise.resolve();
          await Promise.resolve();
        }
        queue.sort((a, b) => a.at - b.at);
        const next = queue[0];
        if (!next || next.at > end) break;
        queue.shift();
        now = next.at;
        next.fn();
      }
      now = end;
    },
  };
}

describe("MonitorLoop under sensor churn", () => {
  test("after quiet, changes go at once; a stream is gathered into batches no closer than the hold", async () => {
    const h = harness(2);
    h.connect();
    expect(h.batches.length).toBe(1);
    expect(h.batches[0]!.at).toBe(0);
    // A change every millisecond for 200 ms while each batch takes 2 ms to handle.
    for (let t = 0; t < 200; t++) {
      await h.advance(1);
      h.connect();
    }
    await h.advance(COALESCE_MS * 4);
    const total = h.batches.reduce((n, b) => n + b.events.length, 0);
    expect(total).toBe(201);
    // Without the hold a batch would go every 2 ms (about 100 of them); with it one per hold at most.
    expect(h.batches.length).toBeLessThanOrEqual(COALESCE_AFTER + Math.ceil(200 / COALESCE_MS) + 1);
    for (let i = COALESCE_AFTER + 1; i < h.batches.length; i++) {
      expect(h.batches[i]!.at - h.batches[i - 1]!.at).toBeGreaterThanOrEqual(COALESCE_MS);
    }
    // After quiet, the next change goes at once again, and so do the few right after it.
    const before = h.batches.length;
    h.connect();
    expect(h.batches.length).toBe(before + 1);
    await h.advance(3);
    h.connect();
    await h.advance(0);
    expect(h.batches.length).toBe(before + 2);
    h.loop.stop();
  });
});
