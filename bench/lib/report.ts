// Result model, summaries, the target check and the text / Markdown tables.
import { mdTable, reportHeading, statusNotes, targetText } from "./report-kit.ts";
import type { ToolKey } from "./options.ts";
import type { Measurement } from "./proc.ts";
import type { SocketCount } from "./helper.ts";
import { MIB, max, median, min } from "./stats.ts";

export interface Summary {
  okRuns: number;
  failedRuns: number;
  medianMs: number | null;
  minMs: number | null;
  maxMs: number | null;
  /** Highest peak RSS over the measured runs. */
  peakRssMiB: number | null;
  medianRssMiB: number | null;
  /** Median user+system CPU time. */
  medianCpuMs: number | null;
  /** This tool's median wall time divided by ss -tanp's at the same size. */
  ratioToSs: number | null;
}

export interface ToolResult {
  key: ToolKey;
  label: string;
  cmd: string[];
  status: "ok" | "failed" | "skipped";
  error?: string;
  warmup: Measurement | null;
  runs: Measurement[];
  summary: Summary | null;
}

export interface SizeResult {
  connections: number;
  /** 2N plus the helper's listeners. */
  expectedSockets: number | null;
  /** TCP sockets found in the namespace just before measuring. */
  seen: SocketCount | null;
  helperWorkers: number | null;
  /**
   * Open files on the whole host (/proc/sys/fs/file-nr) and load average before measuring: every
   * tool walks all processes' descriptors, so other processes' sockets cost time too.
   */
  hostOpenFiles: number | null;
  loadavg: string | null;
  helperSetupMs: number | null;
  error?: string;
  tools: ToolResult[];
}

export type TargetStatus = "met" | "not met" | "not evaluated";

export interface TargetCheck {
  description: string;
  status: TargetStatus;
  detail: string;
}

export interface Report {
  kind: "sockwarden-bench-list";
  version: 1;
  startedAt: string;
  finishedAt: string;
  interrupted: boolean;
  netns: string;
  host: Record<string, string | number | null>;
  /** The measuring wrapper alone (/usr/bin/time running `true`): a floor under every figure. */
  baseline: { cmd: string; medianWallMs: number | null; maxRssMiB: number | null };
  options: {
    sizes: number[];
    runs: number;
    warmupRuns: 1;
    timeoutMs: number;
    stdout: string;
    sockwardenCmd: string[];
    placeholder: boolean;
  };
  sizes: SizeResult[];
  target: TargetCheck;
}

export const TARGET_SIZE = 30_000;
export const TARGET_RATIO = 0.5;
export const TARGET_RSS_MIB = 80;
export const TARGET_TEXT = `sockwarden list -a at ${TARGET_SIZE / 1000}k connections: median wall time <= ${TARGET_RATIO}x ss -tanp, peak RSS < ${TARGET_RSS_MIB} MiB`;

export function summarize(runs: Measurement[]): Summary {
  const ok = runs.filter((r) => r.ok);
  const rss = ok.map((r) => r.maxRssBytes).filter((x): x is number => x !== null).map((b) => b / MIB);
  const cpu = ok
    .filter((r) => r.userMs !== null && r.sysMs !== null)
    .map((r) => (r.userMs ?? 0) + (r.sysMs ?? 0));
  const wall = ok.map((r) => r.wallMs);
  return {
    okRuns: ok.length,
    failedRuns: runs.length - ok.length,
    medianMs: median(wall),
    minMs: min(wall),
    maxMs: max(wall),
    peakRssMiB: max(rss),
    medianRssMiB: median(rss),
    medianCpuMs: median(cpu),
    ratioToSs: null,
  };
}

/** Fill in ratioToSs for every tool of one size. */
export function addRatios(size: SizeResult): void {
  const ss = size.tools.find((t) => t.key === "ss");
  const base = ss?.status === "ok" ? ss.summary?.medianMs ?? null : null;
  for (const t of size.tools) {
    if (t.summary) t.summary.ratioToSs = base && t.summary.medianMs !== null ? t.summary.medianMs / base : null;
  }
}

