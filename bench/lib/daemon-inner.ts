// The measuring half of the daemon suite: runs inside the benchmark's network namespace (entered
// with nsenter by bench/daemon.ts) and runs the latency phase at each interval, then the steady
// phase, then prints and saves the report.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { waitNoSockets } from "./helper.ts";
import { executableInfo, hostInfo } from "./host.ts";
import { saveLatest } from "./results.ts";
import { reportEnvelope } from "./report-kit.ts";
import { notRunnable } from "./proc.ts";
import { clockTicks } from "../../test/support/proc-usage.ts";
import { interruptAll, killRemaining, wasInterrupted } from "./daemon-proc.ts";
import { latencyPhaseEstimateMs, latencyTargetMs, measureLatency, percentiles, type LatencyResult } from "./daemon-latency.ts";
import { measureSteady, steadyPhaseEstimateMs, type SteadyResult } from "./daemon-steady.ts";
import { checkDaemonTargets, daemonMarkdown, daemonText, fmtMs, type DaemonReport } from "./daemon-report.ts";
import type { DaemonOptions } from "./daemon-options.ts";
import { cpuProfileEnv } from "./cpu-profile.ts";
import { probeSensors, resyncNote, sensorArgs, type Sensor, type SensorSupport } from "./sensors.ts";

const log = (msg: string): void => {
  process.stderr.write(`[bench:daemon] ${msg}\n`);
};

function skippedLatency(sensor: Sensor, intervalS: number, samples: number, why: string): LatencyResult {
  return {
    sensor, intervalS, status: "skipped", error: why, cmd: [], configToml: "", requested: samples, samples: [], closed: 0, missed: 0,
    other: 0, timeoutMs: 0, victim: percentiles([]),
    audit: { records: 0, matched: 0, unmatched: 0, outcomes: {}, latency: percentiles([]), lag: percentiles([]) },
    sinkCloseActions: 0, sinkLines: 0, daemonCpuPct: null, daemonHwmMiB: null, startupMs: null, stopMs: null, wallS: null,
    targetMs: latencyTargetMs(sensor, intervalS), notes: [],
  };
}

