// What a soak or fault run's records say: every held connection (from traffic.py soak) against
// every audit-log line, so that missed closes, wrong closes and unaudited closes are counted
// exactly; and the daemon's RSS and CPU samples reduced to growth after warm-up.

/** One held connection as traffic.py soak reports it. */
export interface HeldConnection {
  cls: "must-close" | "keep" | "public";
  kind: string;
  name: string;
  proto: "tcp" | "udp";
  family: 4 | 6;
  laddr: string;
  lport: number | null;
  raddr: string;
  rport: number;
  /** Wall-clock ms when connect returned, and of the outcome. */
  t0: number;
  t1: number;
  result: string;
  ms: number;
}

export interface AuditLine {
  time: string;
  action: string;
  endpoint: { protocol: string; localAddress: string; localPort: number; remoteAddress: string; remotePort: number } | null;
  process: { name?: string; pid?: number } | null;
  requestedBy: string;
  outcome: string;
  message: string;
}

export interface CloseAccounting {
  /** Connections smtp-guard had to close. */
  mustClose: number;
  /**
   * ... that it closed: the client saw ECONNABORTED and the audit log has the close; or its
   * connect() itself failed with ECONNABORTED or ECONNRESET (closed at connect time).
   */
  closed: number;
  /** ... of them closed at connect time. */
  closedAtConnect: number;
  /** ... that it did not close within the deadline (or that something else ended). */
  missed: number;
  missedExamples: HeldConnection[];
  /** Closes the client saw without an audit line, and audit lines for the same close twice. */
  unaudited: number;
  /** Each with the audit lines about the same address pair, for finding out why. */
  unauditedExamples: string[];
  duplicateAudit: number;
  /** Audit "closed" lines for connections that had to be left alone, or unknown ones. */
  wrongAudited: number;
  /** Look-alikes that did not survive their hold (aborted, reset, ...). */
  wrongObserved: number;
  /** wrongAudited + look-alikes that died without an audit line. */
  wrong: number;
  wrongExamples: string[];
  /** Look-alikes checked (all classes that must be left alone). */
  keep: number;
  kept: number;
  /**
   * Connections that could not be made at all, but for must-close ones closed at connect time:
   * traffic problems, or a look-alike the daemon closed before connect() returned.
   */
  connectFailed: number;
  connectFailedExamples: string[];
  /** Audit lines by action and outcome ("close closed": 900). */
  auditByOutcome: Record<string, number>;
  /** ms from connect to ECONNABORTED for the closed ones. */
  closeLatencyMs: number[];
}

/**
 * A daemon that sees a connection while its handshake is still in flight may close it before
 * connect() returns: connect() then fails with one of these, and for a connection that had to be
 * closed that is the close, only earlier.
 */
const CLOSED_AT_CONNECT = new Set(["connect-failed ECONNABORTED", "connect-failed ECONNRESET"]);

const key = (proto: string, la: string, lp: number | null, ra: string, rp: number) => `${proto}|${la}|${lp}|${ra}|${rp}`;

/** Slack between the clocks of an audit line and the client's own records. */
const SLACK_BEFORE_MS = 1000;
const SLACK_AFTER_MS = 5000;