export function checkTarget(
  requestedSizes: number[],
  sizes: SizeResult[],
  measuredTools: ToolKey[],
  placeholder: boolean,
  placeholderCmd: string,
): TargetCheck {
  const res = (status: TargetStatus, detail: string): TargetCheck => ({
    description: TARGET_TEXT,
    status,
    detail: placeholder && status !== "not evaluated" ? `${detail} — placeholder command (${placeholderCmd}), not the real executable` : detail,
  });
  if (!measuredTools.includes("sockwarden") || !measuredTools.includes("ss")) {
    return res("not evaluated", "needs both sockwarden and ss in --tools");
  }
  const size = sizes.find((s) => s.connections === TARGET_SIZE);
  if (!size) {
    return res(
      "not evaluated",
      requestedSizes.includes(TARGET_SIZE)
        ? `size ${TARGET_SIZE} was not reached (interrupted)`
        : `${TARGET_SIZE} is not among the sizes (--sizes)`,
    );
  }
  if (size.error) return res("not evaluated", `size ${TARGET_SIZE} could not be measured: ${size.error}`);
  const sw = size.tools.find((t) => t.key === "sockwarden");
  const ss = size.tools.find((t) => t.key === "ss");
  if (!sw || sw.status === "skipped") {
    return res("not evaluated", `sockwarden not measured at ${TARGET_SIZE}: ${sw?.error ?? "not run"}`);
  }
  if (sw.status !== "ok" || !sw.summary || sw.summary.medianMs === null) {
    return res("not met", `sockwarden failed: ${sw.error ?? "no successful run"}`);
  }
  if (!ss || ss.status !== "ok" || !ss.summary || ss.summary.medianMs === null) {
    return res("not evaluated", `no ss -tanp baseline: ${ss?.error ?? "no successful run"}`);
  }
  const ratio = sw.summary.ratioToSs ?? sw.summary.medianMs / ss.summary.medianMs;
  const rss = sw.summary.peakRssMiB;
  const timeOk = ratio <= TARGET_RATIO;
  const rssOk = rss !== null && rss < TARGET_RSS_MIB;
  const detail =
    `median ${fmtMs(sw.summary.medianMs)} ms vs ss ${fmtMs(ss.summary.medianMs)} ms = ${fmtRatio(ratio)}` +
    ` (${timeOk ? "ok" : "too slow"}), peak RSS ${rss === null ? "unknown" : rss.toFixed(1) + " MiB"}` +
    ` (${rssOk ? "ok" : "too high"})` +
    (sw.summary.failedRuns ? `, ${sw.summary.failedRuns} failed run(s)` : "");
  return res(timeOk && rssOk && sw.summary.failedRuns === 0 ? "met" : "not met", detail);
}

// ---------------------------------------------------------------- formatting

