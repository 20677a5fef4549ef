// The two sides of the watch suite:
//  - a long-running watch command, whose CPU is read from /proc/PID/stat at the start and the end
//    of a window (after a warm-up), and whose peak RSS is its VmHWM at the end of the window;
//  - a loop that runs `ss -tanpi` once per interval, summing each run's own CPU (its rusage).
import os from "node:os";
import { drainCounting, drainKeeping, firstLine, measure, notRunnable, type Measurement } from "./proc.ts";
import { median, max, MIB } from "./stats.ts";
import { readCpuTicks, readHostCpu, readVm, otherHostLoad, type CpuTicks, type HostCpu } from "../../test/support/proc-usage.ts";

const STDERR_KEEP = 64 * 1024;

// ---------------------------------------------------------------- interruption

let stopRequested = false;
const wakers = new Set<() => void>();
const groups = new Set<number>();

/** Stop waiting everywhere and kill every measured process group. */
export function interruptMeasuring(): void {
  stopRequested = true;
  for (const g of groups) killGroup(g, "SIGKILL");
  for (const w of wakers) w();
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // already gone
  }
}

/** Sleep ms, or less when `early` settles or measuring is interrupted. Returns true when it slept the whole time. */
async function sleepUnless(ms: number, early?: Promise<unknown>): Promise<boolean> {
  if (stopRequested) return false;
  let wake!: () => void;
  const woken = new Promise<void>((resolve) => {
    wake = resolve;
  });
  wakers.add(wake);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const slept = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), Math.max(0, ms));
  });
  try {
    const racers: Promise<boolean>[] = [slept, woken.then(() => false)];
    if (early) racers.push(early.then(() => false, () => false));
    return await Promise.race(racers);
  } finally {
    clearTimeout(timer);
    wakers.delete(wake);
  }
}

// ---------------------------------------------------------------- the watch command

export interface WatchSide {
  cmd: string[];
  status: "ok" | "failed" | "skipped";
  error?: string;
  notes: string[];
  pid: number | null;
  /** CPU seconds from start to the first sample: start-up and the first full snapshot. */
  warmupCpuS: number | null;
  /** Seconds between the two samples (monotonic clock). */
  windowS: number | null;
  /** CPU seconds in the window: the process itself (all threads) plus children it reaped. */
  cpuS: number | null;
  selfCpuS: number | null;
  childrenCpuS: number | null;
  /** windowS / interval. */
  refreshes: number | null;
  cpuSharePct: number | null;
  cpuMsPerRefresh: number | null;
  /** VmHWM just before the end (bytes -> MiB). */
  peakRssMiB: number | null;
  rssMiB: number | null;
  /** CPUs' worth of other work on the host during the window (from /proc/stat). */
  otherLoadCores: number | null;
  stdoutLines: number | null;
  stdoutBytes: number | null;
  exitCode: number | null;
  signal: string | null;
  /** Who ended it: itself (the normal case, --duration) or the harness. */
  endedBy: "itself" | "harness" | null;
  /** Seconds from spawn to exit. */
  ranS: number | null;
  /** The start of its stderr (notes such as a sensor's fallback). */
  stderrHead: string;
}

function emptyWatchSide(cmd: string[]): WatchSide {
  return {
    cmd,
    status: "skipped",
    notes: [],
    pid: null,
    warmupCpuS: null,
    windowS: null,
    cpuS: null,
    selfCpuS: null,
    childrenCpuS: null,
    refreshes: null,
    cpuSharePct: null,
    cpuMsPerRefresh: null,
    peakRssMiB: null,
    rssMiB: null,
    otherLoadCores: null,
    stdoutLines: null,
    stdoutBytes: null,
    exitCode: null,
    signal: null,
    endedBy: null,
    ranS: null,
    stderrHead: "",
  };
}

export interface WatchParams {
  cmd: string[];
  warmupS: number;
  seconds: number;
  intervalS: number;
  /** What the command was told to run for (--duration); it is stopped a little after that. */
  durationS: number;
  ticksPerS: number;
  /** Extra environment for the command (a profiler's settings). */
  env?: Record<string, string>;
  log(msg: string): void;
}

