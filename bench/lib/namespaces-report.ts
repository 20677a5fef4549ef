// The namespaces suite's result model, the socket census of a sockwarden listing, the target
// check, and the text and Markdown reports.
import { mdTable, reportHeading, statusNotes, targetText } from "./report-kit.ts";
import { readFileSync } from "node:fs";
import type { Measurement } from "./proc.ts";
import { MIB, max, median, min } from "./stats.ts";

export const TARGET_NAMESPACES = 20;
export const TARGET_SOCKETS_PER_NS = 1000;
export const TARGET_RATIO = 1 / 3;
export const TARGET_TEXT =
  `${TARGET_NAMESPACES} namespaces of ~${TARGET_SOCKETS_PER_NS / 1000}k sockets each: ` +
  "median wall time of `sockwarden list -a --all-namespaces` at most a third of the " +
  "`ip netns exec NS ss -tanp` loop's";

export type SideKey = "sockwarden" | "ss-loop";

export interface SideSummary {
  okRuns: number;
  failedRuns: number;
  medianMs: number | null;
  minMs: number | null;
  maxMs: number | null;
  /** Highest ru_maxrss over the measured runs (for the loop: its largest process). */
  peakRssMiB: number | null;
  /** Median user+system CPU (for the loop: every ip and ss it ran). */
  medianCpuMs: number | null;
}

export interface SideResult {
  key: SideKey;
  label: string;
  cmd: string[];
  status: "ok" | "failed" | "skipped";
  error?: string;
  warmup: Measurement | null;
  runs: Measurement[];
  summary: SideSummary | null;
}

export interface NsCount {
  /** Namespace inode (0 for endpoints without a namespace tag). */
  inode: number;
  name: string | null;
  endpoints: number;
  tcp: number;
}

/** What one `sockwarden list -a --all-namespaces --json` listed, by namespace. */
export interface Census {
  endpoints: number;
  tcp: number;
  udp: number;
  namespaces: number;
  /** The benchmark namespaces, in loop order (0 when sockwarden did not list one). */
  bench: { name: string; endpoints: number; tcp: number }[];
  benchEndpoints: number;
  benchTcp: number;
  benchSeen: number;
  /** The namespace the benchmark measures from. */
  ownEndpoints: number;
  /** Every other namespace on the host (the initial one included), most endpoints first. */
  others: NsCount[];
  otherEndpoints: number;
}

export interface ProcCount {
  netns: string;
  /** TCP sockets in /proc/PID/net/tcp{,6} of the namespace's holder. */
  total: number;
  established: number;
  listen: number;
  other: number;
}

export interface PhaseResult {
  name: "empty" | "loaded";
  connectionsPerNs: number;
  runs: number;
  /** Sockets each holder reported (2N + listeners); null in the empty phase. */
  expectedPerNs: number | null;
  procCounts: ProcCount[] | null;
  holderSetupMs: number | null;
  hostOpenFiles: number | null;
  hostNamespaces: number | null;
  loadavg: string | null;
  loadavgAfter: string | null;
  /** From the warm-up run's output, and from one more run after the measured ones. */
  census: Census | null;
  censusAfter: Census | null;
  censusError?: string;
  /** Lines (header included) of each namespace's ss -tanp in the warm-up loop. */
  ssLines: { netns: string; lines: number }[] | null;
  sides: SideResult[];
  /** The host before each round (the warm-up's first): others' activity shows here. */
  rounds: RoundHost[];
  /** sockwarden's median / the loop's median. */
  ratio: number | null;
  error?: string;
}

export interface RoundHost {
  round: number;
  hostOpenFiles: number | null;
  hostNamespaces: number;
  load1: number;
}

export type TargetStatus = "met" | "not met" | "not evaluated";

export interface TargetCheck {
  description: string;
  status: TargetStatus;
  detail: string;
}

