// The measuring half of a suite: this script again, with --inner, inside the suite's network
// namespace. While it runs, SIGINT/SIGTERM/SIGHUP are passed on to it (SIGHUP as SIGTERM); a
// second signal, or 15 s, kills it. A signal before it starts is remembered.
import { netnsPath } from "./netns.ts";

export interface MeasuringHalf {
  script: string;
  args: string[];
  /** Epoch ms by which the measuring half stops itself; past it (plus a minute) it is ended. */
  deadline: number;
}

export class SignalRelay {
  private child: Bun.Subprocess | null = null;
  /** The first signal received, if any: the suite then exits 130. */
  signalled: string | null = null;

  constructor(private readonly log: (msg: string) => void) {
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, this.onSignal);
  }

  private readonly onSignal = (sig: NodeJS.Signals): void => {
    const child = this.child;
    if (!child) {
      this.signalled ??= sig;
      return;
    }
    if (this.signalled) {
      // Second signal: do not wait any longer.
      child.kill("SIGKILL");
      return;
    }
    this.signalled = sig;
    this.log(`${sig}: stopping`);
    child.kill(sig === "SIGHUP" ? "SIGTERM" : sig);
    setTimeout(() => child.kill("SIGKILL"), 15_000).unref();
  };

  /** Runs the measuring half inside `netns`; its exit code, or 130 when signalled. */
  async run(netns: string, half: MeasuringHalf, env: Record<string, string>): Promise<number> {
    const child = Bun.spawn({
      cmd: ["nsenter", `--net=${netnsPath(netns)}`, "--", process.execPath, half.script, ...half.args, "--inner", "--deadline", String(half.deadline)],
      stdin: "ignore",
      stdout: "inherit",
      stderr: "inherit",
      env: { ...process.env, ...env },
    });
    this.child = child;
    const term = setTimeout(() => {
      this.log("time budget exceeded: stopping the measuring process");
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 15_000).unref();
    }, Math.max(0, half.deadline - Date.now()) + 60_000);
    term.unref();
    const code = await child.exited;
    clearTimeout(term);
    return this.signalled ? 130 : (code ?? 1);
  }

  dispose(): void {
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.off(sig, this.onSignal);
  }
}
