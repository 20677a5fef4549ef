/**
 * Private network namespaces for end-to-end tests: each test file makes its own, uniquely named
 * one with only a loopback interface, runs commands and long-lived processes inside it, and
 * removes it afterwards (processes killed, namespace deleted). Every wait is bounded.
 *
 * Needs root (`ip netns add`). CI runs as root; `requireRoot` turns a non-root run into a clear
 * failure instead of a silent skip.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync } from "node:fs";

export const DEFAULT_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 3_000;

export interface RunOptions {
  /** Kill the command (its whole process group) after this long. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  /** Environment; the caller's environment when omitted. */
  env?: Record<string, string | undefined>;
  cwd?: string;
}

export interface RunResult {
  argv: string[];
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** A short description of a finished command for assertion messages. */
export function describeRun(result: RunResult): string {
  const how = result.timedOut
    ? "timed out"
    : result.signal
      ? `killed by ${result.signal}`
      : `exit ${result.code}`;
  const clip = (text: string) => (text.length > 4000 ? `${text.slice(0, 4000)}…` : text);
  return `${result.argv.join(" ")}: ${how}\n--- stderr ---\n${clip(result.stderr)}\n--- stdout ---\n${clip(result.stdout)}`;
}

/** Fails the calling test with a clear message unless the process runs as root. */
export function requireRoot(what = "This end-to-end test"): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${what} needs root (network namespaces, raw sockets, other users' /proc entries). ` +
        "CI runs the end-to-end suite as root; run it as root locally too.",
    );
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    // Children are started as process-group leaders (detached), so this reaches anything they
    // forked as well.
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

/** Runs a command to completion (or until its timeout) and collects its output. */
export function run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
  const [command, ...args] = argv;
  if (command === undefined) throw new Error("run: empty command");
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env as NodeJS.ProcessEnv | undefined,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, "SIGKILL");
    }, timeoutMs);
    child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${argv.join(" ")}: ${error.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        argv,
        code,
        signal,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
        timedOut,
      });
    });
    child.stdin?.on("error", () => {
      // The command may exit without reading its input.
    });
    child.stdin?.end(options.input ?? "");
  });
}

/** Like `run`, but throws (with the command's output) unless it exits 0. */
export async function runOk(argv: string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(argv, options);
  if (result.code !== 0) throw new Error(`command failed: ${describeRun(result)}`);
  return result;
}

/**
 * A long-running process. Its stdout is read line by line; its stdin stays open until
 * `closeInput` or `stop`, which lets programs that wait for end of input shut down cleanly.
 */
export class BackgroundProcess {
  readonly child: ChildProcess;
  readonly argv: string[];
  private readonly lines: string[] = [];
  private partial = "";
  private stderrText = "";
  private readonly waiters = new Set<() => void>();
  private exited = false;

