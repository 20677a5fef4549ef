// Where the time of a sandboxed dispatch goes. The same batches are pushed through a growing
// pipeline and each stage is timed on its own, by the process's CPU time (which other load on
// the machine does not inflate the way it does wall time) and by wall time; the differences
// between neighbouring stages' CPU times are the cost of what the later stage adds:
//
//   encode           host: encodeEvents(batch) (QuickJS's binary object format, process table)
//   copy-in          a bare QuickJS context over the same kind of fixed memory: newArrayBuffer
//                    (payload) and a call to a function that ignores it
//   decode           the same, with the payload decoded into objects inside QuickJS (C code)
//   dispatch, idle   the rule runtime's dispatcher with a rule subscribed to nothing: decode, the
//                    loop over events, the deadline, the empty result
//   no-op handler    a rule with an empty handler on smtp-guard's event types: process links,
//                    the per-event bookkeeping, the call
//   smtp-guard       the real rule through RuleSandbox.dispatch: its handler, act.close, the
//                    action rows back out and parsed on the host
//   rule set         RuleSet.dispatch end to end: encode + smtp-guard + known-endpoint table
//                    upkeep, batch slicing, action checking and resolution
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSContext,
  type QuickJSHandle,
} from "quickjs-emscripten-core";
import singlefileVariant from "@jitl/quickjs-singlefile-cjs-release-sync";
import { DEFAULT_LIMITS, type RuleSandbox } from "../../src/rules/sandbox.ts";
import { encodeEvents } from "../../src/rules/guest-payload.ts";
import { RuleSet } from "../../src/rules/rule-set.ts";
import { SMTP_GUARD as SMTP_GUARD_SOURCE } from "./rules-measure.ts";
import { runnersCpuMs } from "./child-usage.ts";
import type { EndpointEvent } from "../../src/monitor/events.ts";

export interface ProfileStage {
  key: string;
  label: string;
  /** Fastest wall time of the repetitions, whole stage over all profiled events. */
  ms: number;
  /** Lowest process CPU time (user + system) of the repetitions, ms. */
  cpuMs: number;
  /** Per event, from the CPU time: the figure the steps are computed from. */
  usPerEvent: number;
  wallUsPerEvent: number;
}

export interface ProfileStep {
  label: string;
  usPerEvent: number;
  /** Share of the rule set's total. */
  share: number;
}

export interface Profile {
  events: number;
  batchSize: number;
  repetitions: number;
  /** Payload bytes per event (encodeEvents output). */
  payloadBytesPerEvent: number;
  stages: ProfileStage[];
  steps: ProfileStep[];
  totalUsPerEvent: number;
  /**
   * Not part of the chain: encoding and dispatching to smtp-guard the events of the types it
   * subscribed to (what the rule set does), per event of the stream, next to the same work with
   * every event sent.
   */
  subscribedOnly: { share: number; usPerEvent: number; allUsPerEvent: number };
}

const WASM_PAGE = 65536;

/** A bare context made as the sandbox makes its own (same variant, fixed memory, limits). */
async function bareContext(): Promise<QuickJSContext> {
  const initial = 16 << 20;
  const memory = new WebAssembly.Memory({
    initial: initial / WASM_PAGE,
    maximum: Math.ceil(Math.max(DEFAULT_LIMITS.wasmMemoryBytes, initial) / WASM_PAGE),
  });
  const module = await newQuickJSWASMModuleFromVariant(newVariant(singlefileVariant, { wasmMemory: memory }));
  const runtime = module.newRuntime();
  runtime.setMemoryLimit(DEFAULT_LIMITS.memoryBytes);
  runtime.setMaxStackSize(DEFAULT_LIMITS.stackBytes);
  return runtime.newContext();
}

function evalFunction(ctx: QuickJSContext, code: string): QuickJSHandle {
  const r = ctx.evalCode(code, "bench-profile.js");
  if ("error" in r && r.error) {
    const msg = JSON.stringify(ctx.dump(r.error));
    r.error.dispose();
    throw new Error(`profile setup: ${msg}`);
  }
  return (r as { value: QuickJSHandle }).value;
}

export interface ProfileInput {
  events: readonly EndpointEvent[];
  batchSize: number;
  repetitions: number;
  /** Loads a rule from source text into a fresh rule set; returns its sandbox. */
  load: (name: string, source: string) => Promise<RuleSandbox>;
  smtpGuard: () => Promise<RuleSandbox>;
  log: (msg: string) => void;
}

