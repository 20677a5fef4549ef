// Result model, target checks and the text / Markdown report of the daemon suite.
import type { TargetCheck, TargetStatus } from "./report.ts";
import { LATENCY_SLACK_MS, VICTIM_NAME, type LatencyResult, type Percentiles } from "./daemon-latency.ts";
import { CPU_WINDOW_S, type SteadyResult } from "./daemon-steady.ts";
import type { DaemonPhase } from "./daemon-options.ts";

export interface DaemonReport {
  kind: "sockwarden-bench-daemon";
  version: 1;
  startedAt: string;
  finishedAt: string;
  interrupted: boolean;
  netns: string;
  host: Record<string, string | number | null>;
  clockTicksPerSecond: number;
  invocation: string;
  options: {
    phases: DaemonPhase[];
    intervals: number[];
    samples: number;
    sockets: number;
    churnRate: number;
    churnClose: string;
    seconds: number;
    warmup: number;
    steadyInterval: number;
    seed: number;
    sockwarden: string;
  };
  latency: LatencyResult[];
  steady: SteadyResult | null;
  targets: TargetCheck[];
}

export const TARGET_CPU_PCT = 10;
/** "100 MB": 10^8 bytes. */
export const TARGET_RSS_BYTES = 100e6;
export const TARGET_SOCKETS = 10_000;
export const TARGET_CHURN = 500;

// ---------------------------------------------------------------- formatting

