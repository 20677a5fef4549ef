// Result model and the Markdown report of the rules benchmark.
import type { EventMix } from "./rules-events.ts";
import type { PassResult, PassTiming } from "./rules-measure.ts";
import type { MemoryResult } from "./rules-memory.ts";
import type { Profile } from "./rules-profile.ts";
import { MIB, max, median, min } from "./stats.ts";

export const TARGET_EVENTS_PER_SEC = 200_000;

export interface Spread {
  median: number | null;
  min: number | null;
  max: number | null;
}

export interface BatchResult {
  batchSize: number;
  isDefault: boolean;
  eventsPerRun: number;
  plannedRuns: number;
  warmup: PassResult | null;
  runs: PassResult[];
  /** Sandboxed events per second (wall), over the measured runs. */
  rate: Spread;
  /** Sandboxed events per CPU second of the process. */
  cpuRate: Spread;
  note: string | null;
}

export interface MemorySummary {
  raw: MemoryResult;
  /** RSS added by the first rule (includes one-time costs: compiler, the QuickJS module code). */
  firstRuleMiB: number;
  /** (RSS after N - RSS after 1) / (N - 1): the cost of one more rule. */
  perRuleMiB: number | null;
  /** (RSS after N - baseline) / N. */
  averageMiB: number;
  /** Extra RSS per rule after each handled the events. */
  perRuleAfterEventsMiB: number;
  wasmMiB: Spread;
  wasmAfterEventsMiB: Spread;
  loadMs: Spread;
}

export type TargetStatus = "met" | "not met" | "not evaluated";

export interface RulesReport {
  kind: "sockwarden-bench-rules";
  startedAt: string;
  finishedAt: string;
  interrupted: boolean;
  host: Record<string, string | number | null>;
  options: Record<string, unknown>;
  rule: { name: string; file: string; on: string[] };
  stream: EventMix | null;
  defaultBatchSize: number;
  chunk: number;
  main: BatchResult | null;
  hostSide: { runs: PassTiming[]; rate: Spread } | null;
  /** Sandboxed events/s divided by plain-JS events/s (medians). */
  ratio: number | null;
  /** The sandbox accepted as many closes as the plain-JS rule took, in every measured run. */
  closesAgree: boolean | null;
  target: { status: TargetStatus; detail: string };
  sweep: BatchResult[];
  memory: MemorySummary | null;
  memoryError: string | null;
  profile: Profile | null;
  profileNote: string | null;
  /** Anything that makes a figure doubtful: disagreeing actions, rule failures, skipped parts. */
  notes: string[];
}

export function spread(xs: number[]): Spread {
  return { median: median(xs), min: min(xs), max: max(xs) };
}

export function summarizeBatch(b: Omit<BatchResult, "rate" | "cpuRate">): BatchResult {
  return {
    ...b,
    rate: spread(b.runs.map((r) => r.sandbox.eventsPerSec)),
    cpuRate: spread(b.runs.map((r) => (r.sandbox.cpuMs > 0 ? (r.sandbox.events * 1000) / r.sandbox.cpuMs : 0))),
  };
}

export function summarizeMemory(raw: MemoryResult): MemorySummary {
  const n = raw.rssAfterEach.length;
  const last = raw.rssAfterEach[n - 1] ?? raw.rssBaseline;
  const first = raw.rssAfterEach[0] ?? raw.rssBaseline;
  return {
    raw,
    firstRuleMiB: (first - raw.rssBaseline) / MIB,
    perRuleMiB: n > 1 ? (last - first) / (n - 1) / MIB : null,
    averageMiB: (last - raw.rssBaseline) / n / MIB,
    perRuleAfterEventsMiB: (raw.rssAfterEvents - last) / n / MIB,
    wasmMiB: spread(raw.wasmLoaded.map((b) => b / MIB)),
    wasmAfterEventsMiB: spread(raw.wasmAfterEvents.map((b) => b / MIB)),
    loadMs: spread(raw.loadMs),
  };
}