/**
 * Start the watch command in a process group of its own, sample its CPU after the warm-up and
 * again `seconds` later, read its VmHWM, then let it end by itself (stopping it if it outlives its
 * --duration by more than a few seconds).
 */
export async function measureWatch(p: WatchParams): Promise<WatchSide> {
  const res = emptyWatchSide(p.cmd);
  const exe = p.cmd[0];
  const why = exe === undefined ? "empty command" : notRunnable(exe);
  if (why) {
    res.status = "failed";
    res.error = why;
    return res;
  }
  if (stopRequested) return res;

  const t0 = performance.now();
  let proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  try {
    proc = Bun.spawn({ cmd: p.cmd, stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true, env: p.env ? { ...process.env, ...p.env } : undefined });
  } catch (e) {
    res.status = "failed";
    res.error = firstLine(e instanceof Error ? e.message : String(e)) || "could not start";
    return res;
  }
  const pid = proc.pid;
  res.pid = pid;
  groups.add(pid);
  let exited = false;
  let exitedAt = 0;
  const exitP = proc.exited.then(() => {
    exited = true;
    exitedAt = performance.now();
  });
  const outP = drainCounting(proc.stdout);
  const errP = drainKeeping(proc.stderr, STDERR_KEEP);
  const gone = (t: CpuTicks | null): boolean => exited || t === null || t.state === "Z";

  let early: string | null = null;
  let s0: CpuTicks | null = null;
  let s1: CpuTicks | null = null;
  let tS0 = 0;
  let tS1 = 0;
  let h0: HostCpu | null = null;
  let h1: HostCpu | null = null;
  try {
    await sleepUnless(p.warmupS * 1000, exitP);
    if (!stopRequested) {
      s0 = readCpuTicks(pid);
      h0 = readHostCpu();
      tS0 = performance.now();
      if (gone(s0)) {
        early = "warm-up";
      } else {
        await sleepUnless(p.seconds * 1000 - (performance.now() - tS0), exitP);
        if (!stopRequested) {
          s1 = readCpuTicks(pid);
          h1 = readHostCpu();
          tS1 = performance.now();
          const vm = readVm(pid);
          if (gone(s1)) {
            early = "window";
          } else if (vm) {
            res.peakRssMiB = vm.hwm / MIB;
            res.rssMiB = vm.rss / MIB;
          }
        }
      }
    }

    // Let it end by itself (--duration), bounded; then stop the group.
    if (!exited && !stopRequested) {
      const leftMs = p.durationS * 1000 - (performance.now() - t0) + 5_000;
      await sleepUnless(Math.max(1_000, leftMs), exitP);
    }
    if (!exited) {
      res.endedBy = "harness";
      killGroup(pid, "SIGTERM");
      if (!(await sleepUnless(5_000, exitP)) && !exited) killGroup(pid, "SIGKILL");
      await exitP;
    } else {
      res.endedBy = "itself";
    }
  } finally {
    if (!exited) killGroup(pid, "SIGKILL");
    await exitP;
    groups.delete(pid);
  }
  const [out, stderr] = await Promise.all([outP, errP]);
  res.stdoutLines = out.lines;
  res.stdoutBytes = out.bytes;
  res.exitCode = proc.exitCode;
  res.signal = proc.signalCode === null ? null : String(proc.signalCode);
  res.ranS = (exitedAt - t0) / 1000;
  res.stderrHead = stderr.slice(0, 2000);
  const errLine = firstLine(stderr);
  const exitText = res.signal ? `killed by ${res.signal}` : `exit code ${res.exitCode}`;

  if (stopRequested && s1 === null) {
    res.status = "skipped";
    res.error = "interrupted";
    return res;
  }
  if (early !== null || s0 === null || s1 === null) {
    res.status = "failed";
    res.error =
      `${errLine || exitText} (ended after ${res.ranS.toFixed(1)} s, ` +
      `${early === "warm-up" ? "during the warm-up" : "before the end of the window"})`;
    return res;
  }

  const ticks = (t: CpuTicks): { self: number; children: number } => ({
    self: t.utime + t.stime,
    children: t.cutime + t.cstime,
  });
  const a = ticks(s0);
  const b = ticks(s1);
  res.windowS = (tS1 - tS0) / 1000;
  res.warmupCpuS = (a.self + a.children) / p.ticksPerS;
  res.selfCpuS = (b.self - a.self) / p.ticksPerS;
  res.childrenCpuS = (b.children - a.children) / p.ticksPerS;
  res.cpuS = res.selfCpuS + res.childrenCpuS;
  res.refreshes = res.windowS / p.intervalS;
  res.cpuSharePct = (100 * res.cpuS) / res.windowS;
  res.cpuMsPerRefresh = (1000 * res.cpuS) / res.refreshes;
  res.otherLoadCores = otherHostLoad(h0, h1, os.cpus().length, res.cpuS, res.windowS);
  res.status = "ok";

  if (res.endedBy === "harness") {
    res.notes.push(`still running ${p.durationS} s + 5 s after start: stopped by the harness`);
  } else if (res.exitCode !== 0 || res.signal !== null) {
    // It ran through the window but did not end cleanly: the figures stand, the row is failed.
    res.status = "failed";
    res.error = `${errLine || exitText} (at exit, after ${res.ranS.toFixed(1)} s)`;
  }
  if (res.childrenCpuS > 0) res.notes.push(`includes ${(res.childrenCpuS * 1000).toFixed(0)} ms of reaped children`);
  return res;
}