export interface NamespacesReport {
  kind: "sockwarden-bench-namespaces";
  version: 1;
  startedAt: string;
  finishedAt: string;
  interrupted: boolean;
  ownNetns: string;
  targets: string[];
  host: Record<string, string | number | null>;
  sockwarden: { version: string | null; built: string | null };
  baseline: { cmd: string; medianWallMs: number | null; maxRssMiB: number | null };
  options: {
    namespaces: number;
    connections: number;
    runs: number;
    emptyRuns: number;
    warmupRuns: 1;
    timeoutMs: number;
    sockwardenCmd: string[];
    placeholder: boolean;
    loopCmd: string;
  };
  phases: PhaseResult[];
  target: TargetCheck;
}

export function summarizeSide(runs: Measurement[]): SideSummary {
  const ok = runs.filter((r) => r.ok);
  const wall = ok.map((r) => r.wallMs);
  const rss = ok.map((r) => r.maxRssBytes).filter((x): x is number => x !== null).map((b) => b / MIB);
  const cpu = ok.filter((r) => r.userMs !== null && r.sysMs !== null).map((r) => r.userMs! + r.sysMs!);
  return {
    okRuns: ok.length,
    failedRuns: runs.length - ok.length,
    medianMs: median(wall),
    minMs: min(wall),
    maxMs: max(wall),
    peakRssMiB: max(rss),
    medianCpuMs: median(cpu),
  };
}

interface JsonEndpoint {
  protocol?: string;
  namespace?: { inode?: number; name?: string | null } | null;
}

/** Count a saved `--json` listing by namespace. Throws when the file is not such a listing. */
export function censusOf(file: string, own: string, targets: string[]): Census {
  const parsed: unknown = JSON.parse(readFileSync(file, "utf8"));
  if (!Array.isArray(parsed)) throw new Error("output is not a JSON array");
  const byNs = new Map<number, NsCount>();
  let tcp = 0;
  let udp = 0;
  for (const e of parsed as JsonEndpoint[]) {
    if (e.protocol === "tcp") tcp++;
    else if (e.protocol === "udp") udp++;
    const inode = e.namespace?.inode ?? 0;
    let c = byNs.get(inode);
    if (!c) {
      c = { inode, name: e.namespace?.name ?? null, endpoints: 0, tcp: 0 };
      byNs.set(inode, c);
    }
    c.endpoints++;
    if (e.protocol === "tcp") c.tcp++;
  }
  const byName = new Map<string, NsCount>();
  for (const c of byNs.values()) if (c.name) byName.set(c.name, c);
  const bench = targets.map((name) => ({ name, endpoints: byName.get(name)?.endpoints ?? 0, tcp: byName.get(name)?.tcp ?? 0 }));
  const mine = new Set([own, ...targets]);
  const others = [...byNs.values()].filter((c) => !c.name || !mine.has(c.name)).sort((a, b) => b.endpoints - a.endpoints);
  return {
    endpoints: parsed.length,
    tcp,
    udp,
    namespaces: byNs.size,
    bench,
    benchEndpoints: bench.reduce((s, b) => s + b.endpoints, 0),
    benchTcp: bench.reduce((s, b) => s + b.tcp, 0),
    benchSeen: bench.filter((b) => byName.has(b.name)).length,
    ownEndpoints: byName.get(own)?.endpoints ?? 0,
    others,
    otherEndpoints: others.reduce((s, c) => s + c.endpoints, 0),
  };
}

