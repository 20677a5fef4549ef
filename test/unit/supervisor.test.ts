/**
 * The daemon's supervisor on fake time with signals sent by hand: SIGHUPs folded while a reload
 * runs, a stop in the middle of a reload, a stop whose outputs never let go, and signals that
 * come while the daemon is still starting.
 */
import { describe, expect, test } from "vitest";
import { STOP_DEADLINE_MS, Supervisor, type DaemonSignal, type SignalSource, type Supervised } from "../../src/daemon/supervisor.ts";
import { ManualTimers } from "./helpers/manual-timers.ts";
import { settle, track } from "./helpers/test-clock.ts";

/** Signals delivered when the test sends them, to the handlers installed at that moment. */
class HandSignals implements SignalSource {
  private readonly handlers = new Map<DaemonSignal, Set<() => void>>();
  on(signal: DaemonSignal, handler: () => void): void {
    if (!this.handlers.has(signal)) this.handlers.set(signal, new Set());
    this.handlers.get(signal)!.add(handler);
  }
  off(signal: DaemonSignal, handler: () => void): void {
    this.handlers.get(signal)?.delete(handler);
  }
  send(signal: DaemonSignal, times = 1): void {
    for (let i = 0; i < times; i++) for (const h of [...(this.handlers.get(signal) ?? [])]) h();
  }
  listeners(signal: DaemonSignal): number {
    return this.handlers.get(signal)?.size ?? 0;
  }
}

/** A daemon whose reloads and stop finish when the test says. */
class HeldDaemon implements Supervised {
  signals = 0;
  /** The SIGHUPs each reload answered, in order. */
  readonly reloads: number[] = [];
  stops = 0;
  private releaseReload: (() => void) | null = null;
  private releaseStop: (() => void) | null = null;

  signalled(n: number): void {
    this.signals += n;
  }
  reload(signals: number): Promise<void> {
    this.reloads.push(signals);
    return new Promise((resolve) => (this.releaseReload = resolve));
  }
  stop(): Promise<void> {
    this.stops++;
    return new Promise((resolve) => (this.releaseStop = resolve));
  }
  async finishReload(): Promise<void> {
    const release = this.releaseReload;
    this.releaseReload = null;
    release?.();
    await settle();
  }
  async finishStop(): Promise<void> {
    this.releaseStop?.();
    await settle();
  }
}

function supervised() {
  const signals = new HandSignals();
  const timers = new ManualTimers();
  const supervisor = new Supervisor({ signals, timers });
  supervisor.listen();
  const daemon = new HeldDaemon();
  return { signals, timers, supervisor, daemon };
}

describe("supervisor", () => {
  test("a storm of SIGHUPs during a reload costs exactly one more reload, every signal counted", async () => {
    const { signals, supervisor, daemon } = supervised();
    void supervisor.run(daemon);
    signals.send("SIGHUP");
    expect(daemon.reloads).toEqual([1]);
    signals.send("SIGHUP", 50);
    await settle();
    expect(daemon.reloads).toEqual([1]);
    await daemon.finishReload();
    expect(daemon.reloads).toEqual([1, 50]);
    await daemon.finishReload();
    await settle();
    expect(daemon.reloads).toEqual([1, 50]);
    expect(daemon.signals).toBe(51);
    // Quiet again: the next SIGHUP reloads at once.
    signals.send("SIGHUP");
    expect(daemon.reloads).toEqual([1, 50, 1]);
  });

  test("a reload that fails does not stop the folding: the SIGHUPs behind it are answered", async () => {
    const { signals, supervisor } = supervised();
    const reloads: number[] = [];
    let fail: (err: Error) => void = () => {};
    const daemon: Supervised = {
      signalled() {},
      reload(n) {
        reloads.push(n);
        return new Promise((_, reject) => (fail = reject));
      },
      stop: async () => {},
    };
    void supervisor.run(daemon);
    signals.send("SIGHUP");
    signals.send("SIGHUP", 3);
    fail(new Error("rules do not load"));
    await settle();
    expect(reloads).toEqual([1, 3]);
  });

  test("SIGTERM during a reload stops at once; the SIGHUPs waiting are not answered, later ones not taken", async () => {
    const { signals, supervisor, daemon } = supervised();
    const run = track(supervisor.run(daemon));
    signals.send("SIGHUP");
    signals.send("SIGHUP", 4);
    signals.send("SIGTERM");
    expect(daemon.stops).toBe(1);
    await daemon.finishReload();
    // Signals during the stop are still caught (none gets its default action back), and ignored.
    for (const s of ["SIGHUP", "SIGINT", "SIGTERM"] as const) expect(signals.listeners(s)).toBe(1);
    signals.send("SIGHUP");
    signals.send("SIGINT");
    await settle();
    expect(daemon.reloads).toEqual([1]);
    expect(daemon.signals).toBe(5);
    expect(daemon.stops).toBe(1);
    expect(run.settled).toBe(false);
    await daemon.finishStop();
    expect(run.settled).toBe(true);
    expect(await run.promise).toBe(0);
  });

  test("a stop whose outputs never let go ends at the deadline, 1900 ms after the signal", async () => {
    const { signals, timers, supervisor, daemon } = supervised();
    const run = track(supervisor.run(daemon));
    timers.advance(5000);
    signals.send("SIGTERM");
    timers.advance(STOP_DEADLINE_MS - 1);
    await settle();
    expect(run.settled).toBe(false);
    timers.advance(1);
    await settle();
    expect(timers.now).toBe(5000 + 1900);
    expect(run.settled).toBe(true);
    expect(await run.promise).toBe(0);
  });

  test("SIGHUPs while starting are one reload once running, each counted", async () => {
    const { signals, supervisor, daemon } = supervised();
    signals.send("SIGHUP", 3);
    await settle();
    expect(daemon.reloads).toEqual([]);
    void supervisor.run(daemon);
    expect(daemon.signals).toBe(3);
    expect(daemon.reloads).toEqual([3]);
  });

  test("SIGTERM while starting stops as soon as it runs, before any reload", async () => {
    const { signals, supervisor, daemon } = supervised();
    signals.send("SIGHUP");
    signals.send("SIGTERM");
    expect(supervisor.stopRequested).toBe(true);
    const run = track(supervisor.run(daemon));
    expect(daemon.stops).toBe(1);
    expect(daemon.reloads).toEqual([]);
    await daemon.finishStop();
    expect(await run.promise).toBe(0);
  });

  test("released, the signals are the process's again", () => {
    const { signals, supervisor } = supervised();
    for (const s of ["SIGHUP", "SIGINT", "SIGTERM"] as const) expect(signals.listeners(s)).toBe(1);
    supervisor.release();
    for (const s of ["SIGHUP", "SIGINT", "SIGTERM"] as const) expect(signals.listeners(s)).toBe(0);
  });
});
