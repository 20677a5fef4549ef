// Result model, target checks and the text / Markdown report of the daemon suite.
import { mdCell, mdTable, reportHeading, targetText, type ReportEnvelope } from "./report-kit.ts";
import type { TargetCheck, TargetStatus } from "./report.ts";
import { EBPF_LATENCY_TARGET_MS, LATENCY_SLACK_MS, VICTIM_NAME, type LatencyResult, type Percentiles } from "./daemon-latency.ts";
import { CPU_WINDOW_S, type SteadyResult } from "./daemon-steady.ts";
import type { DaemonPhase } from "./daemon-options.ts";
import type { Sensor } from "./sensors.ts";

export interface DaemonReport extends ReportEnvelope<"sockwarden-bench-daemon"> {
  clockTicksPerSecond: number;
  invocation: string;
  /** How the sensors were run (resync) and why one could not be. */
  sensorNotes: string[];
  options: {
    phases: DaemonPhase[];
    sensors: Sensor[];
    resync: number | null;
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
  /** One per sensor, in --sensors order. */
  steady: SteadyResult[];
  targets: TargetCheck[];
}

/** Steady-state CPU targets of one core: polling (the project's first), and with the eBPF sensor (issue 15). */
export const TARGET_CPU_PCT: Record<Sensor, number> = { poll: 10, ebpf: 5 };
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

function fmtRatio(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return x === Infinity ? "∞" : "-";
  return x >= 10 ? `${x.toFixed(0)}x` : x >= 0.1 ? `${x.toFixed(2)}x` : `${x.toFixed(3)}x`;
}

const MB_PER_MIB = 1.048576;

function latencyTargetDescription(sensor: Sensor, intervalS: number, limitMs: number): string {
  return sensor === "ebpf"
    ? `smtp-guard detect-to-close latency, --sensor ebpf, interval ${intervalS} s: p99 <= ${fmtMs(limitMs)} ms`
    : `smtp-guard detect-to-close latency, --sensor poll, interval ${intervalS} s: p99 <= ${fmtMs(limitMs)} ms (one interval + ${LATENCY_SLACK_MS} ms)`;
}

// ---------------------------------------------------------------- targets

export function checkDaemonTargets(report: Omit<DaemonReport, "targets">, requestedIntervals: number[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const mk = (description: string, status: TargetStatus, detail: string): void => {
    out.push({ description, status, detail });
  };
  if (report.options.phases.includes("latency")) {
    for (const sensor of report.options.sensors) for (const i of requestedIntervals) {
      const l = report.latency.find((x) => x.intervalS === i && x.sensor === sensor);
      const limit = l?.targetMs ?? (sensor === "ebpf" ? EBPF_LATENCY_TARGET_MS : i * 1000 + LATENCY_SLACK_MS);
      const desc = latencyTargetDescription(sensor, i, limit);
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
  if (report.options.phases.includes("steady")) for (const sensor of report.options.sensors) {
    const at = `sockwarden run --sensor ${sensor} with all bundled plugins, ${TARGET_SOCKETS / 1000}k sockets + ${TARGET_CHURN} new connections/s, interval 1 s`;
    const cpuDesc = `${at}: CPU (daemon + rule runners) under ${TARGET_CPU_PCT[sensor]}% of one core`;
    const rssDesc = `${at}: RSS (daemon + rule runners) under 100 MB`;
    const s = report.steady.find((x) => x.sensor === sensor);
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
        status(s.cpu.meanPct < TARGET_CPU_PCT[sensor] && s.status === "ok"),
        `mean ${fmtPct(s.cpu.meanPct)} = ${fmtRatio(s.cpu.meanPct / TARGET_CPU_PCT[sensor])} of the target over ${s.windowS?.toFixed(0)} s ` +
          `(daemon ${fmtPct(s.cpu.daemonPct)}, rule runners ${fmtPct(s.cpu.runnersPct)}), highest ${CPU_WINDOW_S} s window ${fmtPct(s.cpu.max5sPct)}${tail}`,
      );
      const maxRss = s.rss.maxMiB;
      const rssOk = maxRss !== null && maxRss * 1024 * 1024 < TARGET_RSS_BYTES && s.status === "ok";
      mk(
        rssDesc,
        status(rssOk),
        `VmRSS of ${s.processes.length || "?"} processes summed, max ${fmtMiB(maxRss)} MiB = ${maxRss === null ? "-" : (maxRss * MB_PER_MIB).toFixed(1)} MB` +
          ` = ${maxRss === null ? "-" : fmtRatio((maxRss * 1024 * 1024) / TARGET_RSS_BYTES)} of the target (mean ${fmtMiB(s.rss.meanMiB)} MiB; ` +
          `PSS at the end ${fmtMiB(s.rss.pssEndMiB)} MiB; the daemon alone max ${fmtMiB(s.rss.daemonMaxMiB)} MiB, VmHWM ${fmtMiB(s.rss.hwmMiB)} MiB)${tail}`,
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------- tables

const LAT_HEADERS = [
  "sensor",
  "interval s",
  "samples",
  "closed",
  "not closed",
  "median ms",
  "p95 ms",
  "p99 ms",
  "max ms",
  "target ms",
  "p99 / target",
  "p99 target",
  "p99 vs poll",
  "audit median ms",
  "audit p99 ms",
  "client − audit ms",
  "daemon CPU",
  "note",
];
const LAT_RIGHT = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16]);

function latencyRows(report: DaemonReport): string[][] {
  return report.latency.map((l) => {
    const notes: string[] = [];
    if (l.status === "failed") notes.push(`FAILED: ${l.error ?? "?"}`);
    if (l.status === "skipped") notes.push(`not measured: ${l.error ?? "?"}`);
    notes.push(...l.notes);
    const target = report.targets.find((t) => t.description === latencyTargetDescription(l.sensor, l.intervalS, l.targetMs));
    const lag: Percentiles = l.audit.lag;
    const measured = l.samples.length > 0 && l.victim.p99 !== null;
    const poll = report.latency.find((x) => x.sensor === "poll" && x.intervalS === l.intervalS && x.samples.length > 0);
    const vsPoll = l.sensor !== "poll" && measured && poll?.victim.p99 ? l.victim.p99! / poll.victim.p99 : null;
    return [
      l.sensor,
      String(l.intervalS),
      `${l.samples.length}/${l.requested}`,
      String(l.closed),
      String(l.missed + l.other),
      fmtMs(l.victim.median),
      fmtMs(l.victim.p95),
      fmtMs(l.victim.p99),
      fmtMs(l.victim.max),
      fmtMs(l.targetMs),
      measured ? fmtRatio(l.victim.p99! / l.targetMs) : "-",
      target ? target.status.toUpperCase() : "-",
      l.sensor === "poll" ? (measured ? "1.00x" : "-") : fmtRatio(vsPoll),
      fmtMs(l.audit.latency.median),
      fmtMs(l.audit.latency.p99),
      lag.n ? `${fmtMs(lag.median)} (max ${fmtMs(lag.max)})` : "-",
      fmtPct(l.daemonCpuPct),
      notes.join("; "),
    ];
  });
}

/** A figure of the steady table: its text, and the number compared across sensors where that means something. */
type SteadyRow = [label: string, value: string, compare?: number | null];

function steadyRows(s: SteadyResult): SteadyRow[] {
  const rows: SteadyRow[] = [];
  const e = s.events;
  const cpuTarget = TARGET_CPU_PCT[s.sensor];
  const rssMB = s.rss.maxMiB === null ? null : s.rss.maxMiB * MB_PER_MIB;
  rows.push(["status", s.status === "ok" ? "ok" : `${s.status === "skipped" ? "not measured" : "FAILED"}: ${s.error ?? "?"}`]);
  rows.push(["CPU % of one core (daemon + rule runners), mean over the window", fmtPct(s.cpu.meanPct), s.cpu.meanPct]);
  rows.push(["  target, and the mean as a share of it", s.cpu.meanPct === null ? `< ${cpuTarget}%` : `< ${cpuTarget}%: ${fmtRatio(s.cpu.meanPct / cpuTarget)}`]);
  rows.push(["  of which the daemon process / its rule runners", `${fmtPct(s.cpu.daemonPct)} / ${fmtPct(s.cpu.runnersPct)}`, s.cpu.daemonPct]);
  rows.push(["  the daemon's threads, % of a core", s.cpu.threads.length ? s.cpu.threads.slice(0, 5).map((t) => `${t.thread} ${fmtPct(t.pct)}`).join(", ") : "-"]);
  const ruleS = s.windowMetrics["sockwarden_rule_seconds_total"];
  rows.push(["  wall time waiting for rules (sockwarden_rule_seconds_total), % of the window", ruleS === undefined || !s.windowS ? "-" : fmtPct((ruleS / s.windowS) * 100)]);
  rows.push([`CPU %, ${CPU_WINDOW_S} s windows: min / max`, `${fmtPct(s.cpu.min5sPct)} / ${fmtPct(s.cpu.max5sPct)}`]);
  rows.push(["CPU %, highest 1 s sample", fmtPct(s.cpu.max1sPct)]);
  rows.push(["RSS MiB (VmRSS of daemon + rule runners summed), mean / max over the window", `${fmtMiB(s.rss.meanMiB)} / ${fmtMiB(s.rss.maxMiB)}`, s.rss.maxMiB]);
  rows.push(["  max in MB, and as a share of the 100 MB target", rssMB === null ? "-" : `${rssMB.toFixed(1)} MB: ${fmtRatio((rssMB * 1e6) / TARGET_RSS_BYTES)}`]);
  rows.push(["  PSS summed at the end (shared pages split), MiB", fmtMiB(s.rss.pssEndMiB), s.rss.pssEndMiB]);
  rows.push([
    "  processes counted at the end: VmRSS MiB each",
    s.processes.length ? s.processes.map((x) => `${x.pid === s.processes[0]!.pid ? "daemon" : "runner"} ${fmtMiB(x.rssMiB)}`).join(", ") : "-",
  ]);
  rows.push(["the daemon alone: VmRSS max / VmHWM since start, MiB", `${fmtMiB(s.rss.daemonMaxMiB)} / ${fmtMiB(s.rss.hwmMiB)}`]);
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
  const lost = s.windowMetrics["sockwarden_sensor_lost_total"];
  rows.push(["sensor changes lost in the window (sockwarden_sensor_lost_total)", lost === undefined ? "-" : String(lost)]);
  rows.push(["rest of host busy, CPUs (besides the daemon and the churn helper)", s.otherLoadCores === null ? "-" : s.otherLoadCores.toFixed(2)]);
  return rows;
}

/** One column per sensor, and the eBPF figure over polling's where both were measured. */
function steadyTable(list: SteadyResult[]): { headers: string[]; body: string[][] } {
  const per = list.map(steadyRows);
  const poll = list.findIndex((x) => x.sensor === "poll");
  const ebpf = list.findIndex((x) => x.sensor === "ebpf");
  const both = poll >= 0 && ebpf >= 0;
  const headers = ["figure", ...list.map((x) => x.sensor), ...(both ? ["ebpf vs poll"] : [])];
  const body = per[0]!.map(([label], i) => {
    const row = [label, ...per.map((r) => r[i]![1])];
    if (both) {
      const a = per[ebpf]![i]![2];
      const b = per[poll]![i]![2];
      row.push(a !== undefined && a !== null && b ? fmtRatio(a / b) : "");
    }
    return row;
  });
  return { headers, body };
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

function steadyHeading(list: SteadyResult[]): string {
  const s = list.find((x) => x.status !== "skipped") ?? list[0]!;
  return (
    `Steady state, sensors ${list.map((x) => x.sensor).join(" and ")}: interval ${s.intervalS} s; plugins ${s.plugins.join(", ") || "?"}; ` +
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
    for (const l of report.latency) if (l.cmd.length) parts.push(`  ${l.sensor} ${l.intervalS} s: ${l.cmd.join(" ")}`);
    parts.push("");
  }
  if (report.steady.length) {
    parts.push(steadyHeading(report.steady) + ":");
    const t = steadyTable(report.steady);
    // Figures are long text: a plain two-space layout, the figure's name first.
    parts.push(textTable([...t.headers, ""], t.body.map((r) => [...r, ""]), new Set()));
    for (const s of report.steady) {
      for (const n of s.notes) parts.push(`  ${s.sensor}: note: ${n}`);
      if (s.cmd.length) parts.push(`  ${s.sensor}: ${s.cmd.join(" ")}`);
    }
    parts.push("");
  }
  for (const n of report.sensorNotes) parts.push(`Sensors: ${n}`);
  for (const t of report.targets) parts.push(targetText(t));
  return parts.join("\n");
}


export function daemonMarkdown(report: DaemonReport): string {
  const h = report.host;
  const o = report.options;
  const L: string[] = reportHeading("daemon", report.startedAt);
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
      `In a private network namespace, \`sockwarden run --rule smtp-guard --interval I --audit-log FILE --sink stdout:ndjson --sensor S\` ` +
        `(plus a configuration that lifts the default limit of 60 actions a minute: one close per sample). A listener on ` +
        `127.0.0.1:25 accepts and holds connections; a client process named \`${VICTIM_NAME}\` (not a mail server) makes ` +
        `${o.samples} connections to it, one at a time, each after a random pause uniform in [0, I] so that connects land at ` +
        `random phases of the refresh cycle. Latency is from connect() returning to the client's blocking read failing ` +
        `(ECONNABORTED/ECONNRESET), monotonic clock: the close as the victim sees it. A connection still open after the ` +
        `sample's time limit counts as infinitely late. Percentiles are nearest-rank. The audit columns use the audit ` +
        `record's time (written right after the close) minus the connect's wall-clock time (ms resolution); ` +
        `"client − audit" is how much later the client noticed than the record says. Daemon CPU is its share of one core ` +
        `during the sampling. Each sensor is measured in its own run; "p99 / target" is the p99 over that sensor's target ` +
        `(one interval + ${LATENCY_SLACK_MS} ms polling, ${EBPF_LATENCY_TARGET_MS} ms with eBPF), "p99 vs poll" the eBPF p99 over polling's at the same interval.`,
    );
    L.push("");
    L.push(...mdTable(LAT_HEADERS, LAT_RIGHT, latencyRows(report)));
    L.push("");
    for (const l of report.latency) {
      const outcomes = Object.entries(l.audit.outcomes).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
      if (l.status === "skipped") continue;
      L.push(
        `- ${l.sensor}, ${l.intervalS} s: \`${l.cmd.join(" ")}\`; ${l.samples.length} samples in ${l.wallS === null ? "?" : l.wallS.toFixed(0)} s; ` +
          `audit: ${l.audit.records} close records (${outcomes}), ${l.audit.matched} matched to samples; stdout sink: ` +
          `${l.sinkCloseActions} close actions in ${l.sinkLines} lines; daemon start-up ${fmtMs(l.startupMs)} ms, VmHWM ${fmtMiB(l.daemonHwmMiB)} MiB, ` +
          `stopped ${fmtMs(l.stopMs)} ms after SIGTERM.`,
      );
    }
  }

  if (report.steady.length) {
    const list = report.steady;
    const s = list.find((x) => x.status !== "skipped") ?? list[0]!;
    L.push("", "## Steady state: CPU and RSS with all bundled plugins", "");
    L.push(
      `${steadyHeading(list)}. Each sensor is measured in its own run over the same setup. The daemon runs every bundled plugin (\`sockwarden rules list\`) with its default options; ` +
        `nothing in the benchmark's traffic is a public address or port 25, so outbound-allowlist and smtp-guard only look, ` +
        `while connection-flood and new-listener may alert: alerts go to a file sink (\`--sink file:…\`), counted below. ` +
        `Idle sockets: \`traffic.py hold\`. Churn: \`traffic.py churn\`, one connection at a time on a fixed schedule: connect from ` +
        `127.0.0.x, send a line, read the answer, close (${s.churn.close === "fin" ? "normal close: the client's side stays in TIME_WAIT for 60 s, as on a real server, so the dump grows by up to rate × 60 sockets" : "reset: no TIME_WAIT left behind"}). ` +
        `CPU is utime+stime of all the daemon's threads plus those of its rule runners (the executable's child processes, found by ` +
        `parent PID in /proc/*/stat), plus what runners it reaped left in its cutime/cstime, sampled every second on a fixed grid ` +
        `(${report.clockTicksPerSecond} ticks/s, so a ${CPU_WINDOW_S} s window is exact to about ${(100 / report.clockTicksPerSecond / CPU_WINDOW_S).toFixed(1)} % of a core); ` +
        `RSS is VmRSS of the daemon and every live runner, summed, at the same moments (shared pages count once per process: ` +
        `PSS, which splits them, is given too). Whether every churn connection was seen: the daemon's own counter of opened events ` +
        `(\`--metrics\`, read before the churn starts and after it has stopped and two refreshes have passed) against two ` +
        `sockets (client and accepted side) per connection made.`,
    );
    L.push("");
    const t = steadyTable(list);
    L.push(`| ${t.headers.join(" | ")} |`, `|${t.headers.map(() => "---").join("|")}|`);
    for (const r of t.body) L.push(`| ${r.map(mdCell).join(" | ")} |`);
    for (const x of list) {
      if (x.status === "skipped") continue;
      L.push("", `### ${x.sensor}`, "");
      if (x.cpu.windows.length) L.push(`CPU % per ${CPU_WINDOW_S} s window: ${x.cpu.windows.map((v) => v.toFixed(1)).join(", ")}.`, "");
      if (x.samples.length) L.push(`VmRSS MiB (daemon + runners) each second: ${x.samples.map((v) => (v.rssBytes / (1024 * 1024)).toFixed(0)).join(", ")}.`, "");
      for (const n of x.notes) L.push(`- ${mdCell(n)}`);
      if (x.alerts.examples.length) {
        L.push("", "Alert examples:");
        for (const ex of x.alerts.examples) L.push(`- ${mdCell(ex)}`);
      }
      if (x.cmd.length) L.push("", `Command: \`${x.cmd.join(" ")}\``);
    }
  }
  if (report.sensorNotes.length) L.push("", ...report.sensorNotes.map((n) => `- Sensors: ${mdCell(n)}`));

  L.push("", "## Targets", "");
  for (const t of report.targets) L.push(`- ${t.description} — **${t.status.toUpperCase()}** (${mdCell(t.detail)})`);
  L.push("");
  return L.join("\n");
}