export function evaluateTarget(main: BatchResult | null, interrupted: boolean): { status: TargetStatus; detail: string } {
  const want = `at least ${rate(TARGET_EVENTS_PER_SEC)} events/s sandboxed at the default batch size (median)`;
  if (!main || main.rate.median === null) return { status: "not evaluated", detail: `${want}: not measured${interrupted ? " (interrupted)" : ""}` };
  const got = main.rate.median;
  const partial = main.runs.length < main.plannedRuns ? ` over ${main.runs.length} of ${main.plannedRuns} runs` : "";
  const status: TargetStatus = got >= TARGET_EVENTS_PER_SEC ? "met" : "not met";
  const cpu = main.cpuRate.median ? `; per CPU second ${rate(main.cpuRate.median)} = ${(main.cpuRate.median / TARGET_EVENTS_PER_SEC).toFixed(2)}x` : "";
  return {
    status,
    detail: `${want}: ${rate(got)} events/s${partial} = ${(got / TARGET_EVENTS_PER_SEC).toFixed(2)}x the target${cpu}`,
  };
}

/** 98400 -> "98.4k", 14300000 -> "14.3M". */
export function rate(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return "–";
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e5 ? 0 : 1)}k`;
  return n.toFixed(0);
}

const f1 = (n: number | null): string => (n === null || !Number.isFinite(n) ? "–" : n.toFixed(1));
const f2 = (n: number | null): string => (n === null || !Number.isFinite(n) ? "–" : n.toFixed(2));
const pct = (n: number): string => `${(n * 100).toFixed(0)} %`;
const us = (eps: number | null): string => (eps ? (1e6 / eps).toFixed(eps > 1e6 ? 3 : 2) : "–");

export function ratioText(r: RulesReport): string {
  if (r.ratio === null || !r.main?.rate.median || !r.hostSide?.rate.median) return "sandbox/host ratio: not measured";
  return `sandbox/host ratio: ${r.ratio.toFixed(4)} (${rate(r.main.rate.median)} / ${rate(r.hostSide.rate.median)} events/s; plain JavaScript in the host is ${(1 / r.ratio).toFixed(0)}x faster)`;
}

function batchRow(b: BatchResult, label: string): string {
  const closes = b.runs[0]?.sandbox.closes ?? b.warmup?.sandbox.closes;
  return `| ${label} | ${b.batchSize}${b.isDefault ? " (default)" : ""} | ${b.runs.length}/${b.plannedRuns} | ${b.eventsPerRun.toLocaleString("en-US")} | **${rate(b.rate.median)}** | ${rate(b.rate.min)} | ${rate(b.rate.max)} | ${us(b.rate.median)} | ${rate(b.cpuRate.median)} | ${b.warmup ? rate(b.warmup.sandbox.eventsPerSec) : "–"} | ${closes ?? "–"} | ${b.note ?? ""} |`;
}

export function rulesMarkdown(r: RulesReport): string {
  const L: string[] = [];
  const h = r.host;
  L.push(`# sockwarden rules benchmark — ${r.startedAt}`);
  L.push("");
  L.push(`Host: ${h.cpu ?? "?"} (${h.cpus} CPUs), kernel ${h.kernel}, bun ${h.bun}; load at start ${h.loadStart}, at end ${h.loadEnd}.`);
  L.push("");
  if (r.interrupted) L.push("**Interrupted: partial results.**", "");
  L.push(`Rule: \`${r.rule.name}\` (${r.rule.file}), subscribed to ${r.rule.on.join(", ")}.`);
  if (r.stream) {
    const s = r.stream;
    const p = (n: number): string => `${((n / s.total) * 100).toFixed(1)} %`;
    L.push("");
    L.push(
      `Events: ${s.total.toLocaleString("en-US")} synthetic per run (seed ${r.options.seed}), generated a chunk of ${r.chunk.toLocaleString("en-US")} at a time outside the timing: ` +
        `opened ${p(s.byType.opened)}, closed ${p(s.byType.closed)}, state-changed ${p(s.byType["state-changed"])}, counters ${p(s.byType.counters)}; ` +
        `TCP ${p(s.tcp)}, UDP ${p(s.udp)}, IPv6 ${p(s.ipv6)}, unowned ${p(s.unowned)}; ${s.processes} processes; at most ${s.pool} live sockets. ` +
        `Events of TCP connections to port 25: ${p(s.port25)}, ${p(s.port25NonMail)} from processes that are not mail servers.`,
    );
  }
  L.push("");
  L.push("## Events per second");
  L.push("");
  L.push(
    `Sandboxed: \`RuleSet.dispatch(chunk)\` with smtp-guard loaded from the bundled plugins, one call per chunk: the rule set encodes the events, ` +
      `runs the rule in QuickJS batch by batch, checks and resolves its actions. Plain JS: the handler of plugins/smtp-guard.ts imported into the host ` +
      `and called on the same event objects, right after the sandbox saw them. Each run is a fresh pass over the same stream; the warm-up pass is not in the statistics.`,
  );
  L.push("");
  L.push("| side | batch size | runs | events/run | median events/s | min | max | µs/event | events/CPU-s | warm-up events/s | closes | note |");
  L.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
  if (r.main) L.push(batchRow(r.main, "sandbox (QuickJS)"));
  if (r.hostSide && r.main) {
    const hr = r.hostSide;
    const cpuRate = spread(hr.runs.map((t) => (t.cpuMs > 0 ? (t.events * 1000) / t.cpuMs : 0)));
    L.push(
      `| plain JS (host) | – | ${hr.runs.length}/${r.main.plannedRuns} | ${r.main.eventsPerRun.toLocaleString("en-US")} | **${rate(hr.rate.median)}** | ${rate(hr.rate.min)} | ${rate(hr.rate.max)} | ${us(hr.rate.median)} | ${rate(cpuRate.median)} | ${r.main.warmup?.host ? rate(r.main.warmup.host.eventsPerSec) : "–"} | ${hr.runs[0]?.closes ?? "–"} | |`,
    );
  }
  L.push("");
  L.push(`**${ratioText(r)}**`);
  L.push("");
  if (r.closesAgree !== null && r.main?.runs[0]) {
    L.push(
      r.closesAgree
        ? `Actions agree: in every run the rule set accepted ${r.main.runs[0].sandbox.closes} closes from the sandbox, as many as the plain-JS rule took.`
        : `**Actions disagree** between the sandbox and plain JS (see the notes).`,
    );
    L.push("");
  }
  L.push(`Target: ${r.target.detail} — **${r.target.status.toUpperCase()}**`);
  L.push("");
  if (r.sweep.length) {
    L.push("### Batch size");
    L.push("");
    L.push(`Events per sandbox call (RuleSet's \`batchSize\`); the same stream, the same chunks.`);
    L.push("");
    L.push("| side | batch size | runs | events/run | median events/s | min | max | µs/event | events/CPU-s | warm-up events/s | closes | note |");
    L.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    const all = [...r.sweep, ...(r.main ? [r.main] : [])].sort((a, b) => a.batchSize - b.batchSize);
    for (const b of all) L.push(batchRow(b, "sandbox (QuickJS)"));
    L.push("");
  }
  L.push("## Memory per loaded rule");
  L.push("");
  if (r.memory) {
    const m = r.memory;
    const raw = m.raw;
    L.push(
      `${raw.copies} copies of smtp-guard, each compiled from its own file under its own name, loaded one after another into one RuleSet in a fresh process; ` +
        `resident set size (VmRSS) after a full collection.`,
    );
    L.push("");
    L.push("| figure | MiB |");
    L.push("|---|---:|");
    L.push(`| RSS before any rule | ${f1(raw.rssBaseline / MIB)} |`);
    L.push(`| first rule (with one-time costs: compiler, QuickJS module) | +${f1(m.firstRuleMiB)} |`);
    L.push(`| **each further rule** ((RSS after ${raw.copies} − after 1) / ${raw.copies - 1}) | **+${f2(m.perRuleMiB)}** |`);
    L.push(`| average over all ${raw.copies} ((RSS after ${raw.copies} − before) / ${raw.copies}) | +${f2(m.averageMiB)} |`);
    L.push(`| RSS with ${raw.copies} rules loaded | ${f1((raw.rssAfterEach[raw.copies - 1] ?? 0) / MIB)} |`);
    L.push(`| per rule, after each handled ${raw.eventsPerRule.toLocaleString("en-US")} events | +${f2(m.perRuleAfterEventsMiB)} more |`);
    L.push(`| RSS after the rule set is disposed | ${f1(raw.rssAfterDispose / MIB)} |`);
    L.push(`| WebAssembly memory of each sandbox, loaded (min–max) | ${f1(m.wasmMiB.min)}–${f1(m.wasmMiB.max)} |`);
    L.push(`| WebAssembly memory of each sandbox, after the events (min–max) | ${f1(m.wasmAfterEventsMiB.min)}–${f1(m.wasmAfterEventsMiB.max)} |`);
    L.push(`| WebAssembly memory, all ${raw.copies} sandboxes | ${f1(raw.wasmAfterEvents.reduce((a, b) => a + b, 0) / MIB)} |`);
    L.push("");
    L.push(`Compile and load time per copy: median ${f1(m.loadMs.median)} ms (min ${f1(m.loadMs.min)}, max ${f1(m.loadMs.max)}).`);
    L.push(
      `Each sandbox reserves a WebAssembly memory of that size, but only the pages QuickJS touches become resident, so the RSS cost per rule is lower than its WebAssembly memory.`,
    );
    L.push(`RSS after each load, MiB: ${raw.rssAfterEach.map((b) => f1(b / MIB)).join(", ")}.`);
  } else {
    L.push(`Not measured: ${r.memoryError ?? "skipped"}.`);
  }
  L.push("");
  L.push("## Where the time goes");
  L.push("");
  if (r.profile) {
    const p = r.profile;
    L.push(
      `${p.events.toLocaleString("en-US")} events (the start of the same stream) at batch size ${p.batchSize}; the ${pct(p.subscribedOnly.share)} of them that smtp-guard subscribes to are what is encoded and sent (${p.payloadBytesPerEvent.toFixed(0)} bytes per event sent), and every figure is per event of the stream; ` +
        `each stage timed alone, the lowest of ${p.repetitions} rounds taken over all stages in turn. ` +
        `Steps are computed from the process's CPU time (all threads, so the collector's work on other threads counts), which other load on the machine does not inflate as it does wall time; ` +
        `a step is the difference between neighbouring stages (small negative steps are noise).`,
    );
    L.push("");
    L.push("| stage | CPU µs/event | events/CPU-s | wall µs/event |");
    L.push("|---|---:|---:|---:|");
    for (const s of p.stages) {
      L.push(`| ${s.label} | ${s.usPerEvent.toFixed(2)} | ${rate(s.usPerEvent > 0 ? 1e6 / s.usPerEvent : null)} | ${(s.wallUsPerEvent ?? 0).toFixed(2)} |`);
    }
    L.push("");
    L.push("| step | CPU µs/event | share |");
    L.push("|---|---:|---:|");
    for (const s of p.steps) L.push(`| ${s.label} | ${s.usPerEvent.toFixed(2)} | ${pct(s.share)} |`);
    L.push(`| **total (RuleSet.dispatch)** | **${p.totalUsPerEvent.toFixed(2)}** | 100 % |`);
    L.push("");
    L.push(`The target of ${rate(TARGET_EVENTS_PER_SEC)} events/s leaves ${(1e6 / TARGET_EVENTS_PER_SEC).toFixed(1)} µs per event.`);
    const w = p.subscribedOnly;
    L.push("");
    L.push(
      `Subscriptions: the rule set sends a rule only the event types it subscribed to (${pct(w.share)} of this stream for smtp-guard). ` +
        `Encoding and dispatching those: ${w.usPerEvent.toFixed(2)} CPU µs per event of the stream; sending every event would cost ${w.allUsPerEvent.toFixed(2)} µs ` +
        `(${rate(w.usPerEvent > 0 ? 1e6 / w.usPerEvent : null)} against ${rate(w.allUsPerEvent > 0 ? 1e6 / w.allUsPerEvent : null)} events/CPU-s, before the rule set's own bookkeeping).`,
    );
  } else {
    L.push(r.profileNote ?? "Not profiled.");
  }
  if (r.notes.length) {
    L.push("");
    L.push("## Notes");
    L.push("");
    for (const n of r.notes) L.push(`- ${n}`);
  }
  L.push("");
  return L.join("\n");
}