export async function profileDispatch(input: ProfileInput): Promise<Profile> {
  const { events, batchSize, repetitions: reps } = input;
  const batches: EndpointEvent[][] = [];
  for (let i = 0; i < events.length; i += batchSize) batches.push(events.slice(i, i + batchSize));
  // What the rule set sends smtp-guard: only the events of the types it subscribed to.
  const subscribed = batches.map((b) => b.filter((e) => e.type === "opened" || e.type === "state-changed"));
  const subscribedCount = subscribed.reduce((n, b) => n + b.length, 0);
  const payloads = subscribed.map((b) => encodeEvents(b));
  const payloadBytes = payloads.reduce((n, p) => n + p.length, 0);

  const ctx = await bareContext();
  const owned: QuickJSHandle[] = [];
  const sandboxes: RuleSandbox[] = [];
  const full = new RuleSet({ batchSize });
  try {
    const ignore = evalFunction(ctx, "(function (payload) { return 0; })");
    owned.push(ignore);
    const callWith = (decode: boolean) => (): void => {
      for (const p of payloads) {
        const buffer = ctx.newArrayBuffer(p.buffer);
        const arg = decode ? ctx.decodeBinaryJSON(buffer) : buffer;
        if (decode) buffer.dispose();
        const r = ctx.callFunction(ignore, ctx.undefined, arg);
        arg.dispose();
        if ("error" in r && r.error) {
          r.error.dispose();
          throw new Error("profile: the bare context failed");
        }
        (r as { value: QuickJSHandle }).value.dispose();
      }
    };
    const sandboxed = (sb: RuleSandbox) => (): void => {
      for (let i = 0; i < payloads.length; i++) sb.dispatch(payloads[i]!, subscribed[i]!.length);
    };
    const idle = await input.load("bench-idle", `export default { name: "bench-idle", on: [], handle(event, act, ctx) {} };`);
    const noop = await input.load("bench-noop", `export default { name: "bench-noop", on: ["opened", "state-changed"], handle(event, act, ctx) {} };`);
    const guard = await input.smtpGuard();
    sandboxes.push(idle, noop, guard);
    await full.add(SMTP_GUARD_SOURCE);
    const all = events.slice();
    if (guard.info.on.join(",") !== "opened,state-changed") throw new Error(`profile: smtp-guard subscribes to ${guard.info.on.join(", ")}, not opened and state-changed`);

    const stages: { key: string; label: string; run: () => void | Promise<void>; times: number[]; cpu?: number[] }[] = [
      { key: "encode", label: "encode (host)", run: () => void subscribed.forEach((b) => encodeEvents(b)), times: [] },
      { key: "copy-in", label: "copy payload into QuickJS + call", run: callWith(false), times: [] },
      { key: "decode", label: "+ decode into objects in the guest (C)", run: callWith(true), times: [] },
      { key: "idle", label: "+ dispatcher, rule subscribed to nothing", run: sandboxed(idle), times: [] },
      { key: "noop", label: "+ event objects and a no-op handler", run: sandboxed(noop), times: [] },
      { key: "guard", label: "+ smtp-guard's handler and its actions", run: sandboxed(guard), times: [] },
      {
        key: "encode+guard", label: "(encode + smtp-guard, every event sent)", times: [],
        run: () => {
          for (const b of batches) guard.dispatch(encodeEvents(b), b.length);
        },
      },
      {
        key: "subscribed", label: "(encode + smtp-guard, subscribed event types sent)", times: [],
        run: () => {
          for (const b of subscribed) if (b.length) guard.dispatch(encodeEvents(b), b.length);
        },
      },
      {
        key: "ruleset", label: "RuleSet.dispatch end to end (rule in its runner process)", times: [],
        run: async () => {
          full.setKnownEndpoints([]);
          await full.dispatch(all);
        },
      },
    ];
    // One untimed round first; then rounds over all stages in turn, so that a busy moment of the
    // machine does not land on one stage only. The fastest round of each stage is kept: other
    // load only ever adds time.
    for (const st of stages) await st.run();
    for (let r = 0; r < reps; r++) {
      for (const st of stages) {
        Bun.gc(true);
        const c0 = process.cpuUsage();
        const r0 = runnersCpuMs(full);
        const t0 = performance.now();
        await st.run();
        st.times.push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        (st.cpu ??= []).push((c.user + c.system) / 1000 + (st.key === "ruleset" ? runnersCpuMs(full) - r0 : 0));
      }
    }
    const out: ProfileStage[] = stages.map((st) => {
      const ms = Math.min(...st.times);
      const cpuMs = Math.min(...(st.cpu ?? st.times));
      return { key: st.key, label: st.label, ms, cpuMs, usPerEvent: (cpuMs * 1000) / events.length, wallUsPerEvent: (ms * 1000) / events.length };
    });
    for (const st of out) input.log(`${st.label}: ${st.usPerEvent.toFixed(2)} µs/event of CPU, ${st.wallUsPerEvent.toFixed(2)} wall`);
    const chain = out.filter((st) => !st.label.startsWith("("));

    const us = (key: string): number => out.find((s) => s.key === key)!.usPerEvent;
    const total = us("ruleset");
    const step = (label: string, v: number): ProfileStep => ({ label, usPerEvent: v, share: total > 0 ? v / total : 0 });
    const steps: ProfileStep[] = [
      step("encode events on the host (binary object format)", us("encode")),
      step("copy the payload into the sandbox and call", us("copy-in")),
      step("decode into event, endpoint and process objects (QuickJS, C)", us("decode") - us("copy-in")),
      step("dispatcher: loop, deadline, empty result", us("idle") - us("decode")),
      step("process links, bookkeeping, no-op handler call", us("noop") - us("idle")),
      step("smtp-guard handler + act.close + action rows out and parsed", us("guard") - us("noop")),
      step("rule set: known endpoints, slicing, action checking", total - us("guard") - us("encode")),
    ];
    return {
      events: events.length,
      batchSize,
      repetitions: reps,
      payloadBytesPerEvent: payloadBytes / Math.max(1, subscribedCount),
      stages: chain,
      steps,
      totalUsPerEvent: total,
      subscribedOnly: { share: subscribedCount / events.length, usPerEvent: us("subscribed"), allUsPerEvent: us("encode+guard") },
    };
  } finally {
    for (const h of owned) if (h.alive) h.dispose();
    const rt = ctx.runtime;
    ctx.dispose();
    rt.dispose();
    for (const sb of sandboxes) sb.dispose();
    full.dispose();
  }
}