  constructor(argv: string[], options: Omit<RunOptions, "timeoutMs" | "input"> = {}) {
    const [command, ...args] = argv;
    if (command === undefined) throw new Error("spawn: empty command");
    this.argv = argv;
    this.child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env as NodeJS.ProcessEnv | undefined,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    this.child.stdout?.setEncoding("utf8");
    this.child.stdout?.on("data", (chunk: string) => {
      const parts = (this.partial + chunk).split("\n");
      this.partial = parts.pop() ?? "";
      this.lines.push(...parts);
      this.wake();
    });
    this.child.stderr?.setEncoding("utf8");
    this.child.stderr?.on("data", (chunk: string) => {
      if (this.stderrText.length < 64_000) this.stderrText += chunk;
    });
    this.child.stdin?.on("error", () => {
      // The process may have exited already.
    });
    this.child.on("error", () => {
      this.exited = true;
      this.wake();
    });
    this.child.on("close", () => {
      this.exited = true;
      this.wake();
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.argv.join(" ")} did not start`);
    return this.child.pid;
  }

  get stderr(): string {
    return this.stderrText;
  }

  get hasExited(): boolean {
    return this.exited;
  }

  private wake(): void {
    for (const waiter of this.waiters) waiter();
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

  /**
   * Waits for the next stdout line, in order. Throws with the process's stderr when it exits
   * first or the timeout passes.
   */
  async nextLine(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return line;
      if (this.exited) {
        throw new Error(`${this.argv.join(" ")} exited before printing a line; stderr:\n${this.stderrText}`);
      }
      if (performance.now() >= deadline) {
        throw new Error(`${this.argv.join(" ")} printed nothing within ${timeoutMs} ms; stderr:\n${this.stderrText}`);
      }
      await this.waitForChange(deadline);
    }
  }

  closeInput(): void {
    this.child.stdin?.end();
  }

  /** Waits until the process has exited, at most `timeoutMs`; returns whether it did. */
  async waitForExit(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!this.exited && performance.now() < deadline) await this.waitForChange(deadline);
    return this.exited;
  }

  /** SIGTERM to the process itself, then waits (bounded) for it to exit; returns whether it did. */
  async terminate(timeoutMs = 10_000): Promise<boolean> {
    if (!this.exited) {
      try {
        process.kill(this.pid, "SIGTERM");
      } catch {
        // Already gone.
      }
    }
    return this.waitForExit(timeoutMs);
  }

  /**
   * Every stdout line not read yet, once the process has exited: its output is complete then, so
   * nothing is cut off by a pause and a duplicate at the end would show.
   */
  remainingLines(): string[] {
    if (!this.exited) throw new Error(`${this.argv.join(" ")} is still running: its output is not complete`);
    return this.lines.splice(0);
  }

  /** Closes stdin, then escalates to SIGTERM and SIGKILL on the process group. */
  async stop(): Promise<void> {
    if (this.exited) return;
    this.closeInput();
    if (await this.waitForExit(STOP_GRACE_MS)) return;
    killGroup(this.child, "SIGTERM");
    if (await this.waitForExit(STOP_GRACE_MS)) return;
    killGroup(this.child, "SIGKILL");
    await this.waitForExit(STOP_GRACE_MS);
  }
}

const NAME_PREFIX = "swe2e";
let created = 0;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function namespacePids(name: string): Promise<number[]> {
  const result = await run(["ip", "netns", "pids", name], { timeoutMs: 5_000 });
  if (result.code !== 0) return [];
  return result.stdout
    .split(/\s+/)
    .filter((word) => /^\d+$/.test(word))
    .map(Number);
}

/** Kills every process left in the namespace, then deletes it. */
async function destroyNamespace(name: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const pids = await namespacePids(name);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await run(["ip", "netns", "delete", name], { timeoutMs: 5_000 });
}

/**
 * Namespaces left behind by an earlier run that was killed before its cleanup (the creating
 * process, whose pid is in the name, no longer exists).
 */
async function removeStaleNamespaces(): Promise<void> {
  let names: string[];
  try {
    names = readdirSync("/run/netns");
  } catch {
    return;
  }
  for (const name of names) {
    const match = new RegExp(`^${NAME_PREFIX}-(\\d+)-`).exec(name);
    if (match && !processAlive(Number(match[1]))) await destroyNamespace(name);
  }
}

/** Where the ephemeral ports of the namespaces made here begin: fixed client ports stay below it. */
export const EPHEMERAL_PORTS_FROM = 40_000;

export class Netns {
  private readonly background = new Set<BackgroundProcess>();
  private disposed = false;

  private constructor(readonly name: string) {}

  /** Creates a uniquely named namespace with the loopback interface up. */
  static async create(label = "t"): Promise<Netns> {
    requireRoot("Creating a network namespace");
    await removeStaleNamespaces();
    created += 1;
    const random = Math.random().toString(36).slice(2, 8);
    const name = `${NAME_PREFIX}-${process.pid}-${label}${created}-${random}`;
    await runOk(["ip", "netns", "add", name], { timeoutMs: 5_000 });
    const ns = new Netns(name);
    try {
      await runOk(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], { timeoutMs: 5_000 });
      // Tests bind fixed client ports (below EPHEMERAL_PORTS_FROM) to know each connection's
      // four-tuple in advance; an ephemeral port the kernel picks for another socket must never
      // take one of them, which the default range (from 32768) allowed. About as many ports as the
      // default range (25k, against 28k).
      await runOk(["ip", "netns", "exec", name, "sh", "-c", `echo "${EPHEMERAL_PORTS_FROM} 65000" > /proc/sys/net/ipv4/ip_local_port_range`], { timeoutMs: 5_000 });
    } catch (error) {
      await ns.dispose();
      throw error;
    }
    return ns;
  }

  /** The argv that runs `argv` inside this namespace. */
  wrap(argv: string[]): string[] {
    return ["ip", "netns", "exec", this.name, ...argv];
  }

  /** Runs a command inside the namespace to completion (bounded by its timeout). */
  exec(argv: string[], options: RunOptions = {}): Promise<RunResult> {
    this.assertLive();
    return run(this.wrap(argv), options);
  }

  /** Starts a long-running process inside the namespace; `dispose` stops it. */
  spawn(argv: string[], options: Omit<RunOptions, "timeoutMs" | "input"> = {}): BackgroundProcess {
    this.assertLive();
    const child = new BackgroundProcess(this.wrap(argv), options);
    this.background.add(child);
    return child;
  }

  /** Stops every process started here, kills anything else left inside, deletes the namespace. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([...this.background].map((child) => child.stop()));
    this.background.clear();
    await destroyNamespace(this.name);
  }

  private assertLive(): void {
    if (this.disposed) throw new Error(`network namespace ${this.name} was already removed`);
  }
}