function fmtMs(x: number | null): string {
  if (x === null) return "-";
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

function fmtRatio(x: number | null): string {
  return x === null ? "-" : `${x.toFixed(2)}x`;
}

function fmtMiB(x: number | null): string {
  return x === null ? "-" : x.toFixed(1);
}

const HEADERS = [
  "connections",
  "sockets",
  "tool",
  "runs ok",
  "median ms",
  "min ms",
  "max ms",
  "warm-up ms",
  "peak RSS MiB",
  "vs ss",
  "lines",
  "note",
];
const RIGHT = new Set([0, 1, 3, 4, 5, 6, 7, 8, 9, 10]);

function rows(report: Report): string[][] {
  const out: string[][] = [];
  for (const size of report.sizes) {
    const sockets = size.seen ? String(size.seen.total) : "-";
    if (size.error && size.tools.every((t) => !t.warmup)) {
      out.push([String(size.connections), sockets, "(all)", "-", "-", "-", "-", "-", "-", "-", "-", `size failed: ${size.error}`]);
      continue;
    }
    for (const t of size.tools) {
      const s = t.summary;
      const notes = statusNotes(t, size.error);
      if (t.key === "sockwarden" && report.options.placeholder) notes.push("placeholder command");
      const lines = t.warmup?.ok ? t.warmup.stdoutLines : null;
      out.push([
        String(size.connections),
        sockets,
        t.label,
        s ? `${s.okRuns}/${s.okRuns + s.failedRuns}` : "-",
        fmtMs(s?.medianMs ?? null),
        fmtMs(s?.minMs ?? null),
        fmtMs(s?.maxMs ?? null),
        t.warmup?.ok ? fmtMs(t.warmup.wallMs) : "-",
        fmtMiB(s?.peakRssMiB ?? null),
        fmtRatio(s?.ratioToSs ?? null),
        lines === null ? "-" : String(lines),
        notes.join("; "),
      ]);
    }
  }
  return out;
}

export function textTable(report: Report): string {
  const body = rows(report);
  const all = [HEADERS, ...body];
  const widths = HEADERS.map((_, i) => Math.max(...all.map((r) => (i === HEADERS.length - 1 ? 0 : r[i]!.length))));
  const line = (r: string[]): string =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : RIGHT.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  const sep = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(HEADERS), sep, ...body.map(line)].join("\n");
}


export function markdown(report: Report): string {
  const o = report.options;
  const h = report.host;
  const lines: string[] = reportHeading("list", report.startedAt);
  lines.push(
    `Host: ${h.cpu ?? "?"} (${h.cpus ?? "?"} CPUs), kernel ${h.kernel ?? "?"}, load ${h.loadavg ?? "?"}; ` +
      `${h.ss ?? "ss ?"}, ${h.netstat ?? "netstat ?"}, ${h.lsof ?? "lsof ?"}; bun ${h.bun ?? "?"}.`,
  );
  lines.push("");
  lines.push(
    `${o.runs} runs per tool and size, the first a warm-up (its time is shown apart, not in the statistics); ` +
      `stdout of measured runs: ${o.stdout === "null" ? "/dev/null" : "a drained pipe"}; ` +
      `per-command limit ${o.timeoutMs / 1000} s. Wall time is spawn to exit of the tool itself, ` +
      `peak RSS its maximum resident set (ru_maxrss, highest over the measured runs). ` +
      `"vs ss" is the median divided by ss -tanp's median at the same size.`,
  );
  const b = report.baseline;
  lines.push("");
  lines.push(
    `Each command runs under /usr/bin/time in a process group of its own; that wrapper alone ` +
      `(running \`${b.cmd}\`) takes ${fmtMs(b.medianWallMs)} ms and ${fmtMiB(b.maxRssMiB)} MiB, a floor under every figure.`,
  );
  lines.push("");
  lines.push(`sockwarden command: \`${o.sockwardenCmd.join(" ")}\`${o.placeholder ? " (placeholder)" : ""}`);
  const busy = report.sizes.filter((s) => s.hostOpenFiles !== null);
  if (busy.length) {
    lines.push("");
    lines.push(
      "Host before each size (every tool walks all processes' descriptors, so other processes add time): " +
        busy.map((s) => `${s.connections}: ${s.hostOpenFiles} open files, load ${s.loadavg ?? "?"}`).join("; ") +
        ".",
    );
  }
  if (report.interrupted) {
    lines.push("");
    lines.push("**Interrupted: partial results.**");
  }
  lines.push("");
  lines.push(...mdTable(HEADERS, RIGHT, rows(report)));
  lines.push("");
  lines.push(`Target: ${report.target.description} — **${report.target.status.toUpperCase()}** (${report.target.detail})`);
  lines.push("");
  return lines.join("\n");
}

export function targetLine(t: TargetCheck): string {
  return targetText(t);
}
