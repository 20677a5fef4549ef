// Result model, the target checks and the text / Markdown tables of the watch suite.
import type { SocketCount } from "./helper.ts";
import type { TargetCheck, TargetStatus } from "./report.ts";
import type { SsSide, WatchSide } from "./watch-measure.ts";

export interface WatchSizeResult {
  /** Requested socket count; held as `connections` connections. */
  sockets: number;
  connections: number;
  /** 2 x connections plus the helper's listeners. */
  expectedSockets: number | null;
  seen: SocketCount | null;
  helperWorkers: number | null;
  helperSetupMs: number | null;
  hostOpenFiles: number | null;
  loadavg: string | null;
  error?: string;
  sockwarden: WatchSide | null;
  ss: SsSide | null;
  /** sockwarden's CPU share / the ss loop's. */
  ratioShare: number | null;
  /** sockwarden's CPU per refresh / ss's CPU per run. */
  ratioPerRefresh: number | null;
}

export interface WatchReport {
  kind: "sockwarden-bench-watch";
  version: 1;
  startedAt: string;
  finishedAt: string;
  interrupted: boolean;
  netns: string;
  host: Record<string, string | number | null>;
  clockTicksPerSecond: number;
  options: {
    sockets: number[];
    seconds: number;
    warmup: number;
    interval: number;
    watchDuration: number;
    timeoutMs: number;
    watchCmd: string[];
    ssCmd: string[];
    placeholder: boolean;
  };
  sizes: WatchSizeResult[];
  targets: TargetCheck[];
}

export const TARGET_SOCKETS = 100_000;
export const TARGET_SHARE_PCT = 5;
export const TARGET_RATIO = 0.1;
export const SS_LABEL = "ss -tanpi";

export function addWatchRatios(size: WatchSizeResult): void {
  const sw = size.sockwarden;
  const ss = size.ss;
  size.ratioShare = null;
  size.ratioPerRefresh = null;
  if (!sw || !ss || sw.cpuSharePct === null || ss.status !== "ok" || !ss.cpuSharePct || !ss.cpuMsPerRun) return;
  size.ratioShare = sw.cpuSharePct / ss.cpuSharePct;
  size.ratioPerRefresh = sw.cpuMsPerRefresh === null ? null : sw.cpuMsPerRefresh / ss.cpuMsPerRun;
}

/** The two target lines: CPU share under 5 % of a core, and under a tenth of the ss loop's. */
export function checkWatchTargets(
  requested: number[],
  sizes: WatchSizeResult[],
  intervalS: number,
  placeholder: boolean,
  placeholderCmd: string,
): TargetCheck[] {
  const at = `sockwarden watch at ${TARGET_SOCKETS / 1000}k sockets, 1 Hz`;
  const shareDesc = `${at}: CPU under ${TARGET_SHARE_PCT}% of one core`;
  const ratioDesc = `${at}: CPU under ${TARGET_RATIO}x that of running ${SS_LABEL} once per second`;
  const mk = (description: string, status: TargetStatus, detail: string): TargetCheck => ({
    description,
    status,
    detail:
      placeholder && status !== "not evaluated"
        ? `${detail} — placeholder command (${placeholderCmd}), not the real executable`
        : detail,
  });
  const both = (status: TargetStatus, detail: string): TargetCheck[] => [
    mk(shareDesc, status, detail),
    mk(ratioDesc, status, detail),
  ];

  if (intervalS !== 1) return both("not evaluated", `measured with --interval ${intervalS}, the targets are for 1 s`);
  const size = sizes.find((s) => s.sockets === TARGET_SOCKETS);
  if (!size) {
    return both(
      "not evaluated",
      requested.includes(TARGET_SOCKETS)
        ? `size ${TARGET_SOCKETS} was not reached (interrupted)`
        : `${TARGET_SOCKETS} is not among the sizes (--sockets)`,
    );
  }
  if (size.error) return both("not evaluated", `size ${TARGET_SOCKETS} could not be measured: ${size.error}`);
  const sw = size.sockwarden;
  if (!sw || sw.status === "skipped") {
    return both("not evaluated", `sockwarden not measured: ${sw?.error ?? "not in --tools"}`);
  }
  if (sw.cpuSharePct === null) return both("not met", `sockwarden failed: ${sw.error ?? "no figures"}`);
  const failedNote = sw.status === "failed" ? ` (but the command failed: ${sw.error ?? "?"})` : "";
  const shareOk = sw.cpuSharePct < TARGET_SHARE_PCT && sw.status === "ok";
  const out = [
    mk(
      shareDesc,
      shareOk ? "met" : "not met",
      `${fmtPct(sw.cpuSharePct)} of one core, ${fmtMs(sw.cpuMsPerRefresh)} ms per refresh${failedNote}`,
    ),
  ];
  const ss = size.ss;
  if (!ss || ss.status !== "ok" || size.ratioShare === null) {
    out.push(mk(ratioDesc, "not evaluated", `no ${SS_LABEL} loop baseline: ${ss?.error ?? "not in --tools"}`));
  } else {
    const ok = size.ratioShare < TARGET_RATIO && sw.status === "ok";
    out.push(
      mk(
        ratioDesc,
        ok ? "met" : "not met",
        `${fmtPct(sw.cpuSharePct)} vs ${fmtPct(ss.cpuSharePct)} = ${fmtRatio(size.ratioShare)}` +
          ` (per refresh ${fmtMs(sw.cpuMsPerRefresh)} ms vs ${fmtMs(ss.cpuMsPerRun)} ms per ss run = ${fmtRatio(size.ratioPerRefresh)})` +
          (ss.overruns > 0
            ? `; ss could not keep up (${ss.overruns} of ${ss.runs.length} runs over ${intervalS} s), so its loop is capped near one core`
            : "") +
          failedNote,
      ),
    );
  }
  return out;
}