export function checkTarget(phases: PhaseResult[], opts: NamespacesReport["options"], interrupted: boolean): TargetCheck {
  const res = (status: TargetStatus, detail: string): TargetCheck => ({
    description: TARGET_TEXT,
    status,
    detail:
      opts.placeholder && status !== "not evaluated"
        ? `${detail} — stand-in command (${opts.sockwardenCmd.join(" ")}), not the real executable`
        : detail,
  });
  const loaded = phases.find((p) => p.name === "loaded");
  if (!loaded) return res("not evaluated", interrupted ? "interrupted before the loaded phase" : "the loaded phase did not run");
  if (loaded.error && loaded.sides.every((s) => !s.summary?.okRuns)) {
    return res("not evaluated", `the loaded phase could not be measured: ${loaded.error}`);
  }
  const sw = loaded.sides.find((s) => s.key === "sockwarden")!;
  const loop = loaded.sides.find((s) => s.key === "ss-loop")!;
  if (sw.status === "skipped") return res("not evaluated", `sockwarden not measured: ${sw.error ?? "not run"}`);
  if (sw.status !== "ok" || sw.summary?.medianMs == null) {
    return res("not met", `sockwarden failed: ${sw.error ?? "no successful run"}`);
  }
  if (loop.status !== "ok" || loop.summary?.medianMs == null) {
    return res("not evaluated", `no ss loop baseline: ${loop.error ?? "no successful run"}`);
  }
  const scale =
    opts.namespaces !== TARGET_NAMESPACES || loaded.expectedPerNs === null || loaded.expectedPerNs < TARGET_SOCKETS_PER_NS
      ? ` (measured at ${opts.namespaces} namespaces × ${loaded.expectedPerNs ?? "?"} sockets, not the target's ${TARGET_NAMESPACES} × ~${TARGET_SOCKETS_PER_NS})`
      : "";
  const ratio = sw.summary.medianMs / loop.summary.medianMs;
  const ok = ratio <= TARGET_RATIO + 1e-9;
  const detail =
    `median ${fmtMs(sw.summary.medianMs)} ms vs the ss loop's ${fmtMs(loop.summary.medianMs)} ms = ${fmtRatio(ratio)}` +
    ` (limit ${fmtRatio(TARGET_RATIO)})${sw.summary.failedRuns ? `, ${sw.summary.failedRuns} failed run(s)` : ""}` +
    (loaded.error ? `; cut short: ${loaded.error}` : "") +
    scale;
  if (scale || loaded.error) return res("not evaluated", detail);
  return res(ok && sw.summary.failedRuns === 0 ? "met" : "not met", detail);
}

// ---------------------------------------------------------------- formatting

