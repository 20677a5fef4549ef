// One soak run: `sockwarden run` with every bundled plugin in a network namespace, traffic from
// test/support/traffic/traffic.py soak (short connections plus connections smtp-guard must close
// and look-alikes it must not), the daemon's RSS and CPU sampled from /proc, its metrics
// scraped, and at the end every held connection checked against the audit log.
//
// Used by bench/soak.ts (npm run soak: 30 minutes) and test/e2e/soak.test.ts (about two).
// Commands run through `wrap`, which puts them inside the namespace (`ip netns exec NAME`), or
// is the identity when this process already is inside.
import fs from "node:fs";
import path from "node:path";
import { SoakProcess, runBounded, sleep } from "./soak-proc.ts";
import {
  accountCloses, alertsByRule, memoryVerdict, metricSum, parseMetrics, percentile, median,
  type AuditLine, type CloseAccounting, type HeldConnection, type MemoryVerdict, type Sample,
} from "./soak-analyse.ts";
import { PYTHON, SOAK_TRAFFIC } from "../traffic/scripts.ts";
import { clockTicks, readCpuTicks, readVm } from "../proc-usage.ts";

export const PLUGINS = ["smtp-guard", "new-listener", "connection-flood", "outbound-allowlist"];
/** TEST-NET-2: not private, so outbound-allowlist treats it as public; it lives on lo only. */
export const PUBLIC_ADDRESS = "198.51.100.7";
/** Seconds a short connection may wait for its answer; after "stop", how long those in flight are followed. */
const CHURN_TIMEOUT_S = 30;
/** Held classes in traffic.py soak (seven, plus the public one). */
const HELD_CLASSES = 8;

export interface SoakSettings {
  executable: string;
  /** Seconds of traffic. */
  seconds: number;
  /** Seconds after which RSS counts (TIME_WAIT sockets pile up for the first 60 s). */
  warmupSeconds: number;
  /** New connections a second, all kinds together. */
  rate: number;
  /** The daemon's refresh interval, seconds. */
  interval: number;
  /** Connections a second of each held class. */
  classRate: number;
  /** Seconds a look-alike is held; seconds a must-close connection waits to be closed. */
  hold: number;
  closeDeadline: number;
  churnClose: "fin" | "rst";
  sampleSeconds: number;
  /** Metrics are scraped this often (and at the end). */
  metricsSeconds: number;
  /** Work directory (config, audit log, sink files, traffic records); must exist. */
  dir: string;
  wrap: (argv: string[]) => string[];
  metricsPort?: number;
  log?: (message: string) => void;
  /** Called with every sample as it is taken. */
  onSample?: (s: Sample) => void;
  /** Replaces the sinks (default: one rotating file, sink.ndjson in `dir`). */
  sinks?: string[];
  /** More rules beside the bundled plugins (files). */
  rules?: string[];
  /** More TOML, appended to the configuration (e.g. sandbox settings). */
  configExtra?: string;
  /** Wraps the daemon's command line inside the namespace (e.g. a mount namespace of its own). */
  daemonWrap?: (argv: string[]) => string[];
  /** More settings for traffic.py soak (e.g. forkRate). */
  traffic?: Record<string, unknown>;
  /** Runs once the traffic flows, beside the sampling; the traffic stops after it and `seconds`. */
  during?: (ctx: SoakContext) => Promise<void>;
  /** Runs after the traffic has ended and before the daemon is stopped. */
  beforeStop?: (ctx: SoakContext) => Promise<void>;
}

export interface SoakContext {
  daemon: SoakProcess;
  /** Seconds since the traffic started. */
  elapsed(): number;
  scrape(): Promise<Map<string, number> | null>;
}

export interface MetricsPoint {
  t: number;
  events: number;
  closes: number;
  alerts: number;
  refreshErrors: number;
  lostNotices: number;
  refreshSeconds: number;
  endpoints: number;
}

