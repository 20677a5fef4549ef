/**
 * The signals of `sockwarden run`: SIGHUP reloads, SIGTERM and SIGINT stop. The signals are taken
 * over the moment the command starts, long before the daemon runs: a SIGHUP's or SIGTERM's
 * default action ends the process, and one sent while the rules load must not. What arrives
 * before the daemon runs is acted on once it does.
 *
 * Where the signals come from and the timer of the stop's deadline are parameters, so that a
 * storm of signals and a sink that never lets go can be played in a test on fake time.
 */
import { realTimers, withTimeout, type Timers } from "../timers.ts";

export type DaemonSignal = "SIGHUP" | "SIGINT" | "SIGTERM";

/** Where signals come from: the process, or a test. */
export interface SignalSource {
  on(signal: DaemonSignal, handler: () => void): unknown;
  off(signal: DaemonSignal, handler: () => void): unknown;
}

/** What the supervisor drives: the running daemon with its outputs. */
export interface Supervised {
  /** `n` SIGHUPs arrived: counted as they come, also those a reload folds. */
  signalled(n: number): void;
  /**
   * Applies the configuration as it is now, answering `signals` SIGHUPs. A configuration that
   * does not load is the target's to tell: a rejection is ignored, and the next reload comes.
   */
  reload(signals: number): Promise<void>;
  /** Releases everything; the supervisor bounds how long that may take. */
  stop(): Promise<void>;
}

/** A stop must finish within two seconds whatever the sinks do; this leaves the exit its share. */
export const STOP_DEADLINE_MS = 1900;

export interface SupervisorOptions {
  /** Default: the process's own signals. */
  signals?: SignalSource;
  /** The stop deadline's timer (default the runtime's). */
  timers?: Timers;
  stopDeadlineMs?: number;
}

export class Supervisor {
  private readonly signals: SignalSource;
  private readonly timers: Timers;
  private readonly deadlineMs: number;
  private target: Supervised | null = null;
  /** SIGHUPs no reload has answered yet. */
  private hups = 0;
  /** SIGHUPs that came before there was a target to count them. */
  private uncounted = 0;
  private reloading = false;
  private stopping = false;
  private listening = false;
  private finish: (code: number) => void = () => {};
  private readonly finished = new Promise<number>((resolve) => (this.finish = resolve));

  constructor(options: SupervisorOptions = {}) {
    this.signals = options.signals ?? process;
    this.timers = options.timers ?? realTimers;
    this.deadlineMs = options.stopDeadlineMs ?? STOP_DEADLINE_MS;
  }

  /** Takes SIGHUP, SIGINT and SIGTERM over; call before anything slow. */
  listen(): void {
    if (this.listening) return;
    this.listening = true;
    this.signals.on("SIGHUP", this.onHup);
    this.signals.on("SIGINT", this.onStop);
    this.signals.on("SIGTERM", this.onStop);
  }

  /** Gives the signals back (the start failed, or the process is about to exit). */
  release(): void {
    if (!this.listening) return;
    this.listening = false;
    this.signals.off("SIGHUP", this.onHup);
    this.signals.off("SIGINT", this.onStop);
    this.signals.off("SIGTERM", this.onStop);
  }

  /** Whether a stop was asked for (it is carried out once `run` is called). */
  get stopRequested(): boolean {
    return this.stopping;
  }

  /**
   * Drives `target` from now on: what arrived while it started is acted on first (a stop before
   * any reload). Settles with the exit status once it stopped.
   */
  run(target: Supervised): Promise<number> {
    this.listen();
    this.target = target;
    if (this.uncounted > 0) target.signalled(this.uncounted);
    this.uncounted = 0;
    if (this.stopping) this.stopTarget(target);
    else if (this.hups > 0) void this.reloadAll(target);
    return this.finished;
  }

  private readonly onHup = (): void => {
    // Still caught while stopping: a signal with no listener left gets its default action back,
    // which for SIGHUP ends the process before its sinks are closed.
    if (this.stopping) return;
    this.hups++;
    const target = this.target;
    if (!target) {
      this.uncounted++;
      return;
    }
    target.signalled(1);
    if (!this.reloading) void this.reloadAll(target);
  };

  private readonly onStop = (): void => {
    if (this.stopping) return;
    this.stopping = true;
    if (this.target) this.stopTarget(this.target);
  };

  /**
   * SIGHUPs that arrive while a reload runs are folded into one more reload after it (the files
   * may have changed since it began), so a storm of them costs two reloads and two lines.
   */
  private async reloadAll(target: Supervised): Promise<void> {
    this.reloading = true;
    while (this.hups > 0 && !this.stopping) {
      const n = this.hups;
      this.hups = 0;
      await target.reload(n).catch(() => {});
    }
    this.reloading = false;
  }

  private stopTarget(target: Supervised): void {
    const stopped = target.stop().catch(() => {});
    void withTimeout(stopped, this.deadlineMs, () => undefined, this.timers).then(() => this.finish(0));
  }
}
