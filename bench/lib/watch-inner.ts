// The measuring half of the watch suite: runs inside the benchmark's network namespace (entered
// with nsenter by bench/watch.ts), holds the idle sockets and measures each side in turn.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { countTcpSockets, holdConnections, waitNoSockets, type HeldConnections } from "./helper.ts";
import { hostInfo, hostOpenFiles, saveReport } from "./host.ts";
import { inNetns } from "./netns.ts";
import { firstLine, run } from "./proc.ts";
import { clockTicks, interruptMeasuring, measureSsLoop, measureWatch } from "./watch-measure.ts";
import { watchCommand, watchDuration, type WatchOptions } from "./watch-options.ts";
import {
  addWatchRatios,
  checkWatchTargets,
  SS_LABEL,
  watchMarkdown,
  watchTextTables,
  type WatchReport,
  type WatchSizeResult,
} from "./watch-report.ts";

const log = (msg: string): void => {
  process.stderr.write(`[bench:watch] ${msg}\n`);
};

export const SS_CMD = ["ss", "-tanpi"];

/** Which build was measured: its --version and when the file was written. */
async function executableInfo(exe: string): Promise<Record<string, string | null>> {
  const r = await run([exe, "--version"], 10_000);
  let built: string | null = null;
  try {
    built = statSync(exe).mtime.toISOString();
  } catch {
    // reported as unknown
  }
  return { sockwarden: r.ok ? firstLine(r.stdout) || null : null, sockwardenBuilt: built };
}

export async function runWatchInner(opts: WatchOptions, netnsName: string): Promise<number> {
  if (!inNetns(netnsName)) {
    log("--inner must run inside the benchmark's network namespace (start bench/watch.ts without --inner)");
    return 2;
  }
  const started = new Date();
  let interrupted = false;
  let current: HeldConnections | null = null;
  const onSignal = (): void => {
    if (!interrupted) log("interrupted: stopping");
    interrupted = true;
    interruptMeasuring();
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
    const watchCmd = watchCommand(opts);
    const durationS = watchDuration(opts);
    const remainingMs = (): number => opts.deadline - Date.now();
    // Rough time one size needs besides setting up the sockets.
    const perSizeMs =
      (opts.tools.includes("sockwarden") ? (durationS + 10) * 1000 : 0) +
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
        sockwarden: null,
        ss: null,
        ratioShare: null,
        ratioPerRefresh: null,
      };
      sizes.push(size);
      if (remainingMs() < perSizeMs + 20_000) {
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
          Math.min(300_000, remainingMs() - perSizeMs),
        );
      } catch (e) {
        size.error = e instanceof Error ? e.message : String(e);
        log(`${sockets} sockets: ${size.error}`);
        continue;
      }
      current = held;
      try {
        size.expectedSockets = held.sockets;
        size.helperWorkers = held.workers;
        size.helperSetupMs = held.setupMs;
        size.seen = await countTcpSockets();
        size.hostOpenFiles = await hostOpenFiles();
        size.loadavg = os.loadavg().map((x) => x.toFixed(2)).join(" ");
        log(
          `${sockets} sockets: ready in ${(held.setupMs / 1000).toFixed(1)} s, ${held.workers} holder process(es); ` +
            `${size.seen.total} TCP sockets in namespace (expected ${held.sockets}); ` +
            `host has ${size.hostOpenFiles ?? "?"} open files, load ${size.loadavg}`,
        );
        if (size.seen.total !== held.sockets) log(`${sockets} sockets: warning: socket count differs from expected`);

        if (opts.tools.includes("sockwarden") && !interrupted) {
          log(`${sockets} sockets: watch: ${opts.warmup} s warm-up, then ${opts.seconds} s measured…`);
          size.sockwarden = await measureWatch({
            cmd: watchCmd,
            warmupS: opts.warmup,
            seconds: opts.seconds,
            intervalS: opts.interval,
            durationS,
            ticksPerS,
            log,
          });
          const sw = size.sockwarden;
          log(
            `${sockets} sockets: watch: ` +
              (sw.cpuSharePct !== null
                ? `${sw.cpuSharePct.toFixed(2)}% of a core, ${sw.cpuMsPerRefresh?.toFixed(2)} ms per refresh`
                : "no figures") +
              (sw.status === "failed" ? `; FAILED: ${sw.error}` : ""),
          );
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

    const report: WatchReport = {
      kind: "sockwarden-bench-watch",
      version: 1,
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      interrupted,
      netns: netnsName,
      host,
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
      },
      sizes,
      targets: checkWatchTargets(opts.sockets, sizes, opts.interval, opts.placeholder, watchCmd.join(" ")),
    };
    process.stdout.write("\n" + watchTextTables(report) + "\n");
    if (interrupted) {
      process.stdout.write("(interrupted: partial results, nothing saved)\n");
      return 130;
    }
    if (opts.save && !saveReport(opts.outDir, "watch", started, watchMarkdown(report), report, log)) return 1;
    return sizes.some((s) => s.error) ? 1 : 0;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
