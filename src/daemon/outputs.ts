/**
 * The daemon's outputs: the configured sinks behind one write, with bursts of identical alerts
 * folded. Kept apart from the sinks themselves so the daemon does not care how many there are.
 */
import { AlertFolder, SinkSet, createSink, parseSinkSpec, type SinkRecord } from "../actions/sinks/index.ts";
import type { Metrics } from "./metrics.ts";

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
}

/** Builds the sinks; a bad spec throws a UsageError before anything starts. */
export function createOutputs(specs: readonly string[], deps: OutputDependencies): Outputs {
  const parsed = specs.map((s) => parseSinkSpec(s));
  const report = (sink: string, message: string) => deps.warn(`${sink}: ${message}`);
  const sinks = new SinkSet(
    parsed.map((spec) => createSink(spec, { report, openLocalDatagram: deps.openLocalDatagram })),
    { report },
  );
  // Windows on a monotonic clock, summaries stamped with the wall clock.
  const folder = new AlertFolder({ emit: (records) => sinks.write(records), clock: () => performance.now(), wallClock: Date.now });
  const told = new Map<string, { dropped: number; at: number }>();
  const tellDrops = () => {
    const now = performance.now();
    for (const [name, s] of Object.entries(sinks.stats())) {
      const before = told.get(name) ?? { dropped: 0, at: started };
      if (s.dropped > before.dropped) {
        const secs = Math.max(1, Math.round((now - before.at) / 1000));
        deps.warn(`${name}: ${s.dropped - before.dropped} record(s) dropped in the last ${secs} s, ${s.dropped} in all${s.lastError ? ` (last error: ${s.lastError})` : ""}`);
        told.set(name, { dropped: s.dropped, at: now });
      }
    }
  };
  const started = performance.now();
  const timer = setInterval(tellDrops, Math.max(10, deps.dropReportMs ?? 60_000));
  (timer as { unref?: () => void }).unref?.();
  return {
    write(records) {
      folder.write(records);
    },
    describe(metrics) {
      for (const [name, s] of Object.entries(sinks.stats())) {
        metrics.set("sockwarden_sink_queue_depth", "Records waiting in a sink's queue", { sink: name }, s.queued);
        metrics.setCounter("sockwarden_sink_dropped_total", "Records a sink dropped (queue full, closed, or refused)", { sink: name }, s.dropped);
        metrics.setCounter("sockwarden_sink_failures_total", "Failure episodes of a sink", { sink: name }, s.failures);
        metrics.setCounter("sockwarden_sink_written_total", "Records a sink delivered", { sink: name }, s.written);
      }
      const f = folder.stats();
      for (const [k, v] of Object.entries(f)) {
        if (typeof v === "number") metrics.set("sockwarden_alert_folding", "Alert folding counters", { counter: k }, v);
      }
    },
    async close(timeoutMs) {
      clearInterval(timer);
      folder.close();
      await sinks.close(timeoutMs);
      tellDrops();
    },
  };
}
