/**
 * The daemon's outputs: the configured sinks behind one write, with bursts of identical alerts
 * folded. Kept apart from the sinks themselves so the daemon does not care how many there are.
 *
 * What the outputs hold is bounded in bytes (the folder and each sink's queue), and what a sink
 * gives up on is never lost without a word: it is counted in the metrics by reason, its start is
 * told at once, and the counts are told periodically, on stderr and to the other sinks (a sink
 * that drops records cannot be relied on to carry the news of it).
 */
import { AlertFolder, DROP_REASONS, SinkSet, byteText, createSink, parseSinkSpec, type DropReason, type SinkRecord, type SinkStats } from "../outputs/index.ts";
import type { Metrics } from "./metrics.ts";
import { METRICS } from "./metric-catalogue.ts";

export interface Outputs {
  write(records: SinkRecord[]): void;
  /** Adds queue depth, drops and failures of each sink to the metrics. */
  describe(metrics: Metrics): void;
  close(timeoutMs: number): Promise<void>;
}

export interface OutputDependencies {
  warn: (message: string) => void;
  openLocalDatagram?: (path: string) => { send(data: Uint8Array): void; close(): void };
  /**
   * Records a sink dropped are told as one count this often, not one line each (default 60 s;
   * test seam). A sink tells the start of each failure episode itself.
   */
  dropReportMs?: number;
  /** Bytes the alert folder may hold (default 8 MiB; test seam). */
  foldBytes?: number;
  /** Network sinks keep their queue on disk under it, across restarts (none: memory only). */
  stateDir?: string;
  /** The platform's processStartTime, for the spools' lock files. */
  processStartTime?: (pid: number) => string;
}

/**
 * `outcome` of the records that tell the other sinks about a sink: the start of a problem, and
 * the periodic count of what it dropped. Scripts reading a sink can tell them from the rest.
 */
export const SINK_PROBLEM_OUTCOME = "sink-problem";
export const SINK_DROPPED_OUTCOME = "sink-dropped";

interface Told {
  dropped: number;
  by: Record<DropReason, number>;
  at: number;
}

/** Builds the sinks; a bad spec throws a UsageError before anything starts. */
export function createOutputs(specs: readonly string[], deps: OutputDependencies): Outputs {
  const parsed = specs.map((s) => parseSinkSpec(s));
  let closing = false;
  // Lines for the other sinks wait for the current write to finish: a sink tells of a problem
  // from inside its own write, and the others must not be written to from within it.
  let forward: { sink: string; record: SinkRecord }[] = [];
  const tellOthers = (sink: string, message: string, outcome: string) => {
    if (closing) return;
    forward.push({ sink, record: { time: new Date().toISOString(), kind: "report", severity: "warning", outcome, message } });
    if (forward.length === 1) queueMicrotask(sendForwarded);
  };
  const sendForwarded = () => {
    const lines = forward;
    forward = [];
    if (closing) return;
    for (const { sink, record } of lines) sinks.writeExcept(sink, [record]);
  };
  const report = (sink: string, message: string) => {
    const line = `${sink}: ${message}`;
    deps.warn(line);
    tellOthers(sink, line, SINK_PROBLEM_OUTCOME);
  };
  const sinks = new SinkSet(
    parsed.map((spec) => createSink(spec, { report, openLocalDatagram: deps.openLocalDatagram, stateDir: deps.stateDir, processStartTime: deps.processStartTime, note: (sink, m) => deps.warn(`${sink}: ${m}`) })),
    { report },
  );
  // Windows on a monotonic clock, summaries stamped with the wall clock.
  const folder = new AlertFolder({ emit: (records) => sinks.write(records), clock: () => performance.now(), wallClock: Date.now, maxBytes: deps.foldBytes });
  const told = new Map<string, Told>();
  const started = performance.now();
  const tellDrops = () => {
    const now = performance.now();
    for (const [name, s] of Object.entries(sinks.stats())) {
      const before = told.get(name) ?? { dropped: 0, by: { overflow: 0, failed: 0, closing: 0 }, at: started };
      if (s.dropped <= before.dropped) continue;
      const secs = Math.max(1, Math.round((now - before.at) / 1000));
      const why = DROP_REASONS.filter((r) => s.droppedBy[r] > before.by[r]).map((r) => `${s.droppedBy[r] - before.by[r]} ${reasonText(r, s)}`);
      const line = `${name}: ${s.dropped - before.dropped} record(s) dropped in the last ${secs} s, ${s.dropped} in all${why.length ? `: ${why.join("; ")}` : ""}`;
      deps.warn(line);
      tellOthers(name, line, SINK_DROPPED_OUTCOME);
      told.set(name, { dropped: s.dropped, by: { ...s.droppedBy }, at: now });
    }
  };
  const timer = setInterval(tellDrops, Math.max(10, deps.dropReportMs ?? 60_000));
  (timer as { unref?: () => void }).unref?.();
  return {
    write(records) {
      folder.write(records);
    },
    describe(metrics) {
      for (const [name, s] of Object.entries(sinks.stats())) {
        metrics.set(METRICS.sinkQueueDepth, { sink: name }, s.queued);
        metrics.set(METRICS.sinkQueueBytes, { sink: name }, s.queuedBytes);
        metrics.set(METRICS.sinkQueueBytesLimit, { sink: name }, s.maxQueuedBytes);
        for (const reason of DROP_REASONS) {
          metrics.setCounter(METRICS.sinkDropped, { sink: name, reason }, s.droppedBy[reason]);
        }
        metrics.setCounter(METRICS.sinkFailures, { sink: name }, s.failures);
        metrics.setCounter(METRICS.sinkWritten, { sink: name }, s.written);
        if (s.spool) {
          metrics.set(METRICS.sinkSpoolBytes, { sink: name }, s.spool.bytes);
          metrics.setCounter(METRICS.sinkSpoolRestored, { sink: name }, s.spool.restored);
          metrics.setCounter(METRICS.sinkSpoolTorn, { sink: name }, s.spool.torn);
        }
      }
      const f = folder.stats();
      for (const [k, v] of Object.entries(f)) {
        if (typeof v === "number") metrics.set(METRICS.alertFolding, { counter: k }, v);
      }
    },
    async close(timeoutMs) {
      clearInterval(timer);
      folder.close();
      // What the others are told about last goes out before they close.
      sendForwarded();
      closing = true;
      await sinks.close(timeoutMs);
      tellDrops();
    },
  };
}

function reasonText(reason: DropReason, s: SinkStats): string {
  switch (reason) {
    case "overflow":
      return `with its queue full (bound ${byteText(s.maxQueuedBytes)})`;
    case "failed":
      return `not delivered${s.lastError ? ` (last error: ${s.lastError})` : ""}`;
    case "closing":
      return "left when closing";
  }
}