// ---------------------------------------------------------------- the ss loop

export interface SsRun {
  /** Start, seconds after the loop began. */
  startS: number;
  wallMs: number;
  /** The run's own user+system CPU (its rusage), ms. */
  cpuMs: number | null;
  userMs: number | null;
  sysMs: number | null;
  ok: boolean;
  error?: string;
  /** Took longer than the interval: the next run started at once. */
  overran: boolean;
}

export interface SsSide {
  cmd: string[];
  status: "ok" | "failed" | "skipped";
  error?: string;
  notes: string[];
  /** One run under /usr/bin/time before the loop: peak RSS and output size. */
  warmup: Measurement | null;
  runs: SsRun[];
  /** From the first start to the later of (window end, last run's end), seconds. */
  windowS: number | null;
  cpuS: number | null;
  cpuSharePct: number | null;
  cpuMsPerRun: number | null;
  medianWallMs: number | null;
  maxWallMs: number | null;
  overruns: number;
  failedRuns: number;
  peakRssMiB: number | null;
  /** CPUs' worth of other work on the host during the loop (from /proc/stat). */
  otherLoadCores: number | null;
}

export interface SsParams {
  cmd: string[];
  seconds: number;
  intervalS: number;
  timeoutMs: number;
  rusageFile: string;
  log(msg: string): void;
}

async function runOnce(cmd: string[], timeoutMs: number): Promise<Omit<SsRun, "startS" | "overran">> {
  const t0 = performance.now();
  let proc: Bun.Subprocess<"ignore", "ignore", "pipe">;
  try {
    // stdout "ignore" is /dev/null, as in `ss -tanpi > /dev/null`.
    proc = Bun.spawn({ cmd, stdin: "ignore", stdout: "ignore", stderr: "pipe", detached: true });
  } catch (e) {
    const msg = firstLine(e instanceof Error ? e.message : String(e)) || "could not start";
    return { wallMs: 0, cpuMs: null, userMs: null, sysMs: null, ok: false, error: msg };
  }
  groups.add(proc.pid);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(proc.pid, "SIGKILL");
  }, Math.max(1, Math.round(timeoutMs)));
  const errP = drainKeeping(proc.stderr, STDERR_KEEP);
  await proc.exited;
  const wallMs = performance.now() - t0;
  clearTimeout(timer);
  groups.delete(proc.pid);
  const stderr = await errP;
  // The child's own rusage from wait4 (microseconds). Bun's ru_maxrss for a child is not the
  // child's (see proc.ts), so memory comes from the warm-up run under /usr/bin/time instead.
  const ru = proc.resourceUsage();
  const userMs = ru ? Number(ru.cpuTime.user) / 1000 : null;
  const sysMs = ru ? Number(ru.cpuTime.system) / 1000 : null;
  const ok = !timedOut && proc.exitCode === 0;
  const run = {
    wallMs,
    cpuMs: userMs !== null && sysMs !== null ? userMs + sysMs : null,
    userMs,
    sysMs,
    ok,
  };
  if (ok) return run;
  const sig = proc.signalCode === null ? null : String(proc.signalCode);
  const error = timedOut
    ? `timed out after ${Math.round(timeoutMs)} ms`
    : firstLine(stderr) || (sig ? `killed by ${sig}` : `exit code ${proc.exitCode}`);
  return { ...run, error };
}

