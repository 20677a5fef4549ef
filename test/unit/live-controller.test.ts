/**
 * The whole live view on fakes: a scripted engine behind a real Monitor and MonitorLoop, a
 * terminal that records what is written, manual timers, and recording actions.
 */
import { describe, expect, test } from "vitest";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { ProcessDetails, ProcessInfo } from "../../src/model/process.ts";
import type { SocketEngine } from "../../src/engine/types.ts";
import { Monitor } from "../../src/monitor/monitor.ts";
import { ManualTimers } from "./helpers/manual-timers.ts";
import { RESTORE, ENTER, SCREEN } from "../../src/view/live/ansi.ts";
import { LiveController, type ActionResult } from "../../src/view/live/controller.ts";
import type { LiveTerminal } from "../../src/view/live/terminal.ts";
import { endpoint, namedProcess } from "../support/endpoints.ts";

const proc = (pid: number, name: string, startTime = "2026-01-01T00:00:00.000Z"): ProcessInfo => namedProcess(pid, name, { startTime });

const ep = (port: number, o: Partial<Endpoint> = {}): Endpoint =>
  endpoint({ localPort: port, remotePort: 9000, inode: port, cookie: String(port), process: proc(port, `p${port}`), pids: [port], ...o });

class FakeEngine implements SocketEngine {
  readonly name = "fake";
  endpoints: Endpoint[] = [];
  snapshots = 0;
  closed = false;
  snapshot() {
    this.snapshots++;
    // Fresh objects each time, as a real dump gives.
    return { endpoints: this.endpoints.map((e) => ({ ...e })), takenAt: 1000 + this.snapshots, source: "fake", notes: [], unreadableProcesses: 0 };
  }
  close() {
    this.closed = true;
  }
}

