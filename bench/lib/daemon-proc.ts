// Processes of the daemon suite: line-oriented helpers and the daemon itself, each in a process
// group of its own so that an interruption can end them all; bounded waits; the daemon's metrics.
import { readFileSync } from "node:fs";
import { firstLine } from "./proc.ts";
import { tcpStates } from "./helper.ts";

const STDERR_KEEP = 64 * 1024;

let interrupted = false;
const live = new Set<LineProcess>();
const wakers = new Set<() => void>();

/** Kill every process this suite started (whole groups) and wake every wait. */
export function interruptAll(): void {
  interrupted = true;
  for (const p of live) p.killGroup("SIGKILL");
  for (const w of wakers) w();
}

/** Kill whatever this suite started and is still running (a last resort; not an interruption). */
export function killRemaining(): void {
  for (const p of live) p.killGroup("SIGKILL");
}

export function wasInterrupted(): boolean {
  return interrupted;
}

/** Sleep ms; returns false at once when the suite is interrupted. */
export async function pause(ms: number): Promise<boolean> {
  if (interrupted) return false;
  let wake!: () => void;
  const woken = new Promise<boolean>((resolve) => {
    wake = () => resolve(false);
  });
  wakers.add(wake);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), Math.max(0, ms));
      }),
      woken,
    ]);
  } finally {
    clearTimeout(timer);
    wakers.delete(wake);
  }
}

export type LineResult = { line: string } | { eof: true } | { timeout: true };

/**
 * A child whose stdout is read line by line (queued for nextLine, or handed to onLine), whose
 * stderr is kept (the first 64 KiB), and whose stdin stays open for commands. It runs in a process
 * group of its own; `lifetimeMs` kills it (SIGKILL) if it is still running by then.
 */
export class LineProcess {
  readonly proc: Bun.Subprocess<"pipe", "pipe", "pipe">;
  readonly startedAt = performance.now();
  stderr = "";
  private queue: string[] = [];
  private ended = false;
  private notify: (() => void) | null = null;
  private exitedFlag = false;

  constructor(
    readonly cmd: string[],
    lifetimeMs: number,
    private readonly onLine?: (line: string) => void,
    env?: Record<string, string>,
  ) {
    this.proc = Bun.spawn({
      cmd,
      env: env ? { ...process.env, ...env } : undefined,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      detached: true,
      timeout: Math.max(1000, Math.round(lifetimeMs)),
      killSignal: "SIGKILL",
    });
    live.add(this);
    void this.proc.exited.then(() => {
      this.exitedFlag = true;
      live.delete(this);
    });
    void this.pumpStdout();
    void this.pumpStderr();
  }

  get pid(): number {
    return this.proc.pid;
  }

  get exited(): boolean {
    return this.exitedFlag;
  }

