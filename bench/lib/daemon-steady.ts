// The steady phase of the daemon suite: `sockwarden run` with every bundled plugin, over idle
// loopback sockets (traffic.py hold) and a stream of short connections
// (traffic.py churn); its CPU (utime+stime of all threads) and RSS are sampled every second.
import os from "node:os";
import path from "node:path";
import { holdConnections, PYTHON, type HeldConnections } from "./helper.ts";
import { TRAFFIC } from "../../test/support/traffic/scripts.ts";
import { hostOpenFiles } from "./host.ts";
import { firstLine, run } from "./proc.ts";
import { countTcpStates, LineProcess, pause, readJsonLines, scrapeMetrics, waitRunning, wasInterrupted, type TcpStates } from "./daemon-proc.ts";
import { otherHostLoad, readCpuTicks, readHostCpu, readVm, threadShares, threadTicks, treeUsage, type HostCpu } from "../../test/support/proc-usage.ts";
import { MIB } from "./stats.ts";
import type { ChurnClose } from "./daemon-options.ts";
import { fallbackNote, type Sensor } from "./sensors.ts";

export const CHURN_PORT = 18080;
export const METRICS_ADDR = "127.0.0.1:19464";
/** CPU windows of this many one-second samples. */
export const CPU_WINDOW_S = 5;

export interface SteadySample {
  /** Seconds since the window started (monotonic). */
  t: number;
  /**
   * utime + stime of the daemon and of its rule runners (its child processes), plus what runners
   * it reaped left behind, clock ticks.
   */
  ticks: number;
  /** The daemon process alone. */
  daemonTicks: number;
  /** VmRSS of the daemon plus every live runner. */
  rssBytes: number;
  /** Live processes: the daemon and its runners. */
  processes: number;
}

export interface SteadyResult {
  sensor: Sensor;
  status: "ok" | "failed" | "skipped";
  error?: string;
  intervalS: number;
  cmd: string[];
  plugins: string[];
  /** Idle sockets asked for, connections held for them, and what the holder reports. */
  sockets: number;
  connections: number;
  heldSockets: number | null;
  holderSetupMs: number | null;
  /** TCP sockets in the namespace when the window started and ended. */
  atStart: TcpStates | null;
  atEnd: TcpStates | null;
  churn: {
    rate: number;
    close: ChurnClose;
    /** Connections completed in the window, and the rate that makes. */
    inWindow: number | null;
    windowRate: number | null;
    /** All connections completed while the daemon ran, failures, and schedule slots dropped. */
    total: number | null;
    failed: number | null;
    late: number | null;
    firstError: string | null;
    /** The churn client and server processes' CPU over the window, % of one core. */
    helperCpuPct: number | null;
  };
  warmupS: number;
  windowS: number | null;
  samples: SteadySample[];
  cpu: {
    meanPct: number | null;
    /** CPU % over consecutive 5 s windows. */
    windows: number[];
    max5sPct: number | null;
    min5sPct: number | null;
    max1sPct: number | null;
    /** CPU from the daemon's start to the window's start, seconds. */
    beforeWindowS: number | null;
    /** Mean over the window of the daemon process alone, and of its rule runners. */
    daemonPct: number | null;
    runnersPct: number | null;
    /** The daemon's threads by name, % of a core over the window, highest first. */
    threads: { thread: string; pct: number }[];
  };
  /** Daemon plus runners (VmRSS summed); hwmMiB is the daemon's own VmHWM. */
  rss: { meanMiB: number | null; maxMiB: number | null; minMiB: number | null; hwmMiB: number | null; daemonMaxMiB: number | null; pssEndMiB: number | null };
  /** Growth of some of the daemon's counters over the window (rule time in seconds, faults). */
  windowMetrics: Record<string, number>;
  /** Processes counted (the daemon and its runners) at the end of the window, with each one's VmRSS. */
  processes: { pid: number; comm: string; rssMiB: number; pssMiB: number | null }[];
  events: {
    /** sockwarden_events_total{type="opened"} / {type="closed"}: before the churn, and after it settled. */
    openedBefore: number | null;
    openedAfter: number | null;
    closedBefore: number | null;
    closedAfter: number | null;
    /** Opened events the churn should have caused: two sockets per connection. */
    expectedOpened: number | null;
    /** Opened events beyond that (the harness's own metrics requests make a few). */
    extraOpened: number | null;
    allSeen: boolean | null;
  };
  /**
   * What the file sink received: alerts by rule (a folded summary counts for the alerts it stands
   * for), and the daemon's reports about rules (a rule that failed or overran its time budget).
   */
  alerts: {
    records: number;
    alerts: number;
    byRule: Record<string, number>;
    examples: string[];
    reports: { time: string; rule: string; outcome: string; message: string }[];
  };
  auditRecords: number;
  startupMs: number | null;
  /** Wall-clock times of the daemon's start, the churn's start and the window's start. */
  startedAt: string | null;
  churnStartedAt: string | null;
  windowStartedAt: string | null;
  stopMs: number | null;
  otherLoadCores: number | null;
  loadavg: string | null;
  hostOpenFiles: number | null;
  notes: string[];
}