export interface SoakResult {
  settings: Omit<SoakSettings, "wrap" | "log" | "onSample" | "during" | "beforeStop" | "daemonWrap">;
  startedAt: string;
  /** Seconds the traffic actually ran, and until every held connection had its outcome. */
  trafficSeconds: number;
  drainSeconds: number;
  connections: {
    churnOk: number;
    churnFailed: number;
    /** Short connections still unanswered when the generator's drain after "stop" ran out. */
    churnStopped: number;
    /** Failures by reason, and the first one with when it happened. */
    churnErrors: Record<string, number>;
    churnFirstError: string | null;
    /** Slowest answer of a short connection, and how many took over a second. */
    churnSlowestMs: number | null;
    churnSlow: number;
    held: number;
    total: number;
    perSecond: number;
    late: number;
  };
  samples: Sample[];
  metrics: MetricsPoint[];
  memory: MemoryVerdict;
  cpu: { meanPct: number | null; p95Pct: number | null; maxPct: number | null };
  closes: Omit<CloseAccounting, "closeLatencyMs" | "missedExamples"> & {
    latencyMs: { p50: number | null; p95: number | null; p99: number | null; max: number | null };
    missedExamples: string[];
  };
  alerts: Record<string, number>;
  outboundConnections: number;
  daemon: { stayedUp: boolean; exitCode: number | null; signal: string | null; stopMs: number; stderrLines: number; stderrTail: string[] };
  finalMetrics: Record<string, number>;
  auditLines: number;
  /** Everything the daemon wrote to stderr (bounded), and every record the default file sink got. */
  stderr: string;
  sinkRecords: Record<string, unknown>[];
}

/** The short-connection generator's last record (traffic.py soak, churn). */
export interface ChurnSummary {
  started?: number;
  ok?: number;
  failed?: number;
  stopped?: number;
  errors?: Record<string, number>;
  firstError?: string | null;
  slowestMs?: number;
  slow?: number;
  late?: number;
}

function readJsonLines<T>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  const out: T[] = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // A partial last line of a killed writer; the counts say what is missing.
    }
  }
  return out;
}

function readProc(pid: number): { ticks: number; rssKiB: number; threads: number } | null {
  const cpu = readCpuTicks(pid);
  const vm = readVm(pid);
  return cpu && vm ? { ticks: cpu.utime + cpu.stime, rssKiB: vm.rss / 1024, threads: vm.threads } : null;
}

const CLK_TCK = clockTicks();

export function soakConfig(s: Pick<SoakSettings, "interval" | "dir" | "sinks" | "rules">, port: number, extra = ""): string {
  const sinks = s.sinks ?? [`file:${path.join(s.dir, "sink.ndjson")}?maxBytes=16M&keep=20`];
  return [
    `interval = ${s.interval}`,
    `audit_log = "${path.join(s.dir, "audit.log")}"`,
    `state_dir = "${path.join(s.dir, "state")}"`,
    `metrics = "127.0.0.1:${port}"`,
    `sinks = [${sinks.map((x) => JSON.stringify(x)).join(", ")}]`,
    "[rules]",
    `sources = [${[...PLUGINS, ...(s.rules ?? [])].map((p) => JSON.stringify(p)).join(", ")}]`,
    "[limits]",
    "actions_per_minute = 60",
    // 3 classes x classRate closes a second are wanted: the per-rule limit must not turn them
    // into alerts (a rate-limited close would be a missed one).
    "[limits.rules.smtp-guard]",
    "actions_per_minute = 1000000",
    extra,
    "",
  ].join("\n");
}

/** Fetches the metrics text through the namespace; null when it cannot. */
export async function scrapeMetrics(wrap: (a: string[]) => string[], port: number): Promise<Map<string, number> | null> {
  const r = await runBounded(
    wrap([PYTHON, "-c", `import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:${port}/metrics', timeout=5).read().decode())`]),
    10_000,
  );
  return r.code === 0 ? parseMetrics(r.stdout) : null;
}

