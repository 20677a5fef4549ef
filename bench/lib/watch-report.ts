// Result model, the target checks and the text / Markdown tables of the watch suite.
import { mdCell, mdTable, reportHeading, targetText, type ReportEnvelope } from "./report-kit.ts";
import type { SocketCount } from "./helper.ts";
import type { TargetCheck, TargetStatus } from "./report.ts";
import type { SsSide, WatchSide } from "./watch-measure.ts";
import type { Sensor } from "./sensors.ts";
import { SHORT_MODES, BEACON_NAME, type ShortResult } from "./watch-short.ts";

/** One sockwarden watch row of a size: one sensor. */
export interface WatchRow {
  sensor: Sensor;
  /** `--events` given to this row (no counters events: no TCP dump between resyncs), or null for the default. */
  events: string | null;
  /** null when not run (see unavailable). */
  side: WatchSide | null;
  /** Why this sensor was not measured (the eBPF sensor unavailable here). */
  unavailable: string | null;
  /** Its CPU share / the ss loop's. */
  ratioShare: number | null;
  /** Its CPU per refresh / ss's CPU per run. */
  ratioPerRefresh: number | null;
}

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
  /** sockwarden watch, one row per sensor. */
  watch: WatchRow[];
  ss: SsSide | null;
}

export interface WatchReport extends ReportEnvelope<"sockwarden-bench-watch"> {
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
    sensors: Sensor[];
    resync: number | null;
    short: number;
  };
  /** How the sensors were run and why one could not be. */
  sensorNotes: string[];
  sizes: WatchSizeResult[];
  /** The short-connection phase, one per sensor. */
  short: ShortResult[];
  targets: TargetCheck[];
}

export const TARGET_SOCKETS = 100_000;
export const TARGET_SHARE_PCT = 5;
export const TARGET_RATIO = 0.1;
/** With the eBPF sensor (issue 15): under this share of a core at 100k idle sockets. */
export const TARGET_EBPF_SHARE_PCT = 2;
export const SS_LABEL = "ss -tanpi";

export function addWatchRatios(size: WatchSizeResult): void {
  const ss = size.ss;
  for (const row of size.watch) {
    const sw = row.side;
    row.ratioShare = null;
    row.ratioPerRefresh = null;
    if (!sw || !ss || sw.cpuSharePct === null || ss.status !== "ok" || !ss.cpuSharePct || !ss.cpuMsPerRun) continue;
    row.ratioShare = sw.cpuSharePct / ss.cpuSharePct;
    row.ratioPerRefresh = sw.cpuMsPerRefresh === null ? null : sw.cpuMsPerRefresh / ss.cpuMsPerRun;
  }
}

const row = (size: WatchSizeResult, sensor: Sensor): WatchRow | undefined => size.watch.find((r) => r.sensor === sensor && r.events === null);

/** The two target lines: CPU share under 5 % of a core, and under a tenth of the ss loop's. */
export function checkWatchTargets(
  requested: number[],
  sizes: WatchSizeResult[],
  intervalS: number,
  placeholder: boolean,
  placeholderCmd: string,
): TargetCheck[] {
  const at = `sockwarden watch${placeholder ? "" : " --sensor poll"} at ${TARGET_SOCKETS / 1000}k sockets, 1 Hz`;
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
  const pollRow = row(size, "poll");
  const sw = pollRow?.side ?? null;
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
  const ratioShare = pollRow?.ratioShare ?? null;
  if (!ss || ss.status !== "ok" || ratioShare === null) {
    out.push(mk(ratioDesc, "not evaluated", `no ${SS_LABEL} loop baseline: ${ss?.error ?? "not in --tools"}`));
  } else {
    const ok = ratioShare < TARGET_RATIO && sw.status === "ok";
    out.push(
      mk(
        ratioDesc,
        ok ? "met" : "not met",
        `${fmtPct(sw.cpuSharePct)} vs ${fmtPct(ss.cpuSharePct)} = ${fmtRatio(ratioShare)}` +
          ` (per refresh ${fmtMs(sw.cpuMsPerRefresh)} ms vs ${fmtMs(ss.cpuMsPerRun)} ms per ss run = ${fmtRatio(pollRow?.ratioPerRefresh ?? null)})` +
          (ss.overruns > 0
            ? `; ss could not keep up (${ss.overruns} of ${ss.runs.length} runs over ${intervalS} s), so its loop is capped near one core`
            : "") +
          failedNote,
      ),
    );
  }
  return out;
}