export interface SteadyParams {
  exe: string;
  sensor: Sensor;
  sensorWords: string[];
  /** Extra environment of the daemon (a profiler's settings). */
  env?: Record<string, string>;
  intervalS: number;
  sockets: number;
  churnRate: number;
  churnClose: ChurnClose;
  warmupS: number;
  seconds: number;
  dir: string;
  deadline: number;
  ticksPerS: number;
  log: (msg: string) => void;
}

export function steadyPhaseEstimateMs(p: Pick<SteadyParams, "warmupS" | "seconds" | "intervalS">): number {
  return (p.warmupS + p.seconds + 4 * p.intervalS + 30) * 1000;
}

/** Names of the bundled plugins, from `sockwarden rules list`. */
export async function bundledPlugins(exe: string): Promise<string[]> {
  const r = await run([exe, "rules", "list"], 20_000);
  if (!r.ok) throw new Error(`${exe} rules list: ${r.timedOut ? "timed out" : firstLine(r.stderr) || `exit ${r.exitCode}`}`);
  const names = r.stdout
    .split("\n")
    .map((l) => /^([a-z0-9][\w.-]*)\s/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined);
  if (names.length === 0) throw new Error(`${exe} rules list printed no plugin names`);
  return names;
}

/** Metrics read at both ends of the window, for where the time goes. */
const WINDOW_METRICS = ["sockwarden_rule_seconds_total", "sockwarden_refresh_errors_total", "sockwarden_sensor_lost_total", "sockwarden_lost_notices_total"];

function cpuTicks(pid: number): number | null {
  const t = readCpuTicks(pid);
  return t ? t.utime + t.stime : null;
}

const pct = (ticks: number, ticksPerS: number, seconds: number): number => (ticks / ticksPerS / seconds) * 100;