export function fmtMs(x: number | null | undefined): string {
  if (x === null || x === undefined) return "-";
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

export function fmtRatio(x: number | null | undefined): string {
  return x === null || x === undefined ? "-" : `${x.toFixed(2)}x`;
}

function fmtMiB(x: number | null | undefined): string {
  return x === null || x === undefined ? "-" : x.toFixed(1);
}

const HEADERS = [
  "phase",
  "side",
  "runs ok",
  "median ms",
  "min ms",
  "max ms",
  "warm-up ms",
  "CPU ms",
  "peak RSS MiB",
  "vs ss loop",
  "sockets listed",
  "note",
];
const RIGHT = new Set([2, 3, 4, 5, 6, 7, 8, 9, 10]);

function phaseLabel(p: PhaseResult): string {
  return p.name === "empty" ? "empty namespaces" : `${p.connectionsPerNs} conn/ns`;
}

function rows(report: NamespacesReport): string[][] {
  const out: string[][] = [];
  for (const p of report.phases) {
    const loop = p.sides.find((s) => s.key === "ss-loop");
    const loopMedian = loop?.status === "ok" ? loop.summary?.medianMs ?? null : null;
    for (const s of p.sides) {
      const sum = s.summary;
      const notes = statusNotes(s, p.error);
      if (s.key === "sockwarden" && report.options.placeholder) notes.push("stand-in command");
      let listed = "-";
      if (s.key === "sockwarden" && p.census) {
        listed = `${p.census.endpoints}`;
        notes.push(
          `${p.census.benchEndpoints} in the ${report.targets.length} benchmark namespaces, ` +
            `${p.census.otherEndpoints} in ${p.census.others.length} other(s), ${p.census.ownEndpoints} in its own`,
        );
      } else if (s.key === "ss-loop" && p.ssLines) {
        listed = String(p.ssLines.reduce((a, l) => a + Math.max(0, l.lines - 1), 0));
      }
      const ratio = sum?.medianMs != null && loopMedian ? sum.medianMs / loopMedian : null;
      out.push([
        phaseLabel(p),
        s.label,
        sum ? `${sum.okRuns}/${sum.okRuns + sum.failedRuns}` : "-",
        fmtMs(sum?.medianMs),
        fmtMs(sum?.minMs),
        fmtMs(sum?.maxMs),
        s.warmup?.ok ? fmtMs(s.warmup.wallMs) : "-",
        fmtMs(sum?.medianCpuMs),
        fmtMiB(sum?.peakRssMiB),
        fmtRatio(ratio),
        listed,
        notes.join("; "),
      ]);
    }
    if (p.error && p.sides.every((s) => !s.warmup)) {
      out.push([phaseLabel(p), "(both)", "-", "-", "-", "-", "-", "-", "-", "-", "-", `phase failed: ${p.error}`]);
    }
  }
  return out;
}

export function textTable(report: NamespacesReport): string {
  const body = rows(report);
  const all = [HEADERS, ...body];
  const last = HEADERS.length - 1;
  const widths = HEADERS.map((_, i) => (i === last ? 0 : Math.max(...all.map((r) => r[i]!.length))));
  const line = (r: string[]): string =>
    r
      .map((cell, i) => (i === last ? cell : RIGHT.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(HEADERS), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

function range(xs: number[]): string {
  if (!xs.length) return "-";
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const f = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(2));
  return lo === hi ? f(lo) : `${f(lo)}–${f(hi)}`;
}

function otherNames(c: Census): string {
  const shown = c.others.slice(0, 6).map((o) => `${o.name ?? `net:[${o.inode}]`} ${o.endpoints}`);
  return shown.join(", ") + (c.others.length > 6 ? `, … (${c.others.length - 6} more)` : "");
}

/** Lines describing what sockwarden and the ss loop saw in one phase. */
export function censusLines(report: NamespacesReport, p: PhaseResult): string[] {
  const lines: string[] = [];
  const k = report.targets.length;
  if (p.procCounts) {
    lines.push(
      `Held: ${p.connectionsPerNs} connections in each of ${k} namespaces; /proc/PID/net/tcp{,6} of the holders counts ` +
        `${range(p.procCounts.map((c) => c.total))} TCP sockets per namespace ` +
        `(${p.procCounts.reduce((a, c) => a + c.total, 0)} in all; expected ${p.expectedPerNs ?? "?"} each), ` +
        `set up in ${p.holderSetupMs === null ? "?" : (p.holderSetupMs / 1000).toFixed(1)} s.`,
    );
  }
  lines.push(
    `Host: ${p.hostNamespaces ?? "?"} network namespaces in use (the ${k + 1} of this run included), ` +
      `${p.hostOpenFiles ?? "?"} open files, load ${p.loadavg ?? "?"} before and ${p.loadavgAfter ?? "?"} after.`,
  );
  const measured = p.rounds.filter((r) => r.round > 0);
  if (measured.length) {
    const files = measured.map((r) => r.hostOpenFiles).filter((x): x is number => x !== null);
    const nss = measured.map((r) => r.hostNamespaces);
    lines.push(
      `Before each measured round: ${range(files)} open files, ${range(nss)} network namespaces, ` +
        `1-minute load ${range(measured.map((r) => r.load1))}` +
        (Math.max(...nss) !== Math.min(...nss) || (files.length && Math.max(...files) > 1.2 * Math.min(...files))
          ? " (the rest of the host changed during the rounds)."
          : "."),
    );
  }
  const c = p.census;
  if (c) {
    lines.push(
      `sockwarden listed ${c.endpoints} endpoints (${c.tcp} TCP, ${c.udp} UDP) from ${c.namespaces} namespaces that had any: ` +
        `${c.benchEndpoints} in the ${k} benchmark namespaces (${c.benchSeen} of ${k} seen; ` +
        `${range(c.bench.map((b) => b.endpoints))} per namespace), ${c.ownEndpoints} in its own (${report.ownNetns}), ` +
        `${c.otherEndpoints} in ${c.others.length} other namespace(s) of the host` +
        (c.others.length ? ` (${otherNames(c)})` : "") +
        ". Those others are listed and timed as they are: sockwarden cannot leave them out.",
    );
    const a = p.censusAfter;
    if (a && (a.endpoints !== c.endpoints || a.others.length !== c.others.length)) {
      lines.push(
        `After the measured runs it listed ${a.endpoints} (${a.benchEndpoints} in the benchmark namespaces, ` +
          `${a.otherEndpoints} in ${a.others.length} other namespace(s)): the rest of the host changed meanwhile.`,
      );
    }
  } else if (p.censusError) {
    lines.push(`sockwarden's listing could not be counted: ${p.censusError}.`);
  }
  if (p.ssLines) {
    const per = p.ssLines.map((l) => Math.max(0, l.lines - 1));
    lines.push(
      `The ss loop listed ${per.reduce((a, b) => a + b, 0)} TCP sockets (${range(per)} per namespace, header lines not counted); ` +
        `it sees only the ${k} benchmark namespaces.`,
    );
  }
  return lines;
}


export function markdown(report: NamespacesReport): string {
  const o = report.options;
  const h = report.host;
  const L: string[] = reportHeading("namespaces", report.startedAt);
  L.push(
    `Host: ${h.cpu ?? "?"} (${h.cpus ?? "?"} CPUs), kernel ${h.kernel ?? "?"}, ${h.memTotalMiB ?? "?"} MiB, load ${h.loadavg ?? "?"}; ` +
      `${h.ss ?? "ss ?"}; bun ${h.bun ?? "?"}.` +
      (o.placeholder
        ? ""
        : ` sockwarden ${report.sockwarden.version ?? "?"}, executable written ${report.sockwarden.built ?? "?"}.`),
  );
  L.push("");
  L.push(
    `${o.namespaces} network namespaces (${report.targets[0]} … ${report.targets[report.targets.length - 1]}, loopback up), ` +
      `each with one holder (traffic.py hold) keeping ${o.connections} established loopback TCP connections ` +
      `(${2 * o.connections} sockets plus a listener). Every command is started from the benchmark's own namespace ` +
      `${report.ownNetns}, which holds no sockets. Nothing leaves loopback.`,
  );
  L.push("");
  L.push(
    `**sockwarden**: \`${o.sockwardenCmd.join(" ")} > /dev/null\`${o.placeholder ? " (stand-in)" : ""}, one process for every namespace. ` +
      `**ss loop**: \`${o.loopCmd}\`, run by \`sh -c\` over the ${o.namespaces} benchmark namespaces one after another; ` +
      `its wall time is the whole loop's, its CPU the sum over every \`ip\` and \`ss\` it ran, its peak RSS its largest process's.`,
  );
  L.push("");
  L.push(
    `Rounds: ${o.runs} with the connections held${o.emptyRuns ? `, ${o.emptyRuns} before the holders start (empty namespaces: fixed costs)` : ""}; ` +
      `the first round of each is a warm-up (shown apart, not in the statistics; its outputs are counted below). ` +
      `The two sides alternate which goes first. Wall time is spawn to exit, measured by the harness; each command runs under ` +
      `/usr/bin/time (for ru_maxrss and CPU), which alone takes ${fmtMs(report.baseline.medianWallMs)} ms and ` +
      `${fmtMiB(report.baseline.maxRssMiB)} MiB. Limit per command ${o.timeoutMs / 1000} s. ` +
      `"vs ss loop" is the median divided by the ss loop's median in the same phase.`,
  );
  if (report.interrupted) {
    L.push("");
    L.push("**Interrupted: partial results.**");
  }
  L.push("");
  L.push(...mdTable(HEADERS, RIGHT, rows(report)));
  for (const p of report.phases) {
    L.push("");
    L.push(`**${p.name === "empty" ? "Empty namespaces" : `${p.connectionsPerNs} connections per namespace`}.** ${censusLines(report, p).join(" ")}`);
  }
  L.push("");
  L.push(`Target: ${report.target.description} — **${report.target.status.toUpperCase()}** (${report.target.detail})`);
  L.push("");
  return L.join("\n");
}

export function targetLine(t: TargetCheck): string {
  return targetText(t);
}