/**
 * One warm-up run, then runs started on a grid of `intervalS` from the loop's start for `seconds`:
 * each run waits for its slot; a run that ends after the next slot is followed at once by the next
 * (missed slots are not made up). The last run started inside the window is waited for.
 */
export async function measureSsLoop(p: SsParams): Promise<SsSide> {
  const res: SsSide = {
    cmd: p.cmd,
    status: "skipped",
    notes: [],
    warmup: null,
    runs: [],
    windowS: null,
    cpuS: null,
    cpuSharePct: null,
    cpuMsPerRun: null,
    medianWallMs: null,
    maxWallMs: null,
    overruns: 0,
    failedRuns: 0,
    peakRssMiB: null,
    otherLoadCores: null,
  };
  if (stopRequested) return res;
  const warm = await measure(p.cmd, p.timeoutMs, true, p.rusageFile);
  res.warmup = warm;
  if (stopRequested) return res;
  if (!warm.ok) {
    res.status = "failed";
    res.error = warm.error ?? "warm-up run failed";
    return res;
  }
  res.peakRssMiB = warm.maxRssBytes === null ? null : warm.maxRssBytes / MIB;

  const intervalMs = p.intervalS * 1000;
  const windowMs = p.seconds * 1000;
  const hostBefore = readHostCpu();
  const t0 = performance.now();
  let slot = 0; // grid index of the next run
  let startAt = t0;
  let lastEnd = t0;
  for (;;) {
    const wait = startAt - performance.now();
    if (wait > 0 && !(await sleepUnless(wait))) break;
    if (stopRequested) break;
    const start = performance.now();
    const r = await runOnce(p.cmd, p.timeoutMs);
    lastEnd = performance.now();
    if (stopRequested) break;
    const overran = r.wallMs > intervalMs;
    res.runs.push({ startS: (start - t0) / 1000, overran, ...r });
    // Next grid point; if it has already passed, start at once (missed slots are not made up).
    // Offsets from t0 are compared, not absolute times: t0 + x - t0 need not equal x in floating point.
    slot++;
    let offset = slot * intervalMs;
    const endOffset = lastEnd - t0;
    if (offset < endOffset) {
      offset = endOffset;
      slot = Math.floor(endOffset / intervalMs);
    }
    if (offset >= windowMs) break;
    startAt = t0 + offset;
  }
  const hostAfter = readHostCpu();
  if (stopRequested) {
    res.status = "skipped";
    res.error = "interrupted";
    return res;
  }

  const ok = res.runs.filter((r) => r.ok && r.cpuMs !== null);
  res.failedRuns = res.runs.length - ok.length;
  res.overruns = res.runs.filter((r) => r.overran).length;
  if (ok.length === 0) {
    res.status = "failed";
    res.error = res.runs.find((r) => r.error)?.error ?? "no run";
    return res;
  }
  // Failed runs cost CPU too: count every run whose rusage is known.
  const cpuMs = res.runs.reduce((s, r) => s + (r.cpuMs ?? 0), 0);
  res.windowS = Math.max(windowMs, lastEnd - t0) / 1000;
  res.cpuS = cpuMs / 1000;
  res.cpuSharePct = (100 * res.cpuS) / res.windowS;
  res.cpuMsPerRun = cpuMs / res.runs.length;
  res.medianWallMs = median(ok.map((r) => r.wallMs));
  res.maxWallMs = max(ok.map((r) => r.wallMs));
  res.otherLoadCores = otherHostLoad(hostBefore, hostAfter, os.cpus().length, res.cpuS, res.windowS);
  res.status = "ok";
  if (res.overruns > 0) {
    res.notes.push(
      `could not keep up: ${res.overruns} of ${res.runs.length} runs took longer than ${p.intervalS} s (the next started at once)`,
    );
  }
  if (res.failedRuns > 0) res.notes.push(`${res.failedRuns} run(s) failed: ${res.runs.find((r) => !r.ok)?.error ?? ""}`);
  return res;
}
