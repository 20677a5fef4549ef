// The latency phase of the daemon suite: `sockwarden run --rule smtp-guard` at one interval, and
// a client (test/support/traffic/traffic.py victim) that connects to port 25 again and again and times, from the
// moment connect() returned, how long until its blocking read fails because the daemon closed
// the connection. The audit log's times are matched to the samples as a cross-check.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { PYTHON, TRAFFIC } from "../../test/support/traffic/scripts.ts";
import { LineProcess, pause, readJsonLines, waitRunning, wasInterrupted } from "./daemon-proc.ts";
import { readCpuTicks, readVm } from "../../test/support/proc-usage.ts";
import { MIB } from "./stats.ts";
import { fallbackNote, type Sensor } from "./sensors.ts";

export const SMTP_PORT = 25;
/** What a user would run by mistake or malice: a process of this name is not a mail server. */
export const VICTIM_NAME = "curl";
/** The polling target: p99 at most one interval plus this. */
export const LATENCY_SLACK_MS = 50;
/** The eBPF sensor's target: p99 at most this, whatever the interval (issue 15). */
export const EBPF_LATENCY_TARGET_MS = 5;

/** The p99 a sensor's run is held to at a refresh interval. */
export function latencyTargetMs(sensor: Sensor, intervalS: number): number {
  return sensor === "ebpf" ? EBPF_LATENCY_TARGET_MS : intervalS * 1000 + LATENCY_SLACK_MS;
}

export interface LatencySample {
  i: number;
  /** The client's local port (matches the audit record's endpoint). */
  port: number | null;
  /** Wall clock (ms since the epoch) when connect() returned. */
  connectWallMs: number;
  /** connect() returned -> the read failed, monotonic ms; null when the connection was not made. */
  latencyMs: number | null;
  /** ECONNABORTED, ECONNRESET, eof, data, timeout, connect-failed … */
  result: string;
  /** Random pause before this sample, ms. */
  gapMs: number;
  /** Audit record time − connectWallMs, when a close of this connection was recorded. */
  auditMs: number | null;
  auditOutcome: string | null;
}