export async function runDaemonInner(opts: DaemonOptions, netnsName: string, invocation: string): Promise<number> {
  const why = notRunnable(opts.exe);
  if (why) {
    log(`${why} (build it with npm run build, or pass --sockwarden PATH)`);
    return 2;
  }
  const started = new Date();
  const onSignal = (): void => {
    if (!wasInterrupted()) log("interrupted: stopping");
    interruptAll();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);

  const tmp = mkdtempSync(path.join(os.tmpdir(), "sw-bench-daemon-"));
  try {
    const host = { ...(await hostInfo()), ...(await executableInfo(opts.exe)) };
    const ticksPerS = clockTicks();
    const remaining = (): number => opts.deadline - Date.now();
    log(`namespace ${netnsName}; sockwarden ${opts.exe}; phases ${opts.phases.join(", ")}; budget ${(remaining() / 60_000).toFixed(1)} min`);

    const support: SensorSupport = await probeSensors(opts.exe, "run", opts.sensors);
    const sensorNotes = opts.sensors.includes("ebpf") ? [resyncNote(support, opts.resync)] : [];
    if (support.ebpfUnavailable) sensorNotes.push(`eBPF sensor unavailable: ${support.ebpfUnavailable}`);
    if (opts.cpuProf) sensorNotes.push(`PROFILED (--cpu-prof ${opts.cpuProf}): the figures include the profiler's cost`);
    log(`sensors ${opts.sensors.join(", ")}; ${sensorNotes.join("; ")}`);
    const unavailable = (sensor: Sensor): string | null =>
      sensor === "ebpf" && support.ebpfUnavailable ? `eBPF sensor unavailable: ${support.ebpfUnavailable}` : null;

    const latency: LatencyResult[] = [];
    if (opts.phases.includes("latency")) {
      for (const sensor of opts.sensors) for (const intervalS of opts.intervals) {
        if (wasInterrupted()) break;
        const why = unavailable(sensor);
        if (why) {
          latency.push(skippedLatency(sensor, intervalS, opts.samples, why));
          continue;
        }
        const need = latencyPhaseEstimateMs(intervalS, opts.samples);
        if (remaining() < need) {
          latency.push(skippedLatency(sensor, intervalS, opts.samples, `time budget (--max-minutes) left ${(remaining() / 1000).toFixed(0)} s, the phase needs about ${(need / 1000).toFixed(0)} s`));
          log(`latency ${sensor} ${intervalS} s: skipped (time budget)`);
          continue;
        }
        const left = await waitNoSockets(10_000);
        if (left.total > 0) log(`warning: ${left.total} TCP sockets still in the namespace`);
        log(`latency ${sensor} ${intervalS} s: starting sockwarden run --rule smtp-guard…`);
        const r = await measureLatency({
          exe: opts.exe,
          sensor,
          sensorWords: sensorArgs(sensor, support, opts.resync),
          env: cpuProfileEnv(opts.cpuProf, `latency-${sensor}-${intervalS}`),
          intervalS,
          samples: opts.samples,
          seed: opts.seed,
          dir: tmp,
          deadline: Math.min(opts.deadline, Date.now() + 2 * need + 60_000),
          ticksPerS,
          log,
        });
        latency.push(r);
        log(
          `latency ${sensor} ${intervalS} s: ` +
            (r.samples.length
              ? `median ${fmtMs(r.victim.median)} ms, p95 ${fmtMs(r.victim.p95)}, p99 ${fmtMs(r.victim.p99)}, max ${fmtMs(r.victim.max)} ms ` +
                `(${r.closed} closed of ${r.samples.length}; audit median ${fmtMs(r.audit.latency.median)} ms)`
              : "no samples") +
            (r.status === "failed" ? `; FAILED: ${r.error}` : ""),
        );
      }
    }

    const steady: SteadyResult[] = [];
    if (opts.phases.includes("steady")) for (const sensor of opts.sensors) {
      if (wasInterrupted()) break;
      const need = steadyPhaseEstimateMs({ warmupS: opts.warmup, seconds: opts.seconds, intervalS: opts.steadyInterval });
      const why = unavailable(sensor);
      if (why) {
        steady.push({ ...measureSteadySkipped(opts, sensor), error: why });
        continue;
      }
      const left = await waitNoSockets(10_000);
      if (left.total > 0) log(`warning: ${left.total} TCP sockets still in the namespace`);
      if (remaining() < need) {
        log(`steady ${sensor}: skipped (time budget)`);
        steady.push({
          ...measureSteadySkipped(opts, sensor),
          error: `time budget (--max-minutes) left ${(remaining() / 1000).toFixed(0)} s, the phase needs about ${(need / 1000).toFixed(0)} s`,
        });
      } else {
        log(`steady ${sensor}: starting…`);
        const s = await measureSteady({
          exe: opts.exe,
          sensor,
          sensorWords: sensorArgs(sensor, support, opts.resync),
          env: cpuProfileEnv(opts.cpuProf, `steady-${sensor}`),
          intervalS: opts.steadyInterval,
          sockets: opts.sockets,
          churnRate: opts.churnRate,
          churnClose: opts.churnClose,
          warmupS: opts.warmup,
          seconds: opts.seconds,
          dir: tmp,
          deadline: opts.deadline,
          ticksPerS,
          log,
        });
        steady.push(s);
        log(
          `steady ${sensor}: ` +
            (s.cpu.meanPct !== null
              ? `CPU ${s.cpu.meanPct.toFixed(2)}% of a core (max ${s.cpu.max5sPct?.toFixed(2)}% over 5 s), ` +
                `RSS max ${s.rss.maxMiB?.toFixed(1)} MiB (daemon + runners)`
              : "no figures") +
            (s.status === "failed" ? `; FAILED: ${s.error}` : ""),
        );
      }
    }

    const interrupted = wasInterrupted();
    const partial: Omit<DaemonReport, "targets"> = {
      ...reportEnvelope("sockwarden-bench-daemon", started, interrupted, netnsName, host),
      clockTicksPerSecond: ticksPerS,
      invocation,
      sensorNotes,
      options: {
        phases: opts.phases,
        sensors: opts.sensors,
        resync: opts.resync,
        intervals: opts.intervals,
        samples: opts.samples,
        sockets: opts.sockets,
        churnRate: opts.churnRate,
        churnClose: opts.churnClose,
        seconds: opts.seconds,
        warmup: opts.warmup,
        steadyInterval: opts.steadyInterval,
        seed: opts.seed,
        sockwarden: opts.exe,
      },
      latency,
      steady,
    };
    const report: DaemonReport = { ...partial, targets: checkDaemonTargets(partial, opts.intervals) };
    process.stdout.write("\n" + daemonText(report) + "\n");
    if (interrupted) {
      process.stdout.write("(interrupted: partial results, nothing saved)\n");
      return 130;
    }
    if (opts.save && !saveLatest(opts.outDir, "daemon", daemonMarkdown(report), report, log)) return 1;
    // An unavailable eBPF sensor is reported in its column, not a failure of the suite.
    const failed = [...latency, ...steady].some((x) => x.status === "failed" || (x.status === "skipped" && !x.error?.startsWith("eBPF sensor unavailable")));
    return failed ? 1 : 0;
  } finally {
    killRemaining(); // nothing should be left; make sure
    rmSync(tmp, { recursive: true, force: true });
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onSignal);
  }
}

function measureSteadySkipped(opts: DaemonOptions, sensor: Sensor): SteadyResult {
  return {
    sensor, status: "skipped", intervalS: opts.steadyInterval, cmd: [], plugins: [], sockets: opts.sockets,
    connections: Math.round(opts.sockets / 2), heldSockets: null, holderSetupMs: null, atStart: null, atEnd: null,
    churn: { rate: opts.churnRate, close: opts.churnClose, inWindow: null, windowRate: null, total: null, failed: null, late: null, firstError: null, helperCpuPct: null },
    warmupS: opts.warmup, windowS: null, samples: [],
    cpu: { meanPct: null, windows: [], max5sPct: null, min5sPct: null, max1sPct: null, beforeWindowS: null, daemonPct: null, runnersPct: null, threads: [] },
    rss: { meanMiB: null, maxMiB: null, minMiB: null, hwmMiB: null, daemonMaxMiB: null, pssEndMiB: null },
    processes: [], windowMetrics: {},
    events: { openedBefore: null, openedAfter: null, closedBefore: null, closedAfter: null, expectedOpened: null, extraOpened: null, allSeen: null },
    alerts: { records: 0, alerts: 0, byRule: {}, examples: [], reports: [] }, auditRecords: 0, startupMs: null,
    startedAt: null, churnStartedAt: null, windowStartedAt: null, stopMs: null,
    otherLoadCores: null, loadavg: null, hostOpenFiles: null, notes: [],
  };
}