export async function runSoak(s: SoakSettings): Promise<SoakResult> {
  const log = s.log ?? (() => {});
  const port = s.metricsPort ?? 9464;
  const configFile = path.join(s.dir, "soak.toml");
  fs.writeFileSync(configFile, soakConfig(s, port, s.configExtra));
  const out = path.join(s.dir, "traffic");
  const startedAt = new Date().toISOString();

  // The public address lives on this namespace's loopback only.
  const addr = await runBounded(s.wrap(["ip", "addr", "add", `${PUBLIC_ADDRESS}/32`, "dev", "lo"]), 10_000);
  if (addr.code !== 0 && !/exists|already assigned/i.test(addr.stderr)) throw new Error(`ip addr add ${PUBLIC_ADDRESS}: ${addr.stderr.trim()}`);

  const daemonArgv = [s.executable, "run", "--config", configFile];
  const daemon = new SoakProcess(s.wrap(s.daemonWrap ? s.daemonWrap(daemonArgv) : daemonArgv), { keepStdout: false });
  let traffic: SoakProcess | null = null;
  const samples: Sample[] = [];
  const metrics: MetricsPoint[] = [];
  let stayedUp = true;
  try {
    if (!(await daemon.waitForStderr(/running /, 30_000))) {
      throw new Error(`the daemon did not start: ${daemon.stderr.slice(-3000)}`);
    }
    const pid = daemon.pid;
    log(`daemon running (pid ${pid}); traffic ${s.rate}/s for ${s.seconds} s`);

    const churnRate = Math.max(0, s.rate - HELD_CLASSES * s.classRate);
    const lifetime = Math.ceil(s.seconds + Math.max(s.closeDeadline, CHURN_TIMEOUT_S) + 120);
    traffic = new SoakProcess(s.wrap([PYTHON, ...SOAK_TRAFFIC, JSON.stringify({
      out, churnRate, churnClose: s.churnClose, classRate: s.classRate, hold: s.hold,
      closeDeadline: s.closeDeadline, churnTimeout: CHURN_TIMEOUT_S, public: PUBLIC_ADDRESS, lifetime, ...s.traffic,
    })]));
    await traffic.waitForLine(/^ready /, 20_000);
    const t0 = performance.now();
    const elapsed = () => (performance.now() - t0) / 1000;
    let last = readProc(pid);
    let lastAt = performance.now();
    let nextMetrics = 0;
    const scrape = async () => {
      const m = await scrapeMetrics(s.wrap, port);
      if (!m) return null;
      metrics.push({
        t: Math.round(elapsed()),
        events: metricSum(m, "sockwarden_events_total"),
        closes: metricSum(m, "sockwarden_actions_total", 'action="close"', 'outcome="closed"'),
        alerts: metricSum(m, "sockwarden_actions_total", 'action="alert"'),
        refreshErrors: metricSum(m, "sockwarden_refresh_errors_total"),
        lostNotices: metricSum(m, "sockwarden_lost_notices_total"),
        refreshSeconds: metricSum(m, "sockwarden_refresh_seconds"),
        endpoints: metricSum(m, "sockwarden_endpoints"),
      });
      return m;
    };
    const ctx: SoakContext = { daemon, elapsed, scrape };
    let duringError: unknown = null;
    let duringDone = !s.during;
    const during = s.during
      ? s.during(ctx).then(
          () => (duringDone = true),
          (e) => {
            duringError = e;
            duringDone = true;
          },
        )
      : Promise.resolve();
    while (elapsed() < s.seconds || !duringDone) {
      await sleep(Math.min(s.sampleSeconds * 1000, Math.max(10, (s.seconds - elapsed()) * 1000)));
      if (daemon.hasExited || traffic.hasExited) break;
      const now = readProc(pid);
      const at = performance.now();
      if (now && last) {
        const sample: Sample = {
          t: Math.round(elapsed() * 10) / 10,
          rssKiB: now.rssKiB,
          cpuPct: Math.round((((now.ticks - last.ticks) / CLK_TCK) / ((at - lastAt) / 1000)) * 1000) / 10,
          threads: now.threads,
        };
        samples.push(sample);
        s.onSample?.(sample);
      }
      last = now;
      lastAt = at;
      if (elapsed() >= nextMetrics) {
        nextMetrics = elapsed() + s.metricsSeconds;
        await scrape();
      }
    }
    await during;
    if (duringError) throw duringError;
    const trafficSeconds = elapsed();
    if (daemon.hasExited) {
      stayedUp = false;
      log(`the daemon ended during the run: ${daemon.code ?? daemon.signal}`);
    }
    if (traffic.hasExited) throw new Error(`the traffic generator ended early: ${traffic.stderr.slice(-2000)}`);
    traffic.write("stop\n");
    // Every generator drains what it has in flight: held connections for their hold or deadline,
    // short ones for their answer.
    await traffic.waitForLine(/^finished$/, (Math.max(s.closeDeadline + s.hold, CHURN_TIMEOUT_S) + 60) * 1000);
    const drainSeconds = elapsed() - trafficSeconds;
    // Closes still being written: give the daemon one more refresh.
    await sleep(Math.max(500, s.interval * 2000));
    if (daemon.hasExited) stayedUp = false;
    const finalMetrics = (await scrape()) ?? new Map<string, number>();
    await s.beforeStop?.(ctx);

    const stopAt = performance.now();
    daemon.kill("SIGTERM");
    await daemon.waitForExit(10_000);
    const stopMs = performance.now() - stopAt;
    if (!daemon.hasExited) await daemon.stop(1000);

    // What happened to every connection.
    const files = fs.readdirSync(s.dir).filter((f) => f.startsWith("traffic.") && f.endsWith(".ndjson"));
    const records = files.flatMap((f) => readJsonLines<Record<string, unknown>>(path.join(s.dir, f)));
    const held = records.filter((r) => r.cls === "must-close" || r.cls === "keep" || r.cls === "public") as unknown as HeldConnection[];
    const churn = records.find((r) => r.cls === "summary" && r.gen === "churn") as ChurnSummary | undefined;
    const late = records.filter((r) => r.cls === "summary").reduce((n, r) => n + Number(r.late ?? 0), 0);
    const audit = readJsonLines<AuditLine>(path.join(s.dir, "audit.log"));
    const accounting = accountCloses(held, audit);
    const sinkFiles = fs.readdirSync(s.dir).filter((f) => f === "sink.ndjson" || f.startsWith("sink.ndjson."));
    const sinkRecords = sinkFiles.flatMap((f) => readJsonLines<Record<string, unknown> & { kind?: string; rule?: string; count?: number }>(path.join(s.dir, f)));
    const cpuAfter = samples.filter((x) => x.t >= s.warmupSeconds).map((x) => x.cpuPct);
    const total = (churn?.ok ?? 0) + (churn?.failed ?? 0) + held.length;
    const stderrLines = daemon.stderr.split("\n").filter(Boolean);
    const { closeLatencyMs, missedExamples, ...rest } = accounting;
    const { wrap: _w, log: _l, onSample: _o, during: _d, beforeStop: _b, daemonWrap: _dw, ...settings } = s;
    return {
      settings,
      startedAt,
      trafficSeconds: Math.round(trafficSeconds * 10) / 10,
      drainSeconds: Math.round(drainSeconds * 10) / 10,
      connections: {
        churnOk: churn?.ok ?? 0,
        churnFailed: churn?.failed ?? 0,
        churnStopped: churn?.stopped ?? 0,
        churnErrors: churn?.errors ?? {},
        churnFirstError: churn?.firstError ?? null,
        churnSlowestMs: churn?.slowestMs ?? null,
        churnSlow: churn?.slow ?? 0,
        held: held.length,
        total,
        perSecond: Math.round(total / trafficSeconds),
        late,
      },
      samples,
      metrics,
      memory: memoryVerdict(samples, s.warmupSeconds),
      cpu: {
        meanPct: cpuAfter.length ? Math.round((cpuAfter.reduce((a, b) => a + b, 0) / cpuAfter.length) * 10) / 10 : null,
        p95Pct: percentile(cpuAfter, 95),
        maxPct: cpuAfter.length ? Math.max(...cpuAfter) : null,
      },
      closes: {
        ...rest,
        latencyMs: { p50: median(closeLatencyMs), p95: percentile(closeLatencyMs, 95), p99: percentile(closeLatencyMs, 99), max: closeLatencyMs.length ? Math.max(...closeLatencyMs) : null },
        missedExamples: missedExamples.map((c) => `${c.kind} ${c.laddr}:${c.lport} -> ${c.raddr}:${c.rport}: ${c.result} after ${c.ms} ms`),
      },
      alerts: alertsByRule(sinkRecords),
      outboundConnections: held.filter((c) => c.cls === "public").length,
      daemon: {
        stayedUp: stayedUp && daemon.code === 0,
        exitCode: daemon.code,
        signal: daemon.signal,
        stopMs: Math.round(stopMs),
        stderrLines: stderrLines.length,
        stderrTail: stderrLines.slice(-20),
      },
      finalMetrics: Object.fromEntries([...finalMetrics].filter(([k]) => !k.startsWith("sockwarden_endpoints{"))),
      auditLines: audit.length,
      stderr: daemon.stderr,
      sinkRecords,
    };
  } finally {
    await traffic?.stop(2000);
    await daemon.stop(2000);
  }
}