export async function measureSteady(p: SteadyParams): Promise<SteadyResult> {
  const connections = Math.round(p.sockets / 2);
  const audit = path.join(p.dir, "audit-steady.log");
  const alertsFile = path.join(p.dir, "alerts-steady.ndjson");
  const r: SteadyResult = {
    sensor: p.sensor,
    status: "ok",
    intervalS: p.intervalS,
    cmd: [],
    plugins: [],
    sockets: p.sockets,
    connections,
    heldSockets: null,
    holderSetupMs: null,
    atStart: null,
    atEnd: null,
    churn: { rate: p.churnRate, close: p.churnClose, inWindow: null, windowRate: null, total: null, failed: null, late: null, firstError: null, helperCpuPct: null },
    warmupS: p.warmupS,
    windowS: null,
    samples: [],
    cpu: { meanPct: null, windows: [], max5sPct: null, min5sPct: null, max1sPct: null, beforeWindowS: null, daemonPct: null, runnersPct: null, threads: [] },
    rss: { meanMiB: null, maxMiB: null, minMiB: null, hwmMiB: null, daemonMaxMiB: null, pssEndMiB: null },
    processes: [],
    windowMetrics: {},
    events: { openedBefore: null, openedAfter: null, closedBefore: null, closedAfter: null, expectedOpened: null, extraOpened: null, allSeen: null },
    alerts: { records: 0, alerts: 0, byRule: {}, examples: [], reports: [] },
    auditRecords: 0,
    startupMs: null,
    startedAt: null,
    churnStartedAt: null,
    windowStartedAt: null,
    stopMs: null,
    otherLoadCores: null,
    loadavg: null,
    hostOpenFiles: null,
    notes: [],
  };
  const budgetMs = Math.max(30_000, p.deadline - Date.now());
  let held: HeldConnections | null = null;
  let churn: LineProcess | null = null;
  let daemon: LineProcess | null = null;
  const interrupted = (): never => {
    throw new Error("interrupted");
  };
  try {
    r.plugins = await bundledPlugins(p.exe);
    if (connections > 0) {
      p.log(`steady: holding ${connections} idle connections (${2 * connections} sockets)…`);
      held = await holdConnections(connections, budgetMs / 1000 + 30, Math.min(300_000, budgetMs / 2));
      r.heldSockets = held.sockets;
      r.holderSetupMs = held.setupMs;
    }
    churn = new LineProcess(
      [PYTHON, TRAFFIC, "churn", "--port", String(CHURN_PORT), "--close", p.churnClose, "--lifetime", String(Math.ceil(budgetMs / 1000))],
      budgetMs + 10_000,
    );
    const ready = await churn.expectLine(/^ready \d+ (\d+)$/, 10_000, "traffic churn");
    const churnServerPid = Number(ready[1]);

    r.cmd = [
      p.exe, "run", ...r.plugins.flatMap((n) => ["--rule", n]), "--interval", String(p.intervalS),
      "--audit-log", audit, "--sink", `file:${alertsFile}?maxBytes=1G`, "--metrics", METRICS_ADDR, ...p.sensorWords,
    ];
    daemon = new LineProcess(r.cmd, budgetMs + 10_000, undefined, p.env);
    r.startedAt = new Date(Date.now() - (performance.now() - daemon.startedAt)).toISOString();
    r.startupMs = await waitRunning(daemon, 30_000);
    const d = daemon;
    if (!(await pause(p.intervalS * 1000 + 500))) interrupted();
    const m0 = await scrapeMetrics(METRICS_ADDR);
    r.events.openedBefore = m0.get('sockwarden_events_total{type="opened"}') ?? 0;
    r.events.closedBefore = m0.get('sockwarden_events_total{type="closed"}') ?? 0;

    p.log(`steady: ${r.plugins.join(", ")} every ${p.intervalS} s; ${p.churnRate} connections/s (close: ${p.churnClose}); ${p.warmupS} s warm-up…`);
    churn.write(`start ${p.churnRate}\n`);
    r.churnStartedAt = new Date().toISOString();
    if (!(await pause(p.warmupS * 1000))) interrupted();
    if (d.exited) throw new Error(`sockwarden run exited during the warm-up: ${firstLine(d.stderr)}`);

    r.atStart = countTcpStates();
    r.hostOpenFiles = await hostOpenFiles();
    r.loadavg = os.loadavg().map((x) => x.toFixed(2)).join(" ");
    churn.write("mark\n");
    const mark0 = Number((await churn.expectLine(/^mark (\d+) \d+ \d+$/, 5000, "traffic churn"))[1]);
    const churnTicks0 = (cpuTicks(churn.pid) ?? 0) + (cpuTicks(churnServerPid) ?? 0);
    const host0: HostCpu | null = readHostCpu();
    p.log(`steady: ${r.atStart.total} TCP sockets in the namespace (${r.atStart.timeWait} TIME_WAIT); measuring ${p.seconds} s…`);

    const mw0 = await scrapeMetrics(METRICS_ADDR).catch(() => new Map<string, number>());
    const threads0 = threadTicks(d.pid);
    const t0 = performance.now();
    r.windowStartedAt = new Date().toISOString();
    let daemonMaxRss = 0;
    const sample = (): boolean => {
      const tree = treeUsage(d.pid);
      const vm = readVm(d.pid);
      if (tree === null || vm === null) return false;
      daemonMaxRss = Math.max(daemonMaxRss, vm.rss);
      r.samples.push({ t: (performance.now() - t0) / 1000, ticks: tree.ticks, daemonTicks: tree.rootTicks, rssBytes: tree.rssBytes, processes: tree.processes.length });
      return true;
    };
    if (!sample()) throw new Error(`sockwarden run is gone: ${firstLine(d.stderr)}`);
    r.cpu.beforeWindowS = r.samples[0]!.ticks / p.ticksPerS;
    for (let k = 1; k <= Math.round(p.seconds); k++) {
      // On a one-second grid from the window's start, not one second after the last sample.
      if (!(await pause(t0 + k * 1000 - performance.now()))) interrupted();
      if (!sample()) throw new Error(`sockwarden run exited during the window: ${firstLine(d.stderr)}`);
    }
    const host1 = readHostCpu();
    const vmEnd = readVm(d.pid);
    const threads1 = threadTicks(d.pid);
    const treeEnd = treeUsage(d.pid, true);
    const mw1 = await scrapeMetrics(METRICS_ADDR).catch(() => new Map<string, number>());
    for (const k of WINDOW_METRICS) {
      const a = mw0.get(k);
      const b = mw1.get(k);
      if (a !== undefined && b !== undefined) r.windowMetrics[k] = b - a;
    }
    const churnTicks1 = (cpuTicks(churn.pid) ?? 0) + (cpuTicks(churnServerPid) ?? 0);
    churn.write("mark\n");
    const mark1 = Number((await churn.expectLine(/^mark (\d+) \d+ \d+$/, 5000, "traffic churn"))[1]);
    r.atEnd = countTcpStates();

    const first = r.samples[0]!;
    const last = r.samples[r.samples.length - 1]!;
    r.windowS = last.t - first.t;
    const windowTicks = last.ticks - first.ticks;
    r.cpu.meanPct = pct(windowTicks, p.ticksPerS, r.windowS);
    for (let k = CPU_WINDOW_S; k < r.samples.length; k += CPU_WINDOW_S) {
      const a = r.samples[k - CPU_WINDOW_S]!;
      const b = r.samples[k]!;
      r.cpu.windows.push(pct(b.ticks - a.ticks, p.ticksPerS, b.t - a.t));
    }
    if (r.cpu.windows.length) {
      r.cpu.max5sPct = Math.max(...r.cpu.windows);
      r.cpu.min5sPct = Math.min(...r.cpu.windows);
    }
    let max1 = 0;
    for (let k = 1; k < r.samples.length; k++) {
      const a = r.samples[k - 1]!;
      const b = r.samples[k]!;
      max1 = Math.max(max1, pct(b.ticks - a.ticks, p.ticksPerS, b.t - a.t));
    }
    r.cpu.max1sPct = max1;
    const rss = r.samples.map((s) => s.rssBytes / MIB);
    r.rss.meanMiB = rss.reduce((a, b) => a + b, 0) / rss.length;
    r.rss.maxMiB = Math.max(...rss);
    r.rss.minMiB = Math.min(...rss);
    r.rss.hwmMiB = vmEnd ? vmEnd.hwm / MIB : null;
    r.rss.daemonMaxMiB = daemonMaxRss / MIB;
    if (treeEnd) {
      r.rss.pssEndMiB = treeEnd.pssBytes === null ? null : treeEnd.pssBytes / MIB;
      r.processes = treeEnd.processes.map((x) => ({ pid: x.pid, comm: x.comm, rssMiB: x.rssBytes / MIB, pssMiB: x.pssBytes === null ? null : x.pssBytes / MIB }));
    }
    r.cpu.daemonPct = pct(last.daemonTicks - first.daemonTicks, p.ticksPerS, r.windowS);
    r.cpu.runnersPct = r.cpu.meanPct - r.cpu.daemonPct;
    r.cpu.threads = threadShares(threads0, threads1, p.ticksPerS, r.windowS);
    r.churn.inWindow = mark1 - mark0;
    r.churn.windowRate = r.churn.inWindow / r.windowS;
    r.churn.helperCpuPct = pct(churnTicks1 - churnTicks0, p.ticksPerS, r.windowS);
    r.otherLoadCores = otherHostLoad(host0, host1, os.cpus().length, windowTicks / p.ticksPerS, r.windowS);
    if (r.otherLoadCores !== null) r.otherLoadCores = Math.max(0, r.otherLoadCores - (r.churn.helperCpuPct / 100));

    // Every churn connection should have become two opened events (client and server socket).
    churn.write("stop\n");
    const stopped = await churn.expectLine(/^stopped (\d+) (\d+) (\d+) (\S+)$/, 10_000, "traffic churn");
    r.churn.total = Number(stopped[1]);
    r.churn.failed = Number(stopped[2]);
    r.churn.late = Number(stopped[3]);
    r.churn.firstError = stopped[4] === "-" ? null : stopped[4]!.replace(/_/g, " ");
    // Short connections are reported one refresh late; give it two and a bit.
    if (!(await pause(2 * p.intervalS * 1000 + 1000))) interrupted();
    const m1 = await scrapeMetrics(METRICS_ADDR);
    r.events.openedAfter = m1.get('sockwarden_events_total{type="opened"}') ?? 0;
    r.events.closedAfter = m1.get('sockwarden_events_total{type="closed"}') ?? 0;
    r.events.expectedOpened = 2 * r.churn.total;
    r.events.extraOpened = r.events.openedAfter - r.events.openedBefore - r.events.expectedOpened;
    // The harness's two metrics requests are connections too (two sockets each, at most).
    r.events.allSeen = r.events.extraOpened >= 0 && r.events.extraOpened <= 4;
    if (r.churn.failed) r.notes.push(`${r.churn.failed} churn connection(s) failed (first: ${r.churn.firstError ?? "?"}); their sockets may or may not have been seen`);
    if (r.churn.late) r.notes.push(`the churn client fell behind its schedule: ${r.churn.late} connection slot(s) dropped`);
    if (held && !held.alive()) r.notes.push("the idle connection holder exited early");
  } catch (e) {
    r.status = "failed";
    r.error = e instanceof Error ? e.message : String(e);
    if (wasInterrupted()) r.error = "interrupted";
  } finally {
    if (daemon) {
      const s = await daemon.stop(3000, "SIGTERM");
      // Asked for the eBPF sensor but it fell back: what was measured is polling.
      const fellBack = p.sensor === "ebpf" ? fallbackNote(daemon.stderr) : null;
      if (fellBack) {
        r.status = "failed";
        r.error = `the daemon fell back to polling: eBPF sensor unavailable: ${fellBack}`;
      }
      r.stopMs = s.ms;
      if (s.killed) r.notes.push("sockwarden run did not stop within 3 s of SIGTERM: killed");
      if (daemon.stderr.trim()) {
        const lines = daemon.stderr.trim().split("\n").filter((l) => !/ running .* every /.test(l));
        if (lines.length) r.notes.push(`daemon stderr: ${lines.slice(0, 3).join(" | ")}${lines.length > 3 ? ` (+${lines.length - 3} lines)` : ""}`);
      }
    }
    if (churn) await churn.stop(3000);
    if (held) await held.stop();
  }

  const alerts = readJsonLines(alertsFile);
  r.alerts.records = alerts.records.length;
  for (const a of alerts.records) {
    const rule = typeof a.rule === "string" ? a.rule : String(a.kind ?? "?");
    if (a.kind === "report") {
      if (r.alerts.reports.length < 50) {
        r.alerts.reports.push({ time: String(a.time), rule, outcome: String(a.outcome ?? "?"), message: String(a.message ?? "").slice(0, 300) });
      }
      continue;
    }
    const n = typeof a.count === "number" ? a.count : 1;
    r.alerts.byRule[rule] = (r.alerts.byRule[rule] ?? 0) + n;
    r.alerts.alerts += n;
    if (r.alerts.examples.length < 4 && !r.alerts.examples.some((x) => x.startsWith(`${rule}: `))) {
      r.alerts.examples.push(`${rule}: ${String(a.message ?? "").slice(0, 200)}`);
    }
  }
  if (r.plugins.includes("connection-flood") && !r.alerts.byRule["connection-flood"] && (r.churn.total ?? 0) > 0 && p.sensor === "poll") {
    r.notes.push(
      "connection-flood raised no alert about the churn client: each connection is over within a refresh, so the client's " +
        "socket is only seen once it is gone (a destroy notice, or the TIME_WAIT socket left behind), with no owning process; " +
        "the accepted side belongs to a listening port, which connection-flood leaves out by default (countInbound false)",
    );
  }
  if (r.alerts.reports.length) {
    const kinds = [...new Set(r.alerts.reports.map((x) => `${x.rule} (${x.outcome})`))];
    r.notes.push(`${r.alerts.reports.length} report(s) of rule trouble in the sink: ${kinds.join(", ")}`);
  }
  r.auditRecords = readJsonLines(audit).records.length;
  if (r.auditRecords) r.notes.push(`${r.auditRecords} audit record(s): a rule acted on the benchmark's own traffic`);
  return r;
}
