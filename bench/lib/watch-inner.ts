// The measuring half of the watch suite: runs inside the benchmark's network namespace (entered
// with nsenter by bench/watch.ts), holds the idle sockets and measures each side in turn.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { countTcpSockets, heldFacts, holdConnections, waitNoSockets, type HeldConnections } from "./helper.ts";
import { executableInfo, hostInfo } from "./host.ts";
import { saveLatest } from "./results.ts";
import { reportEnvelope } from "./report-kit.ts";
import { interruptMeasuring, measureSsLoop, measureWatch } from "./watch-measure.ts";
import { clockTicks } from "../../test/support/proc-usage.ts";
import { watchCommand, watchDuration, type WatchOptions } from "./watch-options.ts";
import { probeSensors, resyncNote, sensorArgs, fallbackNote, type Sensor, type SensorSupport } from "./sensors.ts";
import { emptyShort, measureShort, shortPhaseEstimateMs, type ShortResult } from "./watch-short.ts";
import { interruptAll } from "./daemon-proc.ts";
import { cpuProfileEnv } from "./cpu-profile.ts";
import {
  addWatchRatios,
  checkEbpfTargets,
  checkWatchTargets,
  SS_LABEL,
  watchMarkdown,
  watchTextTables,
  type WatchReport,
  type WatchSizeResult,
} from "./watch-report.ts";

/** Every event type but counters: with the sensor, no TCP dump is needed between resyncs. */
const QUIET_EVENTS = "opened,closed,state-changed";

const log = (msg: string): void => {
  process.stderr.write(`[bench:watch] ${msg}\n`);
};

export const SS_CMD = ["ss", "-tanpi"];

