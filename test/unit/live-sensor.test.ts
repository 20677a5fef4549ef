/**
 * The live view with the sensor running: state changes come into the table as the kernel makes
 * them, between refreshes, without ageing the highlights (which last three refreshes), and a
 * burst of them is drawn as one screen. A real Monitor and MonitorLoop over a scripted engine
 * with a transition feed; manual timers; a terminal that counts its frames.
 */
import { describe, expect, test } from "vitest";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { SnapshotRequest, SocketEngine, SocketTransition, TransitionFeed } from "../../src/engine/types.ts";
import type { EndpointEvent } from "../../src/monitor/events.ts";
import { Monitor } from "../../src/monitor/monitor.ts";
import { SCREEN } from "../../src/view/live/ansi.ts";
import { LiveController } from "../../src/view/live/controller.ts";
import { LiveModel } from "../../src/view/live/model.ts";
import type { LiveTerminal } from "../../src/view/live/terminal.ts";
import { ManualTimers } from "./helpers/manual-timers.ts";
import { endpoint, processInfo } from "../support/endpoints.ts";

const ep = (port: number, o: Partial<Endpoint> = {}): Endpoint =>
  endpoint({ localPort: port, remotePort: 9000, inode: port, cookie: String(port), process: processInfo({ pid: port, name: `p${port}` }), pids: [port], ...o });

const ev = (type: EndpointEvent["type"], endpoint: Endpoint, seq = 1): EndpointEvent => ({ type, endpoint, seq, time: 1 });
const highlights = (m: LiveModel) => m.view().map((r) => `${r.endpoint.localPort}:${r.highlight ?? "-"}`);

describe("the live model with the sensor's events", () => {
  test("events between refreshes set highlights and age none; refreshes age them", () => {
    const m = new LiveModel({ connectedOnly: false });
    m.applyEvents([ev("opened", ep(5))]);
    for (let i = 0; i < 10; i++) m.applyEvents([ev("opened", ep(100 + i))]);
    expect(highlights(m).filter((h) => h.startsWith("5:"))).toEqual(["5:new"]);
    m.applyRefresh([]);
    m.applyRefresh([]);
    expect(highlights(m).filter((h) => h.startsWith("5:"))).toEqual(["5:new"]);
    m.applyRefresh([]);
    expect(highlights(m).filter((h) => h.startsWith("5:"))).toEqual(["5:-"]);
  });

  test("a new row whose state changes (SYN_SENT, then ESTABLISHED) stays new, with the new state", () => {
    const m = new LiveModel({ connectedOnly: false });
    m.applyEvents([ev("opened", ep(5, { state: "SYN_SENT" }))]);
    m.applyEvents([ev("state-changed", ep(5))]);
    expect(highlights(m)).toEqual(["5:new"]);
    expect(m.view()[0]!.endpoint.state).toBe("ESTABLISHED");
  });
});

class CountingTerminal implements LiveTerminal {
  output = "";
  frames = 0;
  size() {
    return { columns: 120, rows: 40 };
  }
  write(text: string) {
    this.output += text;
    if (text.startsWith(SCREEN.home)) this.frames++;
  }
  open() {}
  restore() {}
  text(): string {
    const last = this.output.lastIndexOf(SCREEN.home);
    return this.output.slice(last + SCREEN.home.length).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
  }
}

describe("the live view with the sensor running", () => {
  function setup() {
    const timers = new ManualTimers();
    const waiting: SocketTransition[] = [];
    let ready: (() => void) | null = null;
    const dumps: string[] = [];
    const feed: TransitionFeed = { notes: [], drain: () => waiting.splice(0), lost: () => 0, onReady: (r) => void (ready = r), close: () => {} };
    const engine: SocketEngine = {
      name: "scripted",
      snapshot: (request: SnapshotRequest) => {
        dumps.push([...request.protocols].sort().join("+"));
        return { endpoints: [ep(1001)], takenAt: 1_000_000 + timers.now, source: "scripted", notes: [], unreadableProcesses: 0 };
      },
      transitions: () => feed,
      close: () => {},
    };
    const monitor = new Monitor({ engine, request: { protocols: new Set(["tcp", "udp"]), families: new Set([4]), withProcesses: true }, transitions: true, counters: true, closedSockets: false, clock: () => 1_000_000 + timers.now });
    const terminal = new CountingTerminal();
    const controller = new LiveController({
      monitor, terminal, timers, clock: timers.clock, intervalMs: 1000, resyncMs: 5000, names: false, connectedOnly: true, colour: false,
      actions: { closeEndpoint: async () => ({ ok: true, message: "" }), endProcess: async () => ({ ok: true, message: "" }) },
      processDetails: () => null,
    });
    void controller.run();
    const change = (endpoint: Endpoint, previousState: Endpoint["state"]) => {
      waiting.push({ endpoint, previousState, time: 1_000_000 + timers.now });
      ready?.();
    };
    return { timers, terminal, controller, dumps, change };
  }

  test("a change shows between refreshes, and a burst of them is drawn as one screen", () => {
    const s = setup();
    s.timers.advance(500);
    const frames = s.terminal.frames;
    s.change(ep(2001, { state: "SYN_SENT" }), "CLOSE");
    // Drawn at once: nothing was drawn for a while.
    expect(s.terminal.frames).toBe(frames + 1);
    expect(s.terminal.text()).toContain("2001");
    for (let i = 0; i < 20; i++) s.change(ep(3000 + i), "SYN_SENT");
    expect(s.terminal.frames).toBe(frames + 1);
    s.timers.advance(60);
    expect(s.terminal.frames).toBe(frames + 2);
    expect(s.terminal.text()).toContain("3019");
    s.controller.stop();
  });

  test("the view's counters need TCP: every refresh dumps TCP and UDP, resync or not", () => {
    const s = setup();
    s.timers.advance(6050);
    expect(s.dumps).toEqual(Array(7).fill("tcp+udp"));
    s.controller.stop();
  });
});
