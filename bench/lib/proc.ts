// Spawning with time limits, and measuring one command's wall time and rusage.
import { accessSync, constants, existsSync, readFileSync, writeFileSync } from "node:fs";

export interface CmdResult {
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Set when the command could not be started at all. */
  spawnError?: string;
  timedOut: boolean;
}

const STDERR_KEEP = 64 * 1024;

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Run a small command to completion (bounded by timeoutMs) and capture its output. */
export async function run(cmd: string[], timeoutMs = 10_000): Promise<CmdResult> {
  let proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  try {
    proc = Bun.spawn({
      cmd,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      timeout: timeoutMs,
      killSignal: "SIGKILL",
    });
  } catch (e) {
    const msg = errMessage(e);
    return { ok: false, exitCode: null, signal: null, stdout: "", stderr: msg, spawnError: msg, timedOut: false };
  }
  const [stdout, stderr] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  const timedOut = proc.killed && proc.signalCode === "SIGKILL";
  return {
    ok: proc.exitCode === 0,
    exitCode: proc.exitCode,
    signal: proc.signalCode === null ? null : String(proc.signalCode),
    stdout,
    stderr,
    timedOut,
  };
}

/** run(), throwing with the command's stderr when it does not succeed. */
export async function mustRun(cmd: string[], timeoutMs = 10_000): Promise<string> {
  const r = await run(cmd, timeoutMs);
  if (!r.ok) {
    const why = r.timedOut
      ? `timed out after ${timeoutMs} ms`
      : r.spawnError ?? (firstLine(r.stderr) || `exit ${r.exitCode ?? r.signal}`);
    throw new Error(`${cmd.join(" ")}: ${why}`);
  }
  return r.stdout;
}

export function firstLine(text: string): string {
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (t) return t.length > 300 ? t.slice(0, 300) + "…" : t;
  }
  return "";
}

export interface Measurement {
  ok: boolean;
  /** Wall time from spawn to reaped exit, milliseconds (includes the ~1 ms of /usr/bin/time). */
  wallMs: number;
  /** Peak resident set of the measured command itself (ru_maxrss via /usr/bin/time), bytes. */
  maxRssBytes: number | null;
  userMs: number | null;
  sysMs: number | null;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Only when stdout went through a pipe. */
  stdoutLines: number | null;
  stdoutBytes: number | null;
  /** First non-empty stderr line, or why it could not start; set when !ok. */
  error?: string;
}

export const TIME_BIN = "/usr/bin/time";

export async function drainCounting(stream: ReadableStream<Uint8Array>): Promise<{ lines: number; bytes: number }> {
  let lines = 0;
  let bytes = 0;
  let last = 10;
  for await (const chunk of stream) {
    bytes += chunk.length;
    for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++;
    if (chunk.length) last = chunk[chunk.length - 1]!;
  }
  if (bytes > 0 && last !== 10) lines++;
  return { lines, bytes };
}

export async function drainKeeping(stream: ReadableStream<Uint8Array>, keep: number): Promise<string> {
  const parts: Uint8Array[] = [];
  let kept = 0;
  for await (const chunk of stream) {
    if (kept < keep) {
      parts.push(chunk.subarray(0, keep - kept));
      kept += Math.min(chunk.length, keep - kept);
    }
  }
  return Buffer.concat(parts).toString("utf8");
}

/** Why cmd[0] cannot be run, or null when it looks runnable. */
export function notRunnable(exe: string): string | null {
  if (exe.includes("/")) {
    try {
      accessSync(exe, constants.X_OK);
      return null;
    } catch {
      return existsSync(exe) ? `not executable: ${exe}` : `not found: ${exe}`;
    }
  }
  return Bun.which(exe) ? null : `not found in PATH: ${exe}`;
}

let runningGroup: number | null = null;

/** Kill the command being measured right now (its whole process group), if any. */
export function killMeasured(): void {
  if (runningGroup === null) return;
  try {
    process.kill(-runningGroup, "SIGKILL");
  } catch {
    // already gone
  }
}