export async function runWatchInner(opts: WatchOptions, netnsName: string): Promise<number> {
  const started = new Date();
  let interrupted = false;
  let current: HeldConnections | null = null;
  const onSignal = (): void => {
    if (!interrupted) log("interrupted: stopping");
    interrupted = true;
    interruptMeasuring();
    interruptAll();
    void current?.stop();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);

  const tmp = mkdtempSync(path.join(os.tmpdir(), "sw-bench-watch-"));
  try {
    const host = await hostInfo();
    if (!opts.placeholder && opts.tools.includes("sockwarden")) Object.assign(host, await executableInfo(opts.watchCmdTemplate[0]!));
    const ticksPerS = clockTicks();
    // A stand-in command is run once, in the poll row; the real executable once per sensor.
    const sensors: Sensor[] = opts.placeholder ? ["poll"] : opts.sensors;
    const support: SensorSupport = opts.watchExe && opts.tools.includes("sockwarden")
      ? await probeSensors(opts.watchExe, "watch", sensors)
      : { sensorOption: false, resync: false, ebpfUnavailable: opts.placeholder ? "a --watch-cmd stand-in is measured" : null };
    const sensorNotes: string[] = [];
    if (!opts.placeholder) {
      if (sensors.includes("ebpf")) sensorNotes.push(resyncNote(support, opts.resync));
      if (support.ebpfUnavailable && sensors.includes("ebpf")) sensorNotes.push(`eBPF sensor unavailable: ${support.ebpfUnavailable}`);
      if (opts.cpuProf) sensorNotes.push(`PROFILED (--cpu-prof ${opts.cpuProf}): the watch rows' figures include the profiler's cost`);
      log(`sensors ${sensors.join(", ")}; ${sensorNotes.join("; ")}`);
    }
    // With eBPF and a resync period, the window spans a whole period: it holds one full snapshot.
    // The default period is 30 s, longer where a full dump costs over 1% of the time: 60-80 s at
    // 100k sockets (a dump of 0.6-0.8 s), still 30 s at 10k (~70 ms). Without a period asked for,
    // the window holds two default periods: 150 s from 50k sockets up, 60 s below.
    const defaultWindow = (sockets: number): number => (sockets >= 50_000 ? 150 : 60);
    const secondsFor = (sensor: Sensor, sockets: number): number =>
      sensor === "ebpf" && support.resync ? Math.max(opts.seconds, opts.resync ?? defaultWindow(sockets)) : opts.seconds;
    const wordsFor = (sensor: Sensor): string[] => (opts.placeholder ? [] : sensorArgs(sensor, support, opts.resync));
    const watchCmd = watchCommand(opts);
    const durationS = watchDuration(opts);
    const remainingMs = (): number => opts.deadline - Date.now();
    const measured = sensors.filter((x) => !(x === "ebpf" && support.ebpfUnavailable));
    // Rough time one size needs besides setting up the sockets.
    const perSizeMs = (sockets: number): number =>
      (opts.tools.includes("sockwarden") ? measured.reduce((a, x) => a + (x === "ebpf" ? 2 : 1) * (watchDuration({ warmup: opts.warmup, seconds: secondsFor(x, sockets) }) + 10) * 1000, 0) : 0) +
      (opts.tools.includes("ss") ? opts.seconds * 1000 + 2 * Math.min(opts.timeoutMs, 30_000) : 0);

    log(
      `namespace ${netnsName}; sockets ${opts.sockets.join(", ")}; window ${opts.seconds} s, warm-up ${opts.warmup} s, ` +
        `interval ${opts.interval} s`,
    );
    if (opts.tools.includes("sockwarden")) {
      log(`watch command: ${watchCmd.join(" ")}${opts.placeholder ? " (placeholder)" : ""}`);
    }

    const sizes: WatchSizeResult[] = [];
    for (const sockets of opts.sockets) {
      if (interrupted) break;
      const connections = Math.max(1, Math.round(sockets / 2));
      const size: WatchSizeResult = {
        sockets,
        connections,
        expectedSockets: null,
        seen: null,
        helperWorkers: null,
        helperSetupMs: null,
        hostOpenFiles: null,
        loadavg: null,
        watch: [],
        ss: null,
      };
      sizes.push(size);
      if (remainingMs() < perSizeMs(sockets) + 20_000) {
        size.error = "time budget (--max-minutes) used up";
        log(`${sockets} sockets: ${size.error}`);
        continue;
      }

      const leftover = await waitNoSockets(15_000);
      if (leftover.total > 0) log(`warning: ${leftover.total} TCP sockets still present before ${sockets} sockets`);

      let held: HeldConnections;
      try {
        log(`${sockets} sockets: opening ${connections} connections…`);
        held = await holdConnections(
          connections,
          Math.min(600, remainingMs() / 1000 + 30),
          Math.min(300_000, remainingMs() - perSizeMs(sockets)),
        );
      } catch (e) {
        size.error = e instanceof Error ? e.message : String(e);
        log(`${sockets} sockets: ${size.error}`);
        continue;
      }
      current = held;
      try {
        const facts = await heldFacts(held);
        Object.assign(size, facts);
        log(
          `${sockets} sockets: ready in ${(held.setupMs / 1000).toFixed(1)} s, ${held.workers} holder process(es); ` +
            `${facts.seen.total} TCP sockets in namespace (expected ${held.sockets}); ` +
            `host has ${size.hostOpenFiles ?? "?"} open files, load ${size.loadavg}`,
        );
        if (facts.seen.total !== held.sockets) log(`${sockets} sockets: warning: socket count differs from expected`);

        if (opts.tools.includes("sockwarden")) for (const sensor of sensors) {
          if (interrupted) break;
          if (sensor === "ebpf" && support.ebpfUnavailable) {
            size.watch.push({ sensor, events: null, side: null, unavailable: support.ebpfUnavailable, ratioShare: null, ratioPerRefresh: null });
            continue;
          }
          // With --ndjson, counters events are on by default and need a TCP dump every interval even
          // with the sensor: eBPF is measured as a user runs it, and again without them.
          for (const events of sensor === "ebpf" && !opts.placeholder ? [null, QUIET_EVENTS] : [null]) {
            if (interrupted) break;
            const seconds = secondsFor(sensor, sockets);
            const tag = `watch --sensor ${sensor}${events ? ` --events ${events}` : ""}`;
            log(`${sockets} sockets: ${tag}: ${opts.warmup} s warm-up, then ${seconds} s measured…`);
            const sw = await measureWatch({
              cmd: watchCommand(opts, [...wordsFor(sensor), ...(events ? ["--events", events] : [])], seconds),
              warmupS: opts.warmup,
              seconds,
              intervalS: opts.interval,
              durationS: watchDuration({ warmup: opts.warmup, seconds }),
              ticksPerS,
              env: cpuProfileEnv(opts.cpuProf, `${sockets}-${sensor}${events ? "-no-counters" : ""}`),
              log,
            });
            // Asked for eBPF but it fell back: what was measured is polling, not an eBPF figure.
            const fellBack = sensor === "ebpf" ? fallbackNote(sw.stderrHead) : null;
            if (fellBack) {
              sw.status = "failed";
              sw.error = `fell back to polling: eBPF sensor unavailable: ${fellBack}`;
            }
            size.watch.push({ sensor, events, side: sw, unavailable: null, ratioShare: null, ratioPerRefresh: null });
            log(
              `${sockets} sockets: ${tag}: ` +
                (sw.cpuSharePct !== null
                  ? `${sw.cpuSharePct.toFixed(2)}% of a core, ${sw.cpuMsPerRefresh?.toFixed(2)} ms per refresh`
                  : "no figures") +
                (sw.status === "failed" ? `; FAILED: ${sw.error}` : ""),
            );
          }
        }
        if (!held.alive() && !interrupted) size.error = "connection holder exited early";

        if (opts.tools.includes("ss") && !interrupted && !size.error) {
          log(`${sockets} sockets: ${SS_LABEL} once per ${opts.interval} s for ${opts.seconds} s…`);
          size.ss = await measureSsLoop({
            cmd: SS_CMD,
            seconds: opts.seconds,
            intervalS: opts.interval,
            timeoutMs: Math.min(opts.timeoutMs, Math.max(1_000, remainingMs() - 5_000)),
            rusageFile: path.join(tmp, "rusage"),
            log,
          });
          const ss = size.ss;
          log(
            `${sockets} sockets: ${SS_LABEL}: ` +
              (ss.status === "ok"
                ? `${ss.cpuSharePct?.toFixed(1)}% of a core, ${ss.cpuMsPerRun?.toFixed(1)} ms CPU and ` +
                  `${ss.medianWallMs?.toFixed(0)} ms wall per run (median), ${ss.runs.length} runs` +
                  (ss.overruns ? `, ${ss.overruns} overran` : "")
                : `${ss.status.toUpperCase()}: ${ss.error}`),
          );
        }
        if (!held.alive() && !interrupted) size.error ??= "connection holder exited early";
      } finally {
        await held.stop();
        current = null;
      }
      addWatchRatios(size);
      if (interrupted) size.error ??= "interrupted";
    }

    // Short-lived connections, with no idle sockets held: once per sensor.
    const short: ShortResult[] = [];
    if (opts.short > 0 && opts.watchExe && !opts.placeholder && opts.tools.includes("sockwarden")) {
      for (const sensor of sensors) {
        if (interrupted) break;
        if (sensor === "ebpf" && support.ebpfUnavailable) {
          short.push(emptyShort(sensor, opts.short, "skipped", `eBPF sensor unavailable: ${support.ebpfUnavailable}`));
          continue;
        }
        const need = shortPhaseEstimateMs({ connections: opts.short, intervalS: opts.interval });
        if (remainingMs() < need) {
          short.push(emptyShort(sensor, opts.short, "skipped", "time budget (--max-minutes) used up"));
          continue;
        }
        // The idle sockets of the last size go away with their holders, which can take a while at
        // 100k: wait for them, or the watch starts amid their closing. TIME_WAIT sockets of the
        // phase before may remain: they are not the burst's and are not counted.
        for (const end = performance.now() + 30_000; performance.now() < end && !interrupted; await Bun.sleep(200)) {
          const c = await countTcpSockets();
          if (c.established + c.listen === 0) break;
        }
        log(`short connections, --sensor ${sensor}: ${opts.short} connections of 1–5 ms…`);
        const r = await measureShort({ exe: opts.watchExe, sensor, sensorWords: wordsFor(sensor), connections: opts.short, intervalS: opts.interval, seed: 15, log });
        short.push(r);
        log(
          `short connections, --sensor ${sensor}: ` +
            (r.status === "ok" ? `${r.client.withProcess} of ${r.client.connections} reported with their process (${r.client.reported} reported at all)` : `${r.status.toUpperCase()}: ${r.error}`),
        );
      }
    }

    const report: WatchReport = {
      ...reportEnvelope("sockwarden-bench-watch", started, interrupted, netnsName, host),
      clockTicksPerSecond: ticksPerS,
      options: {
        sockets: opts.sockets,
        seconds: opts.seconds,
        warmup: opts.warmup,
        interval: opts.interval,
        watchDuration: durationS,
        timeoutMs: opts.timeoutMs,
        watchCmd,
        ssCmd: SS_CMD,
        placeholder: opts.placeholder,
        sensors,
        resync: opts.resync,
        short: opts.short,
      },
      sensorNotes,
      sizes,
      short,
      targets: [
        ...checkWatchTargets(opts.sockets, sizes, opts.interval, opts.placeholder, watchCmd.join(" ")),
        ...(opts.placeholder ? [] : checkEbpfTargets(opts.sockets, sizes, opts.interval, short, opts.short)),
      ],
    };
    process.stdout.write("\n" + watchTextTables(report) + "\n");
    if (interrupted) {
      process.stdout.write("(interrupted: partial results, nothing saved)\n");
      return 130;
    }
    if (opts.save && !saveLatest(opts.outDir, "watch", watchMarkdown(report), report, log)) return 1;
    return sizes.some((s) => s.error) || short.some((x) => x.status === "failed") ? 1 : 0;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