export function fmtMs(x: number | null | undefined): string {
  if (x === null || x === undefined) return "-";
  if (!Number.isFinite(x)) return "∞";
  return Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function fmtPct(x: number | null | undefined): string {
  if (x === null || x === undefined) return "-";
  return x >= 10 ? `${x.toFixed(1)}%` : `${x.toFixed(2)}%`;
}

function fmtMiB(x: number | null | undefined): string {
  return x === null || x === undefined ? "-" : x.toFixed(1);
}

const MB_PER_MIB = 1.048576;

// ---------------------------------------------------------------- targets

export function checkDaemonTargets(report: Omit<DaemonReport, "targets">, requestedIntervals: number[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const mk = (description: string, status: TargetStatus, detail: string): void => {
    out.push({ description, status, detail });
  };
  if (report.options.phases.includes("latency")) {
    for (const i of requestedIntervals) {
      const limit = i * 1000 + LATENCY_SLACK_MS;
      const desc = `smtp-guard detect-to-close latency at interval ${i} s: p99 <= ${fmtMs(limit)} ms (one interval + ${LATENCY_SLACK_MS} ms)`;
      const l = report.latency.find((x) => x.intervalS === i);
      if (!l || l.status === "skipped") {
        mk(desc, "not evaluated", l?.error ?? "not measured (interrupted)");
        continue;
      }
      if (l.status === "failed" && l.samples.length === 0) {
        mk(desc, "not met", `failed: ${l.error ?? "no samples"}`);
        continue;
      }
      const p99 = l.victim.p99;
      const ok = p99 !== null && p99 <= limit && l.status === "ok";
      mk(
        desc,
        ok ? "met" : "not met",
        `p99 ${fmtMs(p99)} ms over ${l.samples.length} samples (median ${fmtMs(l.victim.median)}, max ${fmtMs(l.victim.max)} ms` +
          `${l.missed ? `, ${l.missed} not closed` : ""})${l.status === "failed" ? `; run failed: ${l.error}` : ""}`,
      );
    }
  }
  if (report.options.phases.includes("steady")) {
    const at = `sockwarden run with all bundled plugins, ${TARGET_SOCKETS / 1000}k sockets + ${TARGET_CHURN} new connections/s, interval 1 s`;
    const cpuDesc = `${at}: CPU under ${TARGET_CPU_PCT}% of one core`;
    const rssDesc = `${at}: RSS under 100 MB`;
    const s = report.steady;
    const both = (status: TargetStatus, detail: string): void => {
      mk(cpuDesc, status, detail);
      mk(rssDesc, status, detail);
    };
    if (!s || s.status === "skipped") both("not evaluated", s?.error ?? "not measured (interrupted)");
    else if (s.intervalS !== 1) both("not evaluated", `measured at --steady-interval ${s.intervalS}, the targets are for 1 s`);
    else if (s.cpu.meanPct === null) both("not met", `failed: ${s.error ?? "no figures"}`);
    else {
      const caveats: string[] = [];
      if (s.sockets !== TARGET_SOCKETS) caveats.push(`measured with ${s.sockets} sockets, not ${TARGET_SOCKETS}`);
      if (s.churn.rate !== TARGET_CHURN) caveats.push(`measured at ${s.churn.rate} connections/s, not ${TARGET_CHURN}`);
      if (s.status === "failed") caveats.push(`run failed: ${s.error}`);
      const status = (ok: boolean): TargetStatus => (caveats.length && ok ? "not evaluated" : ok ? "met" : "not met");
      const tail = caveats.length ? `; ${caveats.join("; ")}` : "";
      mk(
        cpuDesc,
        status(s.cpu.meanPct < TARGET_CPU_PCT && s.status === "ok"),
        `mean ${fmtPct(s.cpu.meanPct)} over ${s.windowS?.toFixed(0)} s, highest ${CPU_WINDOW_S} s window ${fmtPct(s.cpu.max5sPct)}${tail}`,
      );
      const maxRss = s.rss.maxMiB;
      const rssOk = maxRss !== null && maxRss * 1024 * 1024 < TARGET_RSS_BYTES && s.status === "ok";
      mk(
        rssDesc,
        status(rssOk),
        `VmRSS max ${fmtMiB(maxRss)} MiB = ${maxRss === null ? "-" : (maxRss * MB_PER_MIB).toFixed(1)} MB (mean ${fmtMiB(s.rss.meanMiB)} MiB); ` +
          `VmHWM since start ${fmtMiB(s.rss.hwmMiB)} MiB = ${s.rss.hwmMiB === null ? "-" : (s.rss.hwmMiB * MB_PER_MIB).toFixed(1)} MB${tail}`,
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------- tables

const LAT_HEADERS = [
  "interval s",
  "samples",
  "closed",
  "not closed",
  "median ms",
  "p95 ms",
  "p99 ms",
  "max ms",
  "target ms",
  "p99 target",
  "audit median ms",
  "audit p99 ms",
  "client − audit ms",
  "daemon CPU",
  "note",
];
const LAT_RIGHT = new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13]);

function latencyRows(report: DaemonReport): string[][] {
  return report.latency.map((l) => {
    const notes: string[] = [];
    if (l.status === "failed") notes.push(`FAILED: ${l.error ?? "?"}`);
    if (l.status === "skipped") notes.push(`not measured: ${l.error ?? "?"}`);
    notes.push(...l.notes);
    const target = report.targets.find((t) => t.description.includes(`at interval ${l.intervalS} s:`));
    const lag: Percentiles = l.audit.lag;
    return [
      String(l.intervalS),
      `${l.samples.length}/${l.requested}`,
      String(l.closed),
      String(l.missed + l.other),
      fmtMs(l.victim.median),
      fmtMs(l.victim.p95),
      fmtMs(l.victim.p99),
      fmtMs(l.victim.max),
      fmtMs(l.targetMs),
      target ? target.status.toUpperCase() : "-",
      fmtMs(l.audit.latency.median),
      fmtMs(l.audit.latency.p99),
      lag.n ? `${fmtMs(lag.median)} (max ${fmtMs(lag.max)})` : "-",
      fmtPct(l.daemonCpuPct),
      notes.join("; "),
    ];
  });
}

function steadyRows(s: SteadyResult): [string, string][] {
  const rows: [string, string][] = [];
  const e = s.events;
  rows.push(["CPU % of one core, mean over the window", fmtPct(s.cpu.meanPct)]);
  rows.push([`CPU %, ${CPU_WINDOW_S} s windows: min / max`, `${fmtPct(s.cpu.min5sPct)} / ${fmtPct(s.cpu.max5sPct)}`]);
  rows.push(["CPU %, highest 1 s sample", fmtPct(s.cpu.max1sPct)]);
  rows.push(["RSS MiB (VmRSS), mean / max over the window", `${fmtMiB(s.rss.meanMiB)} / ${fmtMiB(s.rss.maxMiB)}`]);
  rows.push(["peak RSS MiB since start (VmHWM at the end)", fmtMiB(s.rss.hwmMiB)]);
  rows.push(["CPU s before the window (start-up, first look, warm-up)", s.cpu.beforeWindowS === null ? "-" : s.cpu.beforeWindowS.toFixed(2)]);
  rows.push(["start-up to \"running\", ms", fmtMs(s.startupMs)]);
  rows.push([
    "TCP sockets in the namespace, window start → end",
    s.atStart && s.atEnd
      ? `${s.atStart.total} → ${s.atEnd.total} (established ${s.atStart.established} → ${s.atEnd.established}, TIME_WAIT ${s.atStart.timeWait} → ${s.atEnd.timeWait})`
      : "-",
  ]);
  rows.push([
    "churn: connections in the window, rate",
    s.churn.inWindow === null ? "-" : `${s.churn.inWindow} (${s.churn.windowRate?.toFixed(1)}/s, asked ${s.churn.rate}/s)`,
  ]);
  rows.push([
    "churn: all connections while the daemon ran (failed, late)",
    s.churn.total === null ? "-" : `${s.churn.total} (${s.churn.failed ?? 0}, ${s.churn.late ?? 0})`,
  ]);
  rows.push(["churn helper CPU % (client + server)", fmtPct(s.churn.helperCpuPct)]);
  rows.push([
    "opened events counted by the daemon (sockwarden_events_total)",
    e.openedAfter === null || e.openedBefore === null
      ? "-"
      : `${e.openedAfter - e.openedBefore} for ${e.expectedOpened} churn sockets (2 per connection): ` +
        `${e.allSeen ? "all seen" : (e.extraOpened ?? 0) < 0 ? `${-(e.extraOpened ?? 0)} MISSING` : `${e.extraOpened} more than expected`}` +
        (e.allSeen && e.extraOpened ? ` (+${e.extraOpened} from the harness's metrics requests)` : ""),
  ]);
  rows.push([
    "closed events counted by the daemon",
    e.closedAfter === null || e.closedBefore === null ? "-" : String(e.closedAfter - e.closedBefore),
  ]);
  rows.push([
    "alerts in the file sink, by rule",
    s.alerts.alerts ? Object.entries(s.alerts.byRule).map(([k, v]) => `${k} ${v}`).join(", ") : "none",
  ]);
  const reports = s.alerts.reports ?? [];
  rows.push([
    "rule trouble reported (failures, time budget overruns)",
    reports.length ? reports.map((x) => `${x.rule}: ${x.outcome} at ${relTime(s, x.time)}`).join("; ") : "none",
  ]);
  rows.push(["audit records (actions taken)", String(s.auditRecords)]);
  rows.push(["rest of host busy, CPUs (besides the daemon and the churn helper)", s.otherLoadCores === null ? "-" : s.otherLoadCores.toFixed(2)]);
  return rows;
}

/** When something happened, relative to the daemon's start and the window. */
function relTime(s: SteadyResult, iso: string): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  const start = s.startedAt ? Date.parse(s.startedAt) : NaN;
  const win = s.windowStartedAt ? Date.parse(s.windowStartedAt) : NaN;
  const parts: string[] = [];
  if (Number.isFinite(start)) parts.push(`${((t - start) / 1000).toFixed(1)} s after start`);
  if (Number.isFinite(win)) parts.push(t < win ? "before the window" : "in the window");
  return parts.join(", ") || iso;
}

function textTable(headers: string[], body: string[][], right: Set<number>): string {
  const all = [headers, ...body];
  const last = headers.length - 1;
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (i === last ? 0 : r[i]!.length))));
  const line = (r: string[]): string =>
    r.map((cell, i) => (i === last ? cell : right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

function steadyHeading(s: SteadyResult): string {
  return (
    `Steady state: interval ${s.intervalS} s; plugins ${s.plugins.join(", ") || "?"}; ` +
    `${s.connections} idle connections (${s.heldSockets ?? "?"} sockets held), ${s.churn.rate} new connections/s ` +
    `(close: ${s.churn.close}); ${s.warmupS} s warm-up, ${s.windowS === null ? "?" : s.windowS.toFixed(0)} s window` +
    (s.loadavg ? `; host load ${s.loadavg}, ${s.hostOpenFiles ?? "?"} open files` : "")
  );
}

export function daemonText(report: DaemonReport): string {
  const parts: string[] = [];
  if (report.latency.length) {
    parts.push(`Detect-to-close latency (smtp-guard; client ${VICTIM_NAME} connects to 127.0.0.1:25, clock from connect() returning to its read failing):`);
    parts.push(textTable(LAT_HEADERS, latencyRows(report), LAT_RIGHT));
    for (const l of report.latency) parts.push(`  ${l.intervalS} s: ${l.cmd.join(" ")}`);
    parts.push("");
  }
  const s = report.steady;
  if (s) {
    parts.push(steadyHeading(s) + ":");
    if (s.status !== "ok") parts.push(`  ${s.status.toUpperCase()}: ${s.error ?? "?"}`);
    const rows = steadyRows(s);
    const w = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) parts.push(`  ${k.padEnd(w)}  ${v}`);
    for (const n of s.notes) parts.push(`  note: ${n}`);
    if (s.cmd.length) parts.push(`  ${s.cmd.join(" ")}`);
    parts.push("");
  }
  for (const t of report.targets) parts.push(`Target: ${t.description}\n  => ${t.status.toUpperCase()}: ${t.detail}`);
  return parts.join("\n");
}

function md(s: string): string {
  return s.replace(/\|/g, "\\|");
}

export function daemonMarkdown(report: DaemonReport): string {
  const h = report.host;
  const o = report.options;
  const L: string[] = [];
  L.push(`# sockwarden daemon benchmark — ${report.startedAt}`);
  L.push("");
  L.push(
    `Host: ${h.cpu ?? "?"} (${h.cpus ?? "?"} CPUs), kernel ${h.kernel ?? "?"}, load at start ${h.loadavg ?? "?"}; bun ${h.bun ?? "?"}; ` +
      `sockwarden ${h.sockwarden ?? "(version unknown)"}, executable written ${h.sockwardenBuilt ?? "?"}.`,
  );
  L.push("");
  L.push(`Invocation: \`${report.invocation}\``);
  if (report.interrupted) L.push("", "**Interrupted: partial results.**");

  if (report.latency.length) {
    L.push("", "## Detect-to-close latency (smtp-guard)", "");
    L.push(
      `In a private network namespace, \`sockwarden run --rule smtp-guard --interval I --audit-log FILE --sink stdout:ndjson\` ` +
        `(plus a configuration that lifts the default limit of 60 actions a minute: one close per sample). A listener on ` +
        `127.0.0.1:25 accepts and holds connections; a client process named \`${VICTIM_NAME}\` (not a mail server) makes ` +
        `${o.samples} connections to it, one at a time, each after a random pause uniform in [0, I] so that connects land at ` +
        `random phases of the refresh cycle. Latency is from connect() returning to the client's blocking read failing ` +
        `(ECONNABORTED/ECONNRESET), monotonic clock: the close as the victim sees it. A connection still open after the ` +
        `sample's time limit counts as infinitely late. Percentiles are nearest-rank. The audit columns use the audit ` +
        `record's time (written right after the close) minus the connect's wall-clock time (ms resolution); ` +
        `"client − audit" is how much later the client noticed than the record says. Daemon CPU is its share of one core ` +
        `during the sampling.`,
    );
    L.push("");
    L.push(`| ${LAT_HEADERS.join(" | ")} |`);
    L.push(`|${LAT_HEADERS.map((_, i) => (LAT_RIGHT.has(i) ? "---:" : "---")).join("|")}|`);
    for (const r of latencyRows(report)) L.push(`| ${r.map(md).join(" | ")} |`);
    L.push("");
    for (const l of report.latency) {
      const outcomes = Object.entries(l.audit.outcomes).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
      L.push(
        `- ${l.intervalS} s: \`${l.cmd.join(" ")}\`; ${l.samples.length} samples in ${l.wallS === null ? "?" : l.wallS.toFixed(0)} s; ` +
          `audit: ${l.audit.records} close records (${outcomes}), ${l.audit.matched} matched to samples; stdout sink: ` +
          `${l.sinkCloseActions} close actions in ${l.sinkLines} lines; daemon start-up ${fmtMs(l.startupMs)} ms, VmHWM ${fmtMiB(l.daemonHwmMiB)} MiB, ` +
          `stopped ${fmtMs(l.stopMs)} ms after SIGTERM.`,
      );
    }
  }

  const s = report.steady;
  if (s) {
    L.push("", "## Steady state: CPU and RSS with all bundled plugins", "");
    L.push(
      `${steadyHeading(s)}. The daemon runs every bundled plugin (\`sockwarden rules list\`) with its default options; ` +
        `nothing in the benchmark's traffic is a public address or port 25, so outbound-allowlist and smtp-guard only look, ` +
        `while connection-flood and new-listener may alert: alerts go to a file sink (\`--sink file:…\`), counted below. ` +
        `Idle sockets: \`conn_helper.py\`. Churn: \`churn_helper.py\`, one connection at a time on a fixed schedule: connect from ` +
        `127.0.0.x, send a line, read the answer, close (${s.churn.close === "fin" ? "normal close: the client's side stays in TIME_WAIT for 60 s, as on a real server, so the dump grows by up to rate × 60 sockets" : "reset: no TIME_WAIT left behind"}). ` +
        `CPU is utime+stime of all the daemon's threads from /proc/PID/stat, sampled every second on a fixed grid ` +
        `(${report.clockTicksPerSecond} ticks/s, so a ${CPU_WINDOW_S} s window is exact to about ${(100 / report.clockTicksPerSecond / CPU_WINDOW_S).toFixed(1)} % of a core); ` +
        `RSS is VmRSS at the same moments. Whether every churn connection was seen: the daemon's own counter of opened events ` +
        `(\`--metrics\`, read before the churn starts and after it has stopped and two refreshes have passed) against two ` +
        `sockets (client and accepted side) per connection made.`,
    );
    L.push("");
    if (s.status !== "ok") L.push(`**${s.status.toUpperCase()}: ${md(s.error ?? "?")}**`, "");
    L.push("| figure | value |", "|---|---|");
    for (const [k, v] of steadyRows(s)) L.push(`| ${md(k)} | ${md(v)} |`);
    L.push("");
    if (s.cpu.windows.length) L.push(`CPU % per ${CPU_WINDOW_S} s window: ${s.cpu.windows.map((x) => x.toFixed(1)).join(", ")}.`, "");
    if (s.samples.length) L.push(`VmRSS MiB each second: ${s.samples.map((x) => (x.rssBytes / (1024 * 1024)).toFixed(0)).join(", ")}.`, "");
    for (const n of s.notes) L.push(`- ${md(n)}`);
    if (s.alerts.examples.length) {
      L.push("", "Alert examples:");
      for (const ex of s.alerts.examples) L.push(`- ${md(ex)}`);
    }
    if (s.cmd.length) L.push("", `Command: \`${s.cmd.join(" ")}\``);
  }

  L.push("", "## Targets", "");
  for (const t of report.targets) L.push(`- ${t.description} — **${t.status.toUpperCase()}** (${md(t.detail)})`);
  L.push("");
  return L.join("\n");
}