const RUSAGE_FORMAT = "rusage %e %M %U %S %x";

/**
 * Time `cmd` once. It runs as `/usr/bin/time -o FILE -f ... cmd` in a process group of its own:
 * GNU time forks a fresh child, so ru_maxrss belongs to the command itself. (A child spawned
 * directly by Bun starts from Bun's memory high-water mark: posix_spawn shares the parent's mm
 * until exec, and the kernel carries that mark into the child's ru_maxrss.) stdout goes to
 * /dev/null, or to a pipe that is drained and counted when `pipeStdout` is set. The group is
 * killed at timeoutMs.
 */
export async function measure(
  cmd: string[],
  timeoutMs: number,
  pipeStdout: boolean,
  rusageFile: string,
): Promise<Measurement> {
  const failed = (error: string): Measurement => ({
    ok: false,
    wallMs: 0,
    maxRssBytes: null,
    userMs: null,
    sysMs: null,
    exitCode: null,
    signal: null,
    timedOut: false,
    stdoutLines: null,
    stdoutBytes: null,
    error,
  });
  const exe = cmd[0];
  if (exe === undefined) return failed("empty command");
  const why = notRunnable(exe);
  if (why) return failed(why);
  try {
    writeFileSync(rusageFile, "");
  } catch (e) {
    return failed(`cannot write ${rusageFile}: ${errMessage(e)}`);
  }

  let timedOut = false;
  const t0 = performance.now();
  let proc: Bun.Subprocess<"ignore", "pipe" | "ignore", "pipe">;
  try {
    proc = Bun.spawn({
      cmd: [TIME_BIN, "-o", rusageFile, "-f", RUSAGE_FORMAT, "--", ...cmd],
      stdin: "ignore",
      stdout: pipeStdout ? "pipe" : "ignore",
      stderr: "pipe",
      detached: true,
    });
  } catch (e) {
    return failed(firstLine(errMessage(e)) || "could not start");
  }
  runningGroup = proc.pid;
  const timer = setTimeout(() => {
    timedOut = true;
    killMeasured();
  }, Math.max(1, Math.round(timeoutMs)));
  const outP =
    pipeStdout && proc.stdout instanceof ReadableStream ? drainCounting(proc.stdout) : Promise.resolve(null);
  const errP = drainKeeping(proc.stderr, STDERR_KEEP);
  await proc.exited;
  const wallMs = performance.now() - t0;
  clearTimeout(timer);
  runningGroup = null;
  const [out, stderr] = await Promise.all([outP, errP]);

  let report = "";
  try {
    report = readFileSync(rusageFile, "utf8");
  } catch {
    // handled below as missing figures
  }
  const fig = /^rusage ([\d.]+) (\d+) ([\d.]+) ([\d.]+) (\d+)\s*$/m.exec(report);
  const sig = /Command terminated by signal (\d+)/.exec(report);
  const exitCode = fig ? Number(fig[5]) : proc.exitCode;
  const signal = sig ? `signal ${sig[1]}` : proc.signalCode === null ? null : String(proc.signalCode);
  const ok = !timedOut && fig !== null && sig === null && exitCode === 0 && proc.exitCode === 0;
  const m: Measurement = {
    ok,
    wallMs,
    maxRssBytes: fig ? Number(fig[2]) * 1024 : null,
    userMs: fig ? Number(fig[3]) * 1000 : null,
    sysMs: fig ? Number(fig[4]) * 1000 : null,
    exitCode,
    signal,
    timedOut,
    stdoutLines: out ? out.lines : null,
    stdoutBytes: out ? out.bytes : null,
  };
  if (!ok) {
    const errLine = firstLine(stderr.split("\n").filter((l) => !l.startsWith("Command ")).join("\n"));
    m.error = timedOut
      ? `timed out after ${Math.round(timeoutMs)} ms`
      : errLine.replace(/^\/usr\/bin\/time: /, "") || (signal ? `killed by ${signal}` : `exit code ${exitCode}`);
  }
  return m;
}