export function accountCloses(connections: readonly HeldConnection[], audit: readonly AuditLine[], rule = "smtp-guard"): CloseAccounting {
  const byKey = new Map<string, HeldConnection[]>();
  for (const c of connections) {
    if (c.lport === null) continue;
    const k = key(c.proto, c.laddr, c.lport, c.raddr, c.rport);
    const list = byKey.get(k);
    if (list) list.push(c);
    else byKey.set(k, [c]);
  }
  const auditByOutcome: Record<string, number> = {};
  const auditedCloses = new Map<HeldConnection, number>();
  let wrongAudited = 0;
  const wrongExamples: string[] = [];
  for (const a of audit) {
    const label = `${a.action} ${a.outcome}`;
    auditByOutcome[label] = (auditByOutcome[label] ?? 0) + 1;
    if (a.action !== "close" || a.outcome !== "closed") continue;
    const ep = a.endpoint;
    const t = Date.parse(a.time);
    const candidates = ep ? (byKey.get(key(ep.protocol, ep.localAddress, ep.localPort, ep.remoteAddress, ep.remotePort)) ?? []) : [];
    // A port can be used again within the slack: the connection whose outcome is nearest to
    // the audit line is the one it is about, one that has none yet first.
    let match: HeldConnection | null = null;
    for (const c of candidates) {
      if (t < c.t0 - SLACK_BEFORE_MS || t > c.t1 + SLACK_AFTER_MS) continue;
      if (!match) {
        match = c;
        continue;
      }
      const taken = (x: HeldConnection) => (auditedCloses.get(x) ?? 0) > 0;
      if (taken(match) !== taken(c) ? taken(match) : Math.abs(t - c.t1) < Math.abs(t - match.t1)) match = c;
    }
    if (!match || match.cls !== "must-close" || a.requestedBy !== rule) {
      wrongAudited++;
      if (wrongExamples.length < 10) wrongExamples.push(`audit: ${a.message} (${match ? `${match.cls} ${match.kind}` : "no such held connection"})`);
      continue;
    }
    auditedCloses.set(match, (auditedCloses.get(match) ?? 0) + 1);
  }
  let mustClose = 0;
  let closed = 0;
  let closedAtConnect = 0;
  let missed = 0;
  let unaudited = 0;
  let duplicateAudit = 0;
  let keep = 0;
  let kept = 0;
  let wrongObserved = 0;
  let wrongUnaudited = 0;
  let connectFailed = 0;
  const connectFailedExamples: string[] = [];
  const missedExamples: HeldConnection[] = [];
  const unauditedExamples: string[] = [];
  const sameKey = (c: HeldConnection) =>
    audit
      .filter((a) => a.endpoint && key(a.endpoint.protocol, a.endpoint.localAddress, a.endpoint.localPort, a.endpoint.remoteAddress, a.endpoint.remotePort) === key(c.proto, c.laddr, c.lport, c.raddr, c.rport))
      .map((a) => `${a.time} ${a.action} ${a.outcome} by ${a.requestedBy}`);
  const closeLatencyMs: number[] = [];
  for (const c of connections) {
    const atConnect = c.cls === "must-close" && CLOSED_AT_CONNECT.has(c.result);
    if (c.result.startsWith("connect-failed") && !atConnect) {
      connectFailed++;
      if (connectFailedExamples.length < 10) connectFailedExamples.push(`${c.kind} from ${c.laddr} to ${c.raddr}:${c.rport}: ${c.result}`);
      continue;
    }
    const audited = auditedCloses.get(c) ?? 0;
    if (audited > 1) duplicateAudit += audited - 1;
    if (c.cls === "must-close") {
      mustClose++;
      if (c.result === "aborted" || atConnect) {
        closed++;
        if (atConnect) closedAtConnect++;
        closeLatencyMs.push(c.ms);
        if (audited === 0) {
          unaudited++;
          if (unauditedExamples.length < 20) {
            unauditedExamples.push(`${c.kind} ${c.laddr}:${c.lport} -> ${c.raddr}:${c.rport} connected ${new Date(c.t0).toISOString()}, ${atConnect ? c.result : "aborted"} after ${c.ms} ms; audit about it: ${sameKey(c).join("; ") || "none"}`);
          }
        }
      } else {
        missed++;
        if (missedExamples.length < 10) missedExamples.push(c);
      }
      continue;
    }
    keep++;
    if (c.result === "alive") {
      kept++;
      continue;
    }
    wrongObserved++;
    if (audited === 0) wrongUnaudited++;
    if (wrongExamples.length < 10) wrongExamples.push(`${c.kind} ${c.laddr}:${c.lport} -> ${c.raddr}:${c.rport}: ${c.result} after ${c.ms} ms`);
  }
  return {
    mustClose, closed, closedAtConnect, missed, missedExamples, unaudited, unauditedExamples, duplicateAudit,
    wrongAudited, wrongObserved, wrong: wrongAudited + wrongUnaudited, wrongExamples,
    keep, kept, connectFailed, connectFailedExamples, auditByOutcome, closeLatencyMs,
  };
}

