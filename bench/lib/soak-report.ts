// The soak run's report: targets first, then the time series and the detail.
import type { SoakResult } from "../../test/support/soak/soak-run.ts";

export interface SoakTargets {
  missed: boolean;
  wrong: boolean;
  rss: boolean;
  up: boolean;
  audited: boolean;
}

export const RSS_TARGET_PCT = 10;

export function soakTargets(r: SoakResult, rssLimitPct = RSS_TARGET_PCT): SoakTargets {
  return {
    missed: r.closes.missed === 0 && r.closes.mustClose > 0,
    wrong: r.closes.wrong === 0 && r.closes.wrongObserved === 0,
    rss: r.memory.growthPct !== null && r.memory.growthPct < rssLimitPct,
    up: r.daemon.stayedUp,
    audited: r.closes.unaudited === 0 && r.closes.duplicateAudit === 0,
  };
}

const mib = (kib: number | null) => (kib === null ? "–" : (kib / 1024).toFixed(1));
const fmt = (n: number | null, digits = 1) => (n === null ? "–" : n.toFixed(digits));
const ok = (b: boolean) => (b ? "met" : "**NOT MET**");

/** Rows of the time series, one per `bucketSeconds` (the samples in it averaged). */
function series(r: SoakResult, bucketSeconds: number): string[] {
  const rows: string[] = ["| t (s) | RSS (MiB) | CPU (% of a core) | events/s | closes | lost notices | refresh errors | endpoints |", "|---:|---:|---:|---:|---:|---:|---:|---:|"];
  const end = Math.max(r.trafficSeconds, ...r.samples.map((s) => s.t));
  let prevEvents = 0;
  let prevT = 0;
  for (let from = 0; from < end; from += bucketSeconds) {
    const to = from + bucketSeconds;
    const ss = r.samples.filter((s) => s.t > from && s.t <= to);
    if (!ss.length) continue;
    const rss = Math.round(ss.reduce((a, s) => a + s.rssKiB, 0) / ss.length);
    const cpu = ss.reduce((a, s) => a + s.cpuPct, 0) / ss.length;
    const m = [...r.metrics].reverse().find((p) => p.t <= to + 1) ?? null;
    let rate = "–";
    if (m && m.t > prevT) {
      rate = Math.round((m.events - prevEvents) / (m.t - prevT)).toString();
      prevEvents = m.events;
      prevT = m.t;
    }
    rows.push(`| ${to} | ${mib(rss)} | ${cpu.toFixed(1)} | ${rate} | ${m?.closes ?? "–"} | ${m?.lostNotices ?? "–"} | ${m?.refreshErrors ?? "–"} | ${m?.endpoints ?? "–"} |`);
  }
  return rows;
}

export function soakMarkdown(r: SoakResult, host: Record<string, unknown>, invocation: string, bucketSeconds: number): string {
  const t = soakTargets(r);
  const c = r.closes;
  const lines = [
    `# Soak: sockwarden run, every bundled plugin, ${Math.round(r.trafficSeconds / 60)} min at ${r.settings.rate} new connections/s`,
    "",
    `Started ${r.startedAt}; \`${invocation}\`.`,
    `Host: ${host.cpu ?? "?"} (${host.cpus} cores), kernel ${host.kernel}, load at start ${host.loadavg}; Bun ${host.bun}.`,
    `Daemon interval ${r.settings.interval} s; ${r.settings.classRate}/s of each held class; churn closes with ${r.settings.churnClose === "fin" ? "FIN (TIME_WAIT kept 60 s)" : "RST"}; warm-up ${r.settings.warmupSeconds} s.`,
    "",
    "## Targets",
    "",
    "| target | figure | |",
    "|---|---|---|",
    `| no missed close | ${c.missed} missed of ${c.mustClose} | ${ok(t.missed)} |`,
    `| no wrong close | ${c.wrong} wrong (${c.wrongAudited} in the audit log, ${c.wrongObserved} look-alikes hurt) of ${c.keep} look-alikes | ${ok(t.wrong)} |`,
    `| RSS growth after warm-up < 10% | ${fmt(r.memory.growthPct)}% (${mib(r.memory.baselineKiB)} → ${mib(r.memory.finalKiB)} MiB; lowest samples ${fmt(r.memory.floorGrowthPct)}%; slope ${fmt(r.memory.slopeMiBPerHour)} MiB/h; max ${mib(r.memory.maxKiB)} MiB) | ${ok(t.rss)} |`,
    `| daemon up throughout, clean stop | exit ${r.daemon.exitCode ?? r.daemon.signal} after SIGTERM in ${r.daemon.stopMs} ms | ${ok(t.up)} |`,
    `| every close in the audit log once | ${c.unaudited} unaudited, ${c.duplicateAudit} duplicated | ${ok(t.audited)} |`,
    "",
    "## Traffic",
    "",
    `- ${r.connections.total} connections in ${r.trafficSeconds} s: ${r.connections.perSecond}/s (${r.connections.churnOk} short ones, ${r.connections.churnFailed} of them failed; ${r.connections.held} held), ${r.connections.late} schedule slots late.`,
    `- Close latency (connect → ECONNABORTED): p50 ${fmt(c.latencyMs.p50, 0)} ms, p95 ${fmt(c.latencyMs.p95, 0)} ms, p99 ${fmt(c.latencyMs.p99, 0)} ms, max ${fmt(c.latencyMs.max, 0)} ms.`,
    `- Audit log: ${r.auditLines} lines (${Object.entries(c.auditByOutcome).map(([k, v]) => `${k}: ${v}`).join(", ") || "none"}).`,
    `- Alerts by rule (folded summaries counted): ${Object.entries(r.alerts).map(([k, v]) => `${k} ${v}`).join(", ") || "none"}; outbound connections to the public address: ${r.outboundConnections}.`,
    `- CPU after warm-up: mean ${fmt(r.cpu.meanPct)}%, p95 ${fmt(r.cpu.p95Pct)}%, max ${fmt(r.cpu.maxPct)}% of one core.`,
    `- Daemon stderr: ${r.daemon.stderrLines} line(s).`,
    "",
  ];
  if (c.missedExamples.length) lines.push("Missed:", "", ...c.missedExamples.map((e) => `- ${e}`), "");
  if (c.wrongExamples.length) lines.push("Wrong:", "", ...c.wrongExamples.map((e) => `- ${e}`), "");
  if (c.unauditedExamples.length) lines.push("Closed without an audit line of their own:", "", ...c.unauditedExamples.map((e) => `- ${e}`), "");
  lines.push("## Over time", "", ...series(r, bucketSeconds), "");
  if (r.daemon.stderrTail.length) lines.push("## Daemon stderr (last lines)", "", "```", ...r.daemon.stderrTail, "```", "");
  return lines.join("\n");
}