class FakeTerminal implements LiveTerminal {
  columns = 120;
  rows = 16;
  output = "";
  restored = 0;
  isOpen = false;
  handlers: { onData(d: string): void; onResize(): void; onEnd(): void } | null = null;
  size() {
    return { columns: this.columns, rows: this.rows };
  }
  write(text: string) {
    this.output += text;
  }
  open(h: { onData(d: string): void; onResize(): void; onEnd(): void }) {
    this.handlers = h;
    this.isOpen = true;
    this.output += ENTER;
  }
  restore() {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.restored++;
    this.output += RESTORE;
  }
  type(keys: string) {
    this.handlers!.onData(keys);
  }
  /** The last frame drawn, as lines of text with escapes. */
  frame(): string[] {
    const last = this.output.lastIndexOf(SCREEN.home);
    return this.output.slice(last + SCREEN.home.length).split("\r\n");
  }
  text(): string {
    return this.frame().map((l) => l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")).join("\n");
  }
  lineWith(s: string): string {
    const line = this.frame().find((l) => l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").includes(s));
    if (!line) throw new Error(`no line with ${s} in:\n${this.text()}`);
    return line;
  }
}

function setup(o: { details?: (pid: number) => ProcessDetails | null; close?: (ep: Endpoint) => Promise<ActionResult> } = {}) {
  const engine = new FakeEngine();
  engine.endpoints = [ep(1001), ep(1002)];
  const timers = new ManualTimers();
  const terminal = new FakeTerminal();
  const calls: string[] = [];
  const monitor = new Monitor({ engine, request: { protocols: new Set(["tcp"]), families: new Set([4, 6]), withProcesses: true }, closedSockets: false });
  const controller = new LiveController({
    monitor,
    terminal,
    actions: {
      closeEndpoint: o.close ?? (async (e) => (calls.push(`close ${e.localPort}`), { ok: true, message: `closed ${e.localPort}` })),
      endProcess: async (e) => (calls.push(`end ${e.process?.pid}`), { ok: false, message: "cannot end it" }),
    },
    processDetails: o.details ?? (() => null),
    intervalMs: 1000,
    names: false,
    connectedOnly: true,
    sortColumn: "localPort",
    colour: true,
    timers,
    clock: () => timers.now,
    now: () => Date.parse("2026-01-01T00:10:00Z"),
  });
  const done = controller.run();
  let settled: "resolved" | "rejected" | null = null;
  let error: unknown = null;
  done.then(
    () => (settled = "resolved"),
    (e) => ((settled = "rejected"), (error = e)),
  );
  const flush = () => new Promise((r) => setTimeout(r, 0));
  return { engine, timers, terminal, calls, controller, done, flush, state: () => ({ settled, error }) };
}

describe("live controller", () => {
  test("enters full screen, draws, refreshes every interval with highlights, and quits on q", async () => {
    const s = setup();
    expect(s.terminal.output.startsWith(ENTER)).toBe(true);
    expect(s.terminal.text()).toContain("p1001");
    s.engine.endpoints = [ep(1001), ep(1003)];
    s.timers.advance(1000);
    expect(s.engine.snapshots).toBe(2);
    expect(s.terminal.lineWith("p1003")).toMatch(/^\x1b\[32m/);
    expect(s.terminal.lineWith("p1002")).toMatch(/^\x1b\[31m/);
    s.terminal.type("q");
    await s.done;
    expect(s.terminal.restored).toBe(1);
    expect(s.terminal.output.endsWith(RESTORE)).toBe(true);
    expect(s.engine.closed).toBe(true);
  });

  test("pause freezes the table; F5 refreshes once while paused; resume refreshes at once", async () => {
    const s = setup();
    s.terminal.type(" ");
    expect(s.terminal.frame()[0]).toContain("PAUSED");
    s.engine.endpoints = [ep(1001), ep(1002), ep(1004)];
    s.timers.advance(5000);
    expect(s.engine.snapshots).toBe(1);
    expect(s.terminal.text()).not.toContain("p1004");
    s.terminal.type("\x1b[15~");
    expect(s.engine.snapshots).toBe(2);
    expect(s.terminal.lineWith("p1004")).toMatch(/^\x1b\[32m/);
    s.engine.endpoints = [ep(1001), ep(1002), ep(1004), ep(1005)];
    s.terminal.type("p");
    s.timers.advance(100);
    expect(s.terminal.text()).toContain("p1005");
    s.controller.stop();
    await s.done;
  });

  test("+ and - change the interval the loop uses", async () => {
    const s = setup();
    s.terminal.type("++");
    expect(s.terminal.frame()[0]).toContain("every 5 s");
    // The refresh already due at 1 s stays; the ones after it come every 5 s.
    s.timers.advance(1000);
    expect(s.engine.snapshots).toBe(2);
    s.timers.advance(4000);
    expect(s.engine.snapshots).toBe(2);
    s.timers.advance(1100);
    expect(s.engine.snapshots).toBe(3);
    s.terminal.type("---");
    expect(s.terminal.frame()[0]).toContain("every 0.5 s");
    s.timers.advance(600);
    expect(s.engine.snapshots).toBe(4);
    s.controller.stop();
    await s.done;
  });

  test("c then y closes the selected connection and shows the outcome", async () => {
    const s = setup();
    s.terminal.type("j");
    s.terminal.type("c");
    expect(s.terminal.frame().at(-1)).toContain("Close tcp 127.0.0.1:1002 -> 127.0.0.1:9000 (p1002, pid 1002)? (y/n)");
    s.terminal.type("y");
    await s.flush();
    expect(s.calls).toEqual(["close 1002"]);
    expect(s.terminal.frame().at(-1)).toContain("closed 1002");
    // A successful close asks for a refresh at once rather than after the interval.
    s.timers.advance(100);
    expect(s.engine.snapshots).toBe(2);
    s.terminal.type("c");
    s.terminal.type("n");
    expect(s.calls).toEqual(["close 1002"]);
    s.controller.stop();
    await s.done;
  });

  test("K then y ends the process; a failure shows in red", async () => {
    const s = setup();
    s.terminal.type("K");
    s.terminal.type("y");
    await s.flush();
    expect(s.calls).toEqual(["end 1001"]);
    expect(s.terminal.frame().at(-1)).toMatch(/^\x1b\[31m cannot end it/);
    s.controller.stop();
    await s.done;
  });

  test("Enter opens the properties panel; a reused PID is pointed out", async () => {
    const details = (pid: number): ProcessDetails => ({
      ...proc(pid, "impostor", "2026-01-01T00:09:00.000Z"), ppidName: "init", cgroup: "/x.slice/y.service", unit: "y.service",
      unitUid: null, state: "S (sleeping)", threads: 1, rssKiB: 100, fdCount: 3, netns: 1,
    });
    const asked: number[] = [];
    const s = setup({ details: (pid) => (asked.push(pid), details(pid)) });
    s.terminal.type("\r");
    expect(asked).toEqual([1001]);
    expect(s.terminal.text()).toContain("Properties of p1001 (pid 1001)");
    expect(s.terminal.text()).toContain("now belongs to another process");
    expect(s.terminal.text()).toMatch(/Unit: +y\.service/);
    s.terminal.type("\x1b");
    expect(s.terminal.text()).not.toContain("Properties of");
    s.controller.stop();
    await s.done;
  });

  test("redraws to the new size on resize", async () => {
    const s = setup();
    expect(s.terminal.frame()[0]!.replace(/\x1b\[[0-9;]*m/g, "")).toHaveLength(120 + SCREEN.clearToEnd.length);
    s.terminal.columns = 70;
    s.terminal.rows = 10;
    s.terminal.handlers!.onResize();
    expect(s.terminal.output).toContain(SCREEN.clear + SCREEN.home);
    expect(s.terminal.frame()).toHaveLength(10);
    expect(s.terminal.frame()[0]!.replace(/\x1b\[[0-9;]*[mK]/g, "")).toHaveLength(70);
    s.controller.stop();
    await s.done;
  });

  test("an error restores the terminal and rejects; end of input quits", async () => {
    const s = setup({
      details: () => {
        throw new Error("boom");
      },
    });
    s.terminal.type("\r");
    await expect(s.done).rejects.toThrow("boom");
    expect(s.terminal.restored).toBe(1);
    expect(s.engine.closed).toBe(true);
    // Nothing is drawn after the terminal was given back.
    expect(s.terminal.output.endsWith(RESTORE)).toBe(true);
    s.timers.advance(5000);
    expect(s.terminal.output.endsWith(RESTORE)).toBe(true);

    const t = setup();
    t.terminal.handlers!.onEnd();
    await t.done;
    expect(t.terminal.restored).toBe(1);
  });

  test("Ctrl+C quits like q; a failed close is shown, not thrown", async () => {
    const s = setup({ close: async () => Promise.reject(new Error("netlink went away")) });
    s.terminal.type("cy");
    await s.flush();
    expect(s.terminal.frame().at(-1)).toContain("netlink went away");
    s.terminal.type("\x03");
    await s.done;
    expect(s.state().settled).toBe("resolved");
    expect(s.terminal.restored).toBe(1);
  });
});