// ---------------------------------------------------------------- formatting

function fmtMs(x: number | null): string {
  if (x === null) return "-";
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function fmtPct(x: number | null): string {
  if (x === null) return "-";
  return x >= 10 ? `${x.toFixed(1)}%` : `${x.toFixed(2)}%`;
}

function fmtRatio(x: number | null): string {
  if (x === null) return "-";
  return x >= 0.1 ? `${x.toFixed(2)}x` : `${x.toFixed(3)}x`;
}

function fmtMiB(x: number | null): string {
  return x === null ? "-" : x.toFixed(1);
}

const HEADERS = [
  "tool",
  "CPU % of a core",
  "CPU ms / refresh",
  "refreshes",
  "wall ms / ss run",
  "peak RSS MiB",
  "vs ss loop",
  "vs ss run",
  "note",
];
const RIGHT = new Set([1, 2, 3, 4, 5, 6, 7]);

export function watchLabel(report: WatchReport): string {
  return report.options.placeholder ? "stand-in (--watch-cmd)" : "sockwarden watch";
}

function sizeHeading(size: WatchSizeResult): string {
  const parts = [`${size.sockets} sockets: ${size.connections} idle loopback connections`];
  if (size.seen) {
    parts.push(
      `${size.seen.total} TCP sockets in the namespace (${size.seen.established} established, ${size.seen.listen} listening)`,
    );
  }
  if (size.helperWorkers !== null && size.helperSetupMs !== null) {
    parts.push(`${size.helperWorkers} holder process(es), set up in ${(size.helperSetupMs / 1000).toFixed(1)} s`);
  }
  if (size.hostOpenFiles !== null) parts.push(`host: ${size.hostOpenFiles} open files, load ${size.loadavg ?? "?"}`);
  return parts.join("; ");
}

function rows(report: WatchReport, size: WatchSizeResult): string[][] {
  const out: string[][] = [];
  const sw = size.sockwarden;
  if (sw) {
    const notes: string[] = [];
    if (sw.status === "failed") notes.push(`FAILED: ${sw.error ?? "unknown error"}`);
    if (sw.status === "skipped") notes.push(`not measured: ${sw.error ?? size.error ?? "not run"}`);
    if (report.options.placeholder) notes.push("placeholder command");
    if (sw.warmupCpuS !== null) notes.push(`start-up + warm-up CPU ${(sw.warmupCpuS * 1000).toFixed(0)} ms`);
    if (sw.stdoutLines !== null && sw.status !== "skipped") notes.push(`${sw.stdoutLines} output lines`);
    if (sw.otherLoadCores !== null) notes.push(`rest of host busy ${sw.otherLoadCores.toFixed(2)} CPUs`);
    notes.push(...sw.notes);
    out.push([
      watchLabel(report),
      fmtPct(sw.cpuSharePct),
      fmtMs(sw.cpuMsPerRefresh),
      sw.refreshes === null ? "-" : sw.refreshes.toFixed(1),
      "-",
      fmtMiB(sw.peakRssMiB),
      fmtRatio(size.ratioShare),
      fmtRatio(size.ratioPerRefresh),
      notes.join("; "),
    ]);
  }
  const ss = size.ss;
  if (ss) {
    const notes: string[] = [];
    if (ss.status === "failed") notes.push(`FAILED: ${ss.error ?? "unknown error"}`);
    if (ss.status === "skipped") notes.push(`not measured: ${ss.error ?? size.error ?? "not run"}`);
    if (ss.maxWallMs !== null) notes.push(`max ${fmtMs(ss.maxWallMs)} ms`);
    if (ss.windowS !== null) notes.push(`over ${ss.windowS.toFixed(1)} s`);
    if (ss.otherLoadCores !== null) notes.push(`rest of host busy ${ss.otherLoadCores.toFixed(2)} CPUs`);
    notes.push(...ss.notes);
    out.push([
      SS_LABEL,
      fmtPct(ss.cpuSharePct),
      fmtMs(ss.cpuMsPerRun),
      ss.status === "ok" ? String(ss.runs.length) : "-",
      fmtMs(ss.medianWallMs),
      fmtMiB(ss.peakRssMiB),
      ss.status === "ok" ? "1.00x" : "-",
      ss.status === "ok" ? "1.00x" : "-",
      notes.join("; "),
    ]);
  }
  return out;
}

function textTableFor(body: string[][]): string {
  const all = [HEADERS, ...body];
  const last = HEADERS.length - 1;
  const widths = HEADERS.map((_, i) => Math.max(...all.map((r) => (i === last ? 0 : r[i]!.length))));
  const line = (r: string[]): string =>
    r
      .map((cell, i) => (i === last ? cell : RIGHT.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(HEADERS), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/** What ran, in two lines. */
function commandLines(report: WatchReport): string[] {
  const o = report.options;
  return [
    `${watchLabel(report)}: ${o.watchCmd.join(" ")} (CPU sampled ${o.warmup} s after start and ${o.seconds} s later)`,
    `${SS_LABEL}: ${o.ssCmd.join(" ")} > /dev/null every ${o.interval} s for ${o.seconds} s (after one warm-up run)`,
  ];
}

export function watchTextTables(report: WatchReport): string {
  const parts: string[] = [...commandLines(report), ""];
  for (const size of report.sizes) {
    parts.push(sizeHeading(size));
    if (size.error && !size.sockwarden?.cpuS && size.ss?.status !== "ok") {
      parts.push(`  size failed: ${size.error}`);
    } else {
      if (size.error) parts.push(`  cut short: ${size.error}`);
      parts.push(textTableFor(rows(report, size)));
    }
    parts.push("");
  }
  parts.push(...report.targets.map(watchTargetLine));
  return parts.join("\n");
}

export function watchTargetLine(t: TargetCheck): string {
  return `Target: ${t.description}\n  => ${t.status.toUpperCase()}: ${t.detail}`;
}

function mdCell(s: string): string {
  return s.replace(/\|/g, "\\|");
}

export function watchMarkdown(report: WatchReport): string {
  const o = report.options;
  const h = report.host;
  const L: string[] = [];
  L.push(`# sockwarden watch benchmark — ${report.startedAt}`);
  L.push("");
  L.push(
    `Host: ${h.cpu ?? "?"} (${h.cpus ?? "?"} CPUs), kernel ${h.kernel ?? "?"}, load ${h.loadavg ?? "?"}; ` +
      `${h.ss ?? "ss ?"}; bun ${h.bun ?? "?"}.` +
      (h.sockwardenBuilt !== undefined
        ? ` sockwarden ${h.sockwarden ?? "(version unknown)"}, executable written ${h.sockwardenBuilt ?? "?"}.`
        : ""),
  );
  L.push("");
  L.push(
    `Idle loopback TCP sockets held in a private network namespace. Each side is measured alone over a ` +
      `${o.seconds} s window, refreshing every ${o.interval} s. ` +
      `**watch**: \`${o.watchCmd.join(" ")}\`${o.placeholder ? " (placeholder)" : ""}, CPU = utime+stime (plus reaped ` +
      `children) from /proc/PID/stat, sampled ${o.warmup} s after start and at the end of the window ` +
      `(${report.clockTicksPerSecond} ticks/s); refreshes = window / interval; peak RSS = VmHWM at the end. ` +
      `**ss**: \`${o.ssCmd.join(" ")} > /dev/null\` started on a ${o.interval} s grid (at once when the previous run overran), ` +
      `CPU = sum of each run's own rusage; the window runs until the last run ends; peak RSS from one warm-up run ` +
      `under /usr/bin/time. CPU % is CPU seconds / window seconds (100% = one core). ` +
      `"vs ss loop" is sockwarden's CPU share divided by the ss loop's (when ss cannot keep up, its loop is ` +
      `capped near one core), "vs ss run" its CPU per refresh divided by ss's CPU per run.`,
  );
  if (report.interrupted) {
    L.push("");
    L.push("**Interrupted: partial results.**");
  }
  for (const size of report.sizes) {
    L.push("");
    L.push(`## ${size.sockets / 1000}k sockets`);
    L.push("");
    L.push(sizeHeading(size) + ".");
    L.push("");
    if (size.error && !size.sockwarden?.cpuS && size.ss?.status !== "ok") {
      L.push(`Size failed: ${size.error}`);
      continue;
    }
    if (size.error) {
      L.push(`Cut short: ${size.error}`);
      L.push("");
    }
    L.push(`| ${HEADERS.join(" | ")} |`);
    L.push(`|${HEADERS.map((_, i) => (RIGHT.has(i) ? "---:" : "---")).join("|")}|`);
    for (const r of rows(report, size)) L.push(`| ${r.map(mdCell).join(" | ")} |`);
  }
  L.push("");
  for (const t of report.targets) {
    L.push(`- Target: ${t.description} — **${t.status.toUpperCase()}** (${t.detail})`);
  }
  L.push("");
  return L.join("\n");
}