/**
 * The eBPF sensor's targets (issue 15): watch under 2 % of a core at 100k idle sockets, and every
 * short-lived connection reported with its process by plain `watch --ndjson`.
 */
export function checkEbpfTargets(requested: number[], sizes: WatchSizeResult[], intervalS: number, short: ShortResult[], shortRequested: number): TargetCheck[] {
  const out: TargetCheck[] = [];
  const cpuDesc = `sockwarden watch --sensor ebpf at ${TARGET_SOCKETS / 1000}k idle sockets, 1 Hz: CPU under ${TARGET_EBPF_SHARE_PCT}% of one core`;
  const size = sizes.find((s) => s.sockets === TARGET_SOCKETS);
  const r = size ? row(size, "ebpf") : undefined;
  const poll = size ? row(size, "poll")?.side : null;
  const quiet = size?.watch.find((x) => x.sensor === "ebpf" && x.events !== null);
  if (intervalS !== 1) out.push({ description: cpuDesc, status: "not evaluated", detail: `measured with --interval ${intervalS}, the target is for 1 s` });
  else if (!size) out.push({ description: cpuDesc, status: "not evaluated", detail: requested.includes(TARGET_SOCKETS) ? "size not reached (interrupted)" : `${TARGET_SOCKETS} is not among the sizes (--sockets)` });
  else if (!r) out.push({ description: cpuDesc, status: "not evaluated", detail: "ebpf not among --sensors" });
  else if (r.unavailable) out.push({ description: cpuDesc, status: "not evaluated", detail: `eBPF sensor unavailable: ${r.unavailable}` });
  else if (!r.side || r.side.cpuSharePct === null) out.push({ description: cpuDesc, status: r.side?.status === "skipped" ? "not evaluated" : "not met", detail: `not measured: ${r.side?.error ?? size.error ?? "?"}` });
  else {
    const sw = r.side;
    const ok = sw.cpuSharePct! < TARGET_EBPF_SHARE_PCT && sw.status === "ok";
    out.push({
      description: cpuDesc,
      status: ok ? "met" : "not met",
      detail:
        `${fmtPct(sw.cpuSharePct)} of one core = ${fmtRatio(sw.cpuSharePct! / TARGET_EBPF_SHARE_PCT)} of the target over ${sw.windowS?.toFixed(0)} s` +
        (poll?.cpuSharePct ? `; polling ${fmtPct(poll.cpuSharePct)}, so ebpf/poll = ${fmtRatio(sw.cpuSharePct! / poll.cpuSharePct)}` : "") +
        (quiet?.side?.cpuSharePct != null ? `; without counters events (--events ${quiet.events}) ${fmtPct(quiet.side.cpuSharePct)}` : "") +
        (sw.status === "failed" ? ` (but the command failed: ${sw.error ?? "?"})` : ""),
    });
  }
  const shortDesc = `plain watch --ndjson --sensor ebpf: every short-lived connection (1–5 ms, from a process that lives on) reported with its process`;
  const e = short.find((x) => x.sensor === "ebpf");
  const p = short.find((x) => x.sensor === "poll");
  if (shortRequested === 0) out.push({ description: shortDesc, status: "not evaluated", detail: "--short 0" });
  else if (!e) out.push({ description: shortDesc, status: "not evaluated", detail: "ebpf not among --sensors (or interrupted)" });
  else if (e.status !== "ok" || e.share === null) out.push({ description: shortDesc, status: e.status === "skipped" ? "not evaluated" : "not met", detail: e.error ?? "no figures" });
  else {
    out.push({
      description: shortDesc,
      status: e.client.withProcess === e.client.connections ? "met" : "not met",
      detail:
        `${e.client.withProcess} of ${e.client.connections} = ${fmtShare(e.share)}` +
        (p && p.status === "ok" && p.share !== null ? `; polling ${p.client.withProcess} of ${p.client.connections} = ${fmtShare(p.share)}` : ""),
    });
  }
  return out;
}

// ---------------------------------------------------------------- formatting