export interface Sample {
  /** Seconds since the traffic started. */
  t: number;
  rssKiB: number;
  /** Share of one core used since the previous sample, in percent. */
  cpuPct: number;
  threads: number;
}

export interface MemoryVerdict {
  baselineKiB: number | null;
  finalKiB: number | null;
  growthPct: number | null;
  /** Least-squares slope after warm-up, MiB per hour. */
  slopeMiBPerHour: number | null;
  maxKiB: number | null;
  /**
   * The same growth between the lowest samples of the two windows: the garbage collector makes
   * RSS a sawtooth, and a leak shows as a rising floor.
   */
  floorGrowthPct: number | null;
  /** Samples the figures above are made from (after warm-up). */
  samples: number;
}

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(xs: readonly number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/**
 * RSS growth after warm-up: the median of the first fifth of the samples after warm-up is the
 * baseline, the median of the last fifth the final figure (at least three samples each).
 */
export function memoryVerdict(samples: readonly Sample[], warmupSeconds: number): MemoryVerdict {
  const after = samples.filter((s) => s.t >= warmupSeconds);
  const n = Math.max(3, Math.floor(after.length / 5));
  if (after.length < 6) {
    return { baselineKiB: null, finalKiB: null, growthPct: null, slopeMiBPerHour: null, maxKiB: after.length ? Math.max(...after.map((s) => s.rssKiB)) : null, floorGrowthPct: null, samples: after.length };
  }
  const baseline = median(after.slice(0, n).map((s) => s.rssKiB))!;
  const final = median(after.slice(-n).map((s) => s.rssKiB))!;
  const floorBefore = Math.min(...after.slice(0, n).map((s) => s.rssKiB));
  const floorAfter = Math.min(...after.slice(-n).map((s) => s.rssKiB));
  const mt = after.reduce((a, s) => a + s.t, 0) / after.length;
  const mr = after.reduce((a, s) => a + s.rssKiB, 0) / after.length;
  let num = 0;
  let den = 0;
  for (const s of after) {
    num += (s.t - mt) * (s.rssKiB - mr);
    den += (s.t - mt) ** 2;
  }
  const slopeKiBPerSecond = den > 0 ? num / den : 0;
  return {
    baselineKiB: baseline,
    finalKiB: final,
    growthPct: ((final - baseline) / baseline) * 100,
    slopeMiBPerHour: (slopeKiBPerSecond * 3600) / 1024,
    maxKiB: Math.max(...after.map((s) => s.rssKiB)),
    floorGrowthPct: ((floorAfter - floorBefore) / floorBefore) * 100,
    samples: after.length,
  };
}

/** Parses Prometheus text into "name{labels}" -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^(\S+?(?:\{.*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Sum of every series of a metric whose labels contain each of `labels` (`rule="x"`). */
export function metricSum(metrics: ReadonlyMap<string, number>, name: string, ...labels: string[]): number {
  let sum = 0;
  for (const [k, v] of metrics) {
    if (k !== name && !k.startsWith(`${name}{`)) continue;
    if (labels.every((l) => k.includes(l))) sum += v;
  }
  return sum;
}

/** Alerts a sink received per rule, counting folded summaries by their `count`. */
export function alertsByRule(records: readonly { kind?: string; rule?: string; count?: number }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) {
    if (r.kind !== "alert" || !r.rule) continue;
    out[r.rule] = (out[r.rule] ?? 0) + (r.count ?? 1);
  }
  return out;
}
