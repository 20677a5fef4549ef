// Throughput passes: one pass feeds the synthetic stream, a chunk (one refresh's worth) at a
// time, to RuleSet.dispatch and, right after, the same event objects to the plain-JS rule.
// Generating the events is not timed; each side's time is the sum over chunks of its own calls.
import os from "node:os";
import { RuleSet } from "../../src/rules/rule-set.ts";
import type { RuleReport } from "../../src/model/rule-action.ts";
import { EventStream, type EventMix } from "./rules-events.ts";
import { runHostRule, type HostRule } from "./rules-host.ts";
import { runnersCpuMs } from "./child-usage.ts";

export interface PassTiming {
  events: number;
  /** Wall time of the measured calls, ms. */
  ms: number;
  /** Process CPU (user + system, all threads, so the collector's too) during those calls, ms. */
  cpuMs: number;
  eventsPerSec: number;
  /** Close actions the rule took (accepted by the rule set, for the sandbox). */
  closes: number;
  actions: number;
}

export interface PassResult {
  sandbox: PassTiming;
  host: PassTiming | null;
  /** Reports the rule set made during the pass (rejected actions, failures), by kind. */
  reports: Record<string, number>;
  firstReport: string | null;
  loadavg: string;
}

export const SMTP_GUARD = { kind: "plugin", name: "smtp-guard", label: "plugin:smtp-guard" } as const;

export class Interrupted extends Error {
  constructor() {
    super("interrupted");
  }
}

export interface PassOptions {
  rules: RuleSet;
  /** Collects the rule set's reports; reset at the start of each pass. */
  reports: RuleReport[];
  events: number;
  chunk: number;
  seed: number;
  host: HostRule | null;
  /** Checked between chunks. */
  stop: () => boolean;
}

function timing(events: number, ms: number, cpuMs: number, closes: number, actions: number): PassTiming {
  return { events, ms, cpuMs, eventsPerSec: ms > 0 ? (events * 1000) / ms : 0, closes, actions };
}

export function loadavg(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(" ");
}

/** One pass; `mix` describes the events it fed (the same for every pass with one seed and count). */
export async function runPass(o: PassOptions): Promise<{ result: PassResult; mix: EventMix }> {
  const stream = new EventStream(o.seed);
  o.rules.setKnownEndpoints([]);
  o.reports.length = 0;
  Bun.gc(true);
  let sMs = 0;
  let sCpu = 0;
  let sCloses = 0;
  let sActions = 0;
  let hMs = 0;
  let hCloses = 0;
  let hActions = 0;
  let hCpu = 0;
  for (let done = 0; done < o.events; ) {
    if (o.stop()) throw new Interrupted();
    const n = Math.min(o.chunk, o.events - done);
    const events = stream.next(n);
    const c0 = process.cpuUsage();
    const r0 = runnersCpuMs(o.rules);
    const t0 = performance.now();
    const actions = await o.rules.dispatch(events);
    sMs += performance.now() - t0;
    const c = process.cpuUsage(c0);
    // The rules run in their own processes: their CPU counts too (in clock ticks, so it is
    // exact only summed over many chunks).
    sCpu += (c.user + c.system) / 1000 + (runnersCpuMs(o.rules) - r0);
    sActions += actions.length;
    for (const a of actions) if (a.action === "close") sCloses++;
    if (o.host) {
      const hc0 = process.cpuUsage();
      const h = runHostRule(o.host, events);
      const hc = process.cpuUsage(hc0);
      hMs += h.ms;
      // The host loop is far shorter than a clock tick of CPU accounting; its CPU is only a sum.
      hCpu += (hc.user + hc.system) / 1000;
      hCloses += h.closes;
      hActions += h.actions;
    }
    done += n;
  }
  const reports: Record<string, number> = {};
  for (const r of o.reports) reports[r.kind] = (reports[r.kind] ?? 0) + 1;
  const first = o.reports[0];
  const result: PassResult = {
    sandbox: timing(o.events, sMs, sCpu, sCloses, sActions),
    host: o.host ? timing(o.events, hMs, hCpu, hCloses, hActions) : null,
    reports,
    firstReport: first ? `${first.kind}: ${first.message}` : null,
    loadavg: loadavg(),
  };
  return { result, mix: stream.mix };
}

/** The batch size a RuleSet uses when none is given (read from an instance, so it stays true). */
export function defaultBatchSize(): number {
  const rules = new RuleSet();
  const size = (rules as unknown as { batchSize?: unknown }).batchSize;
  rules.dispose();
  return typeof size === "number" && size > 0 ? size : 200;
}