  private async pumpStdout(): Promise<void> {
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of this.proc.stdout) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          this.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      }
    } catch {
      // the pipe broke: treat as the end
    }
    if (buf) this.push(buf);
    this.ended = true;
    this.notify?.();
  }

  private push(line: string): void {
    if (this.onLine) {
      try {
        this.onLine(line);
      } catch {
        // a consumer's problem must not stop the draining
      }
      return;
    }
    this.queue.push(line);
    this.notify?.();
  }

  private async pumpStderr(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.proc.stderr) {
        if (this.stderr.length < STDERR_KEEP) this.stderr += decoder.decode(chunk, { stream: true }).slice(0, STDERR_KEEP);
      }
    } catch {
      // ignore
    }
  }

  /** The next stdout line, or why there is none (end of output, or timeoutMs passed). */
  async nextLine(timeoutMs: number): Promise<LineResult> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const line = this.queue.shift();
      if (line !== undefined) return { line };
      if (this.ended) return { eof: true };
      const left = end - performance.now();
      if (left <= 0 || interrupted) return { timeout: true };
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.notify = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.notify = null;
    }
  }

  /** Wait for a line matching `re`; other lines are dropped. Throws with the reason otherwise. */
  async expectLine(re: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const r = await this.nextLine(end - performance.now());
      if ("line" in r) {
        const m = re.exec(r.line);
        if (m) return m;
        continue;
      }
      if ("eof" in r) {
        await Promise.race([this.proc.exited, pause(2000)]);
        throw new Error(`${what}: exited (${this.proc.exitCode ?? this.proc.signalCode ?? "?"}): ${firstLine(this.stderr) || "no message"}`);
      }
      throw new Error(interrupted ? "interrupted" : `${what}: nothing after ${Math.round(timeoutMs)} ms`);
    }
  }

  write(text: string): void {
    try {
      this.proc.stdin.write(text);
      void this.proc.stdin.flush();
    } catch {
      // it has gone; the caller notices through its output
    }
  }

  killGroup(sig: NodeJS.Signals): void {
    try {
      process.kill(-this.proc.pid, sig);
    } catch {
      // already gone
    }
  }

  /**
   * End it: close stdin (helpers exit on EOF) or send `signal` to the process itself, wait up to
   * graceMs, then kill the whole group. Returns ms until it exited and whether it had to be killed.
   */
  async stop(graceMs: number, signal?: NodeJS.Signals): Promise<{ ms: number; killed: boolean }> {
    const t0 = performance.now();
    if (!this.exitedFlag) {
      try {
        if (signal) process.kill(this.proc.pid, signal);
        else this.proc.stdin.end();
      } catch {
        // gone already
      }
    }
    const done = await Promise.race([this.proc.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), graceMs))]);
    if (!done) {
      this.killGroup("SIGKILL");
      await Promise.race([this.proc.exited, new Promise((r) => setTimeout(r, 5000))]);
    } else {
      // helpers' forked children are in the same group; make sure none lingers
      this.killGroup("SIGKILL");
    }
    return { ms: performance.now() - t0, killed: !done };
  }
}

/** Wait until the daemon says what it runs ("running …" on stderr); throws when it dies or is silent. */
export async function waitRunning(d: LineProcess, timeoutMs: number): Promise<number> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (/(^|\n)sockwarden: running /.test(d.stderr) || /running .* every /.test(d.stderr)) return performance.now() - d.startedAt;
    if (d.exited) {
      await pause(100);
      throw new Error(`sockwarden run exited (${d.proc.exitCode ?? d.proc.signalCode ?? "?"}): ${firstLine(d.stderr) || "no message"}`);
    }
    if (!(await pause(50))) throw new Error("interrupted");
  }
  throw new Error(`sockwarden run did not report running within ${timeoutMs} ms: ${firstLine(d.stderr) || "no message"}`);
}

/** Counter and gauge values of the daemon's metrics page, by "name{labels}". */
export async function scrapeMetrics(hostPort: string): Promise<Map<string, number>> {
  const res = await fetch(`http://${hostPort}/metrics`, { signal: AbortSignal.timeout(5000), headers: { connection: "close" } });
  if (!res.ok) throw new Error(`metrics: HTTP ${res.status}`);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    if (sp < 0) continue;
    const v = Number(line.slice(sp + 1));
    if (Number.isFinite(v)) out.set(line.slice(0, sp), v);
  }
  return out;
}

export interface TcpStates {
  total: number;
  established: number;
  listen: number;
  timeWait: number;
  other: number;
}

/** TCP sockets by state in this process's network namespace (/proc/net/tcp and tcp6). */
export function countTcpStates(): TcpStates {
  const states = tcpStates() ?? new Map<string, number>();
  const total = [...states.values()].reduce((a, b) => a + b, 0);
  const [established, listen, timeWait] = ["01", "0A", "06"].map((st) => states.get(st) ?? 0) as [number, number, number];
  return { total, established, listen, timeWait, other: total - established - listen - timeWait };
}

/** JSON lines of a file (missing file: none; lines that do not parse are skipped and counted). */
export function readJsonLines(file: string): { records: Record<string, unknown>[]; bad: number } {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return { records: [], bad: 0 };
  }
  const records: Record<string, unknown>[] = [];
  let bad = 0;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      records.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      bad++;
    }
  }
  return { records, bad };
}