function fmtShare(x: number | null): string {
  return x === null ? "-" : `${(x * 100).toFixed(x === 1 || x === 0 ? 0 : 1)}%`;
}

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
  "vs poll",
  "vs target",
  "note",
];
const RIGHT = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9]);

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
  const pollShare = row(size, "poll")?.side?.cpuSharePct ?? null;
  for (const r of size.watch) {
    const label = report.options.placeholder ? watchLabel(report) : `${watchLabel(report)} --sensor ${r.sensor}${r.events ? ` --events ${r.events}` : ""}`;
    const target = r.sensor === "ebpf" ? TARGET_EBPF_SHARE_PCT : TARGET_SHARE_PCT;
    if (r.unavailable || !r.side) {
      out.push([label, "-", "-", "-", "-", "-", "-", "-", "-", "-", r.unavailable ? `not measured: eBPF sensor unavailable: ${r.unavailable}` : `not measured: ${size.error ?? "not run"}`]);
      continue;
    }
    const sw = r.side;
    const notes: string[] = [];
    if (sw.status === "failed") notes.push(`FAILED: ${sw.error ?? "unknown error"}`);
    if (sw.status === "skipped") notes.push(`not measured: ${sw.error ?? size.error ?? "not run"}`);
    if (report.options.placeholder) notes.push("placeholder command");
    if (sw.warmupCpuS !== null) notes.push(`start-up + warm-up CPU ${(sw.warmupCpuS * 1000).toFixed(0)} ms`);
    if (sw.stdoutLines !== null && sw.status !== "skipped") notes.push(`${sw.stdoutLines} output lines`);
    if (sw.otherLoadCores !== null) notes.push(`rest of host busy ${sw.otherLoadCores.toFixed(2)} CPUs`);
    notes.push(...sw.notes);
    if (sw.windowS !== null && Math.abs(sw.windowS - report.options.seconds) > 1) notes.push(`window ${sw.windowS.toFixed(0)} s`);
    out.push([
      label,
      fmtPct(sw.cpuSharePct),
      fmtMs(sw.cpuMsPerRefresh),
      sw.refreshes === null ? "-" : sw.refreshes.toFixed(1),
      "-",
      fmtMiB(sw.peakRssMiB),
      fmtRatio(r.ratioShare),
      fmtRatio(r.ratioPerRefresh),
      sw.cpuSharePct !== null && pollShare ? fmtRatio(sw.cpuSharePct / pollShare) : "-",
      sw.cpuSharePct !== null && !report.options.placeholder ? `${fmtRatio(sw.cpuSharePct / target)} of <${target}%` : "-",
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
      "-",
      "-",
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
    `${watchLabel(report)}: ${o.watchCmd.join(" ")}${o.placeholder ? "" : " --sensor S"} (CPU sampled ${o.warmup} s after start and ${o.seconds} s later` +
      `${o.placeholder || !o.sensors.includes("ebpf") ? "" : "; with ebpf, at least one resync period later"})`,
    `${SS_LABEL}: ${o.ssCmd.join(" ")} > /dev/null every ${o.interval} s for ${o.seconds} s (after one warm-up run)`,
  ];
}

export function watchTextTables(report: WatchReport): string {
  const parts: string[] = [...commandLines(report), ""];
  for (const size of report.sizes) {
    parts.push(sizeHeading(size));
    if (size.error && !size.watch.some((r) => r.side?.cpuS) && size.ss?.status !== "ok") {
      parts.push(`  size failed: ${size.error}`);
    } else {
      if (size.error) parts.push(`  cut short: ${size.error}`);
      parts.push(textTableFor(rows(report, size)));
    }
    parts.push("");
  }
  if (report.short.length) {
    parts.push(shortHeading(report) + ":");
    const t = shortTable(report.short);
    parts.push(textTable(t.headers, t.body));
    for (const x of report.short) if (x.cmd.length) parts.push(`  ${x.sensor}: ${x.cmd.join(" ")}`);
    parts.push("");
  }
  for (const n of report.sensorNotes) parts.push(`Sensors: ${n}`);
  parts.push(...report.targets.map(watchTargetLine));
  return parts.join("\n");
}

function shortHeading(report: WatchReport): string {
  return (
    `Short-lived connections: plain \`watch --ndjson\` (no -a) while a process named ${BEACON_NAME} makes ${report.options.short} ` +
    `connections to 127.0.0.1, each open 1–5 ms, closed in turn normally, with a reset, or by the peer; it lives on afterwards. ` +
    `"with process" = some event of the client socket names ${BEACON_NAME} and its PID`
  );
}

const SHORT_HEADERS = ["sensor", "connections", "reported", "with process", "share", "vs target", "vs poll", ...SHORT_MODES.map((m) => `${m}: with process`), "accepted side: reported / with process", "note"];

function shortTable(list: ShortResult[]): { headers: string[]; body: string[][] } {
  const poll = list.find((x) => x.sensor === "poll" && x.status === "ok");
  const body = list.map((x) => {
    if (x.status !== "ok") {
      return [x.sensor, "-", "-", "-", "-", "-", "-", ...SHORT_MODES.map(() => "-"), "-", `${x.status === "skipped" ? "not measured" : "FAILED"}: ${x.error ?? "?"}`];
    }
    const notes = [...x.notes];
    if (x.burstMs !== null) notes.push(`burst ${(x.burstMs / 1000).toFixed(1)} s`);
    if (x.holdMs) notes.push(`open ${x.holdMs.min.toFixed(1)}–${x.holdMs.max.toFixed(1)} ms`);
    notes.push(`${x.events} events`);
    return [
      x.sensor,
      String(x.client.connections),
      String(x.client.reported),
      String(x.client.withProcess),
      fmtShare(x.share),
      x.share === null ? "-" : `${fmtRatio(x.share)} of 100%`,
      x.sensor === "poll" || !poll?.share ? (x.sensor === "poll" ? "1.00x" : poll ? "∞ (poll 0)" : "-") : fmtRatio((x.share ?? 0) / poll.share),
      ...SHORT_MODES.map((m) => `${x.byMode[m].withProcess}/${x.byMode[m].connections}`),
      `${x.accepted.reported} / ${x.accepted.withProcess}`,
      notes.join("; "),
    ];
  });
  return { headers: SHORT_HEADERS, body };
}

function textTable(headers: string[], body: string[][]): string {
  const all = [headers, ...body];
  const last = headers.length - 1;
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (i === last ? 0 : r[i]!.length))));
  const line = (r: string[]): string => r.map((cell, i) => (i === last ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

export function watchTargetLine(t: TargetCheck): string {
  return targetText(t);
}


export function watchMarkdown(report: WatchReport): string {
  const o = report.options;
  const h = report.host;
  const L: string[] = reportHeading("watch", report.startedAt);
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
      `capped near one core), "vs ss run" its CPU per refresh divided by ss's CPU per run, "vs poll" a row's CPU share ` +
      `over the --sensor poll row's, "vs target" over its target (${TARGET_SHARE_PCT}% polling, ${TARGET_EBPF_SHARE_PCT}% with eBPF). ` +
      `Each sensor runs on its own; with eBPF the window spans at least one resync period, so its share includes a full snapshot's cost.`,
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
    if (size.error && !size.watch.some((r) => r.side?.cpuS) && size.ss?.status !== "ok") {
      L.push(`Size failed: ${size.error}`);
      continue;
    }
    if (size.error) {
      L.push(`Cut short: ${size.error}`);
      L.push("");
    }
    L.push(...mdTable(HEADERS, RIGHT, rows(report, size)));
  }
  if (report.short.length) {
    L.push("", "## Short-lived connections", "", shortHeading(report) + ". The watch's readiness and its catching up are shown by held connections (one opened before the burst, one after it, then two refreshes), not by sleeping.", "");
    const t = shortTable(report.short);
    L.push(`| ${t.headers.join(" | ")} |`, `|${t.headers.map(() => "---").join("|")}|`);
    for (const r of t.body) L.push(`| ${r.map(mdCell).join(" | ")} |`);
    for (const x of report.short) if (x.cmd.length) L.push("", `- ${x.sensor}: \`${x.cmd.join(" ")}\``);
  }
  if (report.sensorNotes.length) L.push("", ...report.sensorNotes.map((n) => `- Sensors: ${mdCell(n)}`));
  L.push("");
  for (const t of report.targets) {
    L.push(`- Target: ${t.description} — **${t.status.toUpperCase()}** (${t.detail})`);
  }
  L.push("");
  return L.join("\n");
}
