// Long-running child processes for the soak and fault runs: stdout read line by line, stderr kept
// (bounded), the whole process group stopped on request, every wait bounded.
import { spawn, type ChildProcess } from "node:child_process";

const STDERR_KEEP = 256 * 1024;

export class SoakProcess {
  readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private partial = "";
  private err = "";
  private errDropped = 0;
  private exited = false;
  private readonly waiters = new Set<() => void>();
  /** Exit code, or null when it ended on a signal (see `signal`). */
  code: number | null = null;
  signal: NodeJS.Signals | null = null;

  constructor(
    readonly argv: string[],
    options: { keepStdout?: boolean } = {},
  ) {
    const [cmd, ...args] = argv;
    if (!cmd) throw new Error("empty command");
    this.child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], detached: true });
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (chunk: string) => {
      if (options.keepStdout === false) return;
      const parts = (this.partial + chunk).split("\n");
      this.partial = parts.pop() ?? "";
      if (this.lines.length < 100_000) this.lines.push(...parts);
      this.wake();
    });
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (chunk: string) => {
      if (this.err.length < STDERR_KEEP) this.err += chunk;
      else this.errDropped += chunk.length;
    });
    this.child.stdin!.on("error", () => {});
    this.child.on("error", () => this.finish());
    this.child.on("close", (code, signal) => {
      this.code = code;
      this.signal = signal;
      this.finish();
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.argv.join(" ")} did not start`);
    return this.child.pid;
  }

  get stderr(): string {
    return this.errDropped ? `${this.err}\n[${this.errDropped} more bytes of stderr not kept]` : this.err;
  }

  get hasExited(): boolean {
    return this.exited;
  }

  private finish(): void {
    this.exited = true;
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters) w();
  }

  private waitForChange(deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, deadline - performance.now()));
      this.waiters.add(done);
    });
  }

  /** The next stdout line; throws (with stderr) when the process ends first or time runs out. */
  async nextLine(timeoutMs: number): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return line;
      if (this.exited) throw new Error(`${this.argv.join(" ")} ended (${this.code ?? this.signal}) before printing a line; stderr:\n${this.stderr.slice(-4000)}`);
      if (performance.now() >= deadline) throw new Error(`${this.argv.join(" ")} printed nothing within ${timeoutMs} ms; stderr:\n${this.stderr.slice(-4000)}`);
      await this.waitForChange(deadline);
    }
  }

  /** Waits for a stdout line matching `re`, skipping others. */
  async waitForLine(re: RegExp, timeoutMs: number): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const line = await this.nextLine(Math.max(1, deadline - performance.now()));
      if (re.test(line)) return line;
    }
  }

  /** Waits until stderr matches `re`; false when the process ended or time ran out first. */
  async waitForStderr(re: RegExp, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!re.test(this.err) && !this.exited && performance.now() < deadline) await this.waitForChange(Math.min(deadline, performance.now() + 50));
    return re.test(this.err);
  }

  write(text: string): void {
    try {
      this.child.stdin!.write(text);
    } catch {
      // It has ended.
    }
  }

  async waitForExit(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!this.exited && performance.now() < deadline) await this.waitForChange(deadline);
    return this.exited;
  }

  /** Sends a signal to the process itself (not its group). */
  kill(signal: NodeJS.Signals): void {
    if (this.exited || this.child.pid === undefined) return;
    try {
      process.kill(this.child.pid, signal);
    } catch {
      // Already gone.
    }
  }

  private killGroup(signal: NodeJS.Signals): void {
    if (this.exited || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      this.kill(signal);
    }
  }

  /** Closes stdin, then SIGTERM and SIGKILL to the whole group, each after a grace period. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.exited) return;
    try {
      this.child.stdin!.end();
    } catch {
      // Already closed.
    }
    if (await this.waitForExit(graceMs)) return;
    this.killGroup("SIGTERM");
    if (await this.waitForExit(graceMs)) return;
    this.killGroup("SIGKILL");
    await this.waitForExit(graceMs);
  }
}

/** Runs a command to completion, bounded; never throws. */
export async function runBounded(argv: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let p: SoakProcess;
  try {
    p = new SoakProcess(argv, { keepStdout: false });
  } catch (e) {
    return { code: null, stdout: "", stderr: String(e) };
  }
  let stdout = "";
  p.child.stdout!.on("data", (c: string) => {
    if (stdout.length < 4 << 20) stdout += c;
  });
  p.child.stdin!.end();
  if (!(await p.waitForExit(timeoutMs))) await p.stop(500);
  return { code: p.code, stdout, stderr: p.stderr };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