export interface Percentiles {
  n: number;
  min: number | null;
  median: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

export interface LatencyResult {
  sensor: Sensor;
  intervalS: number;
  status: "ok" | "failed" | "skipped";
  error?: string;
  cmd: string[];
  configToml: string;
  requested: number;
  samples: LatencySample[];
  /** Samples whose read failed with ECONNABORTED or ECONNRESET: closed by the daemon. */
  closed: number;
  /** Samples still open when the client gave up (timeoutMs). */
  missed: number;
  /** eof, data, connect failures. */
  other: number;
  timeoutMs: number;
  /** Latency as the client saw it; samples that were not closed count as infinitely late. */
  victim: Percentiles;
  audit: {
    records: number;
    matched: number;
    /** Audit records of smtp-guard closes that belong to no sample. */
    unmatched: number;
    outcomes: Record<string, number>;
    latency: Percentiles;
    /** Client's latency − the audit record's, per sample: how long after the record the client noticed. */
    lag: Percentiles;
  };
  /** Close actions the stdout:ndjson sink printed. */
  sinkCloseActions: number;
  sinkLines: number;
  /** The daemon's CPU over the sampling, % of one core, and its VmHWM at the end. */
  daemonCpuPct: number | null;
  daemonHwmMiB: number | null;
  startupMs: number | null;
  stopMs: number | null;
  wallS: number | null;
  targetMs: number;
  notes: string[];
}

/** Nearest-rank percentiles; Infinity stands for a sample that never completed. */
export function percentiles(xs: readonly number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return { n, min: null, median: null, p95: null, p99: null, max: null, mean: null };
  const rank = (p: number): number => s[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
  const mid = n >> 1;
  const median = n % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { n, min: s[0]!, median, p95: rank(95), p99: rank(99), max: s[n - 1]!, mean: s.reduce((a, b) => a + b, 0) / n };
}

export interface LatencyParams {
  exe: string;
  sensor: Sensor;
  /** Command-line words that pick the sensor (sensors.ts sensorArgs). */
  sensorWords: string[];
  /** Extra environment of the daemon (a profiler's settings). */
  env?: Record<string, string>;
  intervalS: number;
  samples: number;
  seed: number;
  dir: string;
  /** Epoch ms by which the phase must be over. */
  deadline: number;
  ticksPerS: number;
  log: (msg: string) => void;
}

/** Rough duration of a phase, ms (for the time budget). */
export function latencyPhaseEstimateMs(intervalS: number, samples: number): number {
  return samples * (intervalS * 1000 + 60) + 15_000;
}

/** Consecutive samples left open before the phase gives up: the daemon is not closing anything. */
const GIVE_UP_AFTER = 5;

export async function measureLatency(p: LatencyParams): Promise<LatencyResult> {
  const tag = `latency ${p.sensor} ${p.intervalS} s`;
  const audit = path.join(p.dir, `audit-latency-${p.sensor}-${p.intervalS}.log`);
  const config = path.join(p.dir, `latency-${p.sensor}-${p.intervalS}.toml`);
  // smtp-guard closes one connection per sample: far more than the default 60 a minute.
  const configToml = "# one close per sample: lift the default limit of 60 actions a minute\n[limits]\nactions_per_minute = 1000000\n";
  writeFileSync(config, configToml);
  const cmd = [
    p.exe, "run", "--rule", "smtp-guard", "--interval", String(p.intervalS),
    "--audit-log", audit, "--sink", "stdout:ndjson", "--config", config, ...p.sensorWords,
  ];
  const timeoutMs = Math.max(2000, Math.round(3 * p.intervalS * 1000 + 1000));
  const targetMs = latencyTargetMs(p.sensor, p.intervalS);
  const r: LatencyResult = {
    sensor: p.sensor,
    intervalS: p.intervalS,
    status: "ok",
    cmd,
    configToml,
    requested: p.samples,
    samples: [],
    closed: 0,
    missed: 0,
    other: 0,
    timeoutMs,
    victim: percentiles([]),
    audit: { records: 0, matched: 0, unmatched: 0, outcomes: {}, latency: percentiles([]), lag: percentiles([]) },
    sinkCloseActions: 0,
    sinkLines: 0,
    daemonCpuPct: null,
    daemonHwmMiB: null,
    startupMs: null,
    stopMs: null,
    wallS: null,
    targetMs,
    notes: [],
  };

  const budgetMs = Math.max(10_000, p.deadline - Date.now());
  const victim = new LineProcess(
    [PYTHON, TRAFFIC, "victim", "--port", String(SMTP_PORT), "--samples", String(p.samples), "--gap-max", String(p.intervalS),
      "--timeout", String(timeoutMs / 1000), "--lifetime", String(Math.ceil(budgetMs / 1000)), "--seed", String(p.seed),
      "--name", VICTIM_NAME],
    budgetMs + 10_000,
  );
  let daemon: LineProcess | null = null;
  try {
    await victim.expectLine(/^ready \d+ \d+$/, 10_000, "traffic victim");
    daemon = new LineProcess(cmd, budgetMs + 10_000, (line) => {
      r.sinkLines++;
      try {
        const rec = JSON.parse(line) as { kind?: string; action?: string };
        if (rec.kind === "action" && rec.action === "close") r.sinkCloseActions++;
      } catch {
        // not JSON: counted as a line only
      }
    }, p.env);
    r.startupMs = await waitRunning(daemon, 20_000);
    // Let the refresh loop settle into its rhythm before the first sample.
    if (!(await pause(p.intervalS * 1000 + 300))) throw new Error("interrupted");
    const cpu0 = readCpuTicks(daemon.pid);
    const t0 = performance.now();
    victim.write("go\n");
    p.log(`${tag}: ${p.samples} samples, random gaps of 0–${p.intervalS} s, a sample gives up after ${timeoutMs} ms…`);

    let openInARow = 0;
    for (;;) {
      const line = await victim.nextLine(p.intervalS * 1000 + timeoutMs + 5000);
      if ("timeout" in line) throw new Error(wasInterrupted() ? "interrupted" : "traffic victim went silent");
      if ("eof" in line) {
        if (r.samples.length < p.samples) r.notes.push(`client ended after ${r.samples.length} samples: ${victim.stderr.trim().split("\n")[0] ?? ""}`);
        break;
      }
      if (line.line.startsWith("done ")) break;
      let s: Omit<LatencySample, "auditMs" | "auditOutcome">;
      try {
        s = JSON.parse(line.line);
      } catch {
        continue;
      }
      r.samples.push({ ...s, auditMs: null, auditOutcome: null });
      if (s.result === "ECONNABORTED" || s.result === "ECONNRESET") {
        r.closed++;
        openInARow = 0;
      } else if (s.result === "timeout") {
        r.missed++;
        openInARow++;
      } else r.other++;
      if (r.samples.length % 50 === 0) p.log(`${tag}: ${r.samples.length}/${p.samples} samples`);
      if (openInARow >= GIVE_UP_AFTER) {
        r.notes.push(`${GIVE_UP_AFTER} connections in a row were not closed within ${timeoutMs} ms: gave up`);
        victim.write("quit\n");
        break;
      }
      if (daemon.exited) {
        r.notes.push(`sockwarden run exited during the samples: ${daemon.stderr.trim().split("\n").pop() ?? ""}`);
        break;
      }
    }
    const elapsedS = (performance.now() - t0) / 1000;
    r.wallS = elapsedS;
    const cpu1 = readCpuTicks(daemon.pid);
    const vm = readVm(daemon.pid);
    if (cpu0 && cpu1 && elapsedS > 0) r.daemonCpuPct = ((cpu1.utime + cpu1.stime - cpu0.utime - cpu0.stime) / p.ticksPerS / elapsedS) * 100;
    if (vm) r.daemonHwmMiB = vm.hwm / MIB;
  } catch (e) {
    r.status = "failed";
    r.error = e instanceof Error ? e.message : String(e);
  } finally {
    if (daemon) {
      const s = await daemon.stop(3000, "SIGTERM");
      r.stopMs = s.ms;
      if (s.killed) r.notes.push("sockwarden run did not stop within 3 s of SIGTERM: killed");
    }
    await victim.stop(3000);
  }

  // A run asked for the eBPF sensor that fell back to polling measured polling: not an eBPF figure.
  const fellBack = p.sensor === "ebpf" && daemon ? fallbackNote(daemon.stderr) : null;
  if (fellBack) {
    r.status = "failed";
    r.error = `the daemon fell back to polling: eBPF sensor unavailable: ${fellBack}`;
  }

  // Cross-check with the audit log: one close per sample, matched by the client's local port.
  const { records, bad } = readJsonLines(audit);
  if (bad) r.notes.push(`${bad} audit lines did not parse`);
  const closes = records.filter((a) => a.requestedBy === "smtp-guard" && String(a.action).endsWith("close"));
  r.audit.records = closes.length;
  const byPort = new Map<number, Record<string, unknown>[]>();
  for (const a of closes) {
    const ep = a.endpoint as { localPort?: number; remotePort?: number } | null;
    if (!ep || ep.remotePort !== SMTP_PORT || typeof ep.localPort !== "number") continue;
    const list = byPort.get(ep.localPort) ?? [];
    list.push(a);
    byPort.set(ep.localPort, list);
    const outcome = String(a.outcome);
    r.audit.outcomes[outcome] = (r.audit.outcomes[outcome] ?? 0) + 1;
  }
  const used = new Set<Record<string, unknown>>();
  for (const s of r.samples) {
    if (s.port === null) continue;
    // A local port can come back in a later sample: take the first record at or after the connect.
    const rec = (byPort.get(s.port) ?? []).find((a) => !used.has(a) && Date.parse(String(a.time)) >= s.connectWallMs - 5);
    if (!rec) continue;
    used.add(rec);
    s.auditMs = Date.parse(String(rec.time)) - s.connectWallMs;
    s.auditOutcome = String(rec.outcome);
  }
  r.audit.matched = used.size;
  r.audit.unmatched = closes.length - used.size;

  const closedLat = (s: LatencySample): number =>
    (s.result === "ECONNABORTED" || s.result === "ECONNRESET") && s.latencyMs !== null ? s.latencyMs : Infinity;
  r.victim = percentiles(r.samples.map(closedLat));
  const withAudit = r.samples.filter((s) => s.auditMs !== null);
  r.audit.latency = percentiles(withAudit.map((s) => s.auditMs!));
  r.audit.lag = percentiles(withAudit.filter((s) => Number.isFinite(closedLat(s))).map((s) => s.latencyMs! - s.auditMs!));

  if (r.status === "ok") {
    if (r.samples.length === 0) {
      r.status = "failed";
      r.error = "no samples";
    } else if (r.samples.length < p.samples) r.notes.push(`only ${r.samples.length} of ${p.samples} samples`);
  }
  if (r.missed) r.notes.push(`${r.missed} connection(s) not closed within ${timeoutMs} ms (counted as infinitely late)`);
  if (r.other) r.notes.push(`${r.other} sample(s) ended otherwise (${[...new Set(r.samples.filter((s) => !/^(ECONNABORTED|ECONNRESET|timeout)$/.test(s.result)).map((s) => s.result))].join(", ")})`);
  if (r.audit.unmatched) r.notes.push(`${r.audit.unmatched} audit close record(s) matched no sample`);
  if (r.sinkCloseActions !== r.audit.records) r.notes.push(`the stdout sink printed ${r.sinkCloseActions} close actions, the audit log has ${r.audit.records}`);
  return r;
}
