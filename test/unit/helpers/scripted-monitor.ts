/**
 * A scripted engine for the monitor's tests: its snapshots and its sensor's transitions are what
 * the test sets, its clock the test's. The Monitor driven through it is the real one.
 */
import type { Endpoint } from "../../../src/model/endpoint.ts";
import type { Snapshot, SocketEngine, SocketTransition, TransitionFeed } from "../../../src/engine/types.ts";
import { Monitor } from "../../../src/monitor/monitor.ts";

/** An engine whose snapshots and transitions the test sets; its clock is the test's. */
export function scripted(options: { sensor?: boolean } = {}) {
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

export const summary = (events: { type: string; endpoint: Endpoint; previousState?: unknown }[]) =>
  events.map((e) => `${e.type} ${e.endpoint.localPort} ${e.previousState ? `${e.previousState}->` : ""}${e.endpoint.state}`);

