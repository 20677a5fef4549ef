/**
 * One rule in its own QuickJS runtime, in its own WebAssembly instance over a fixed-size memory:
 * QuickJS's own memory limit is soft, and a fixed WebAssembly.Memory is what actually bounds how
 * much of the host a rule can take. Calls run under a deadline (the interrupt handler) and a
 * stack limit. The rule sees only copies of data, written by the host in QuickJS's binary object
 * format (guest-payload.ts) and decoded inside the sandbox; nothing of the host. This module
 * runs calls; sandbox-load.ts starts the sandbox and loads the rule.
 *
 * Every handle is owned and disposed; disposing a context while a handle lives would abort the
 * whole module.
 */
import type { QuickJSContext, QuickJSHandle, QuickJSRuntime, QuickJSWASMModule } from "quickjs-emscripten-core";
import { RuleError } from "../errors.ts";
import type { CompiledRule } from "./compile-rule.ts";
import { interruptAt, now } from "./guest-deadline.ts";
import { describeError } from "./guest-error.ts";
import { encodeProbe, PROBE_JSON } from "./guest-payload.ts";
import { loadRule, type ControlFunction } from "./sandbox-load.ts";
import {
  DEFAULT_LIMITS,
  MIN_WASM_BYTES,
  WASM_PAGE,
  type CallFailure,
  type DispatchResult,
  type GuestAction,
  type RawResult,
  type RuleInfo,
  type SandboxLimits,
} from "./sandbox-types.ts";

// Callers (the rule set, the runners, the tests) take the sandbox and its terms from one place.
export { DEFAULT_LIMITS, type CallFailure, type DispatchResult, type GuestAction, type RawResult, type RuleInfo, type SandboxLimits };

function parsed(r: RawResult): DispatchResult {
  return { actions: r.actionTexts.flatMap((t) => JSON.parse(t) as GuestAction[]), failures: r.failures };
}

export class RuleSandbox {
  private disposed = false;
  private broken = false;

  private constructor(
    readonly compiled: CompiledRule,
    readonly info: RuleInfo,
    private readonly module: QuickJSWASMModule,
    private readonly runtime: QuickJSRuntime,
    private readonly context: QuickJSContext,
    private readonly control: QuickJSHandle,
    private readonly functions: Record<ControlFunction, QuickJSHandle>,
    private readonly limits: SandboxLimits,
    readonly memory: WebAssembly.Memory,
  ) {}

  static async create(compiled: CompiledRule, configuredOptions: unknown, limits: SandboxLimits = DEFAULT_LIMITS): Promise<RuleSandbox> {
    return loadRule(compiled, configuredOptions, limits, (l) => {
      const sandbox = new RuleSandbox(compiled, l.info, l.module, l.runtime, l.context, l.control, l.functions, limits, l.memory);
      try {
        sandbox.checkFormat();
      } catch (err) {
        sandbox.dispose();
        throw err;
      }
      return sandbox;
    });
  }

  /** Runs the rule's handler over a batch of encoded events; a failing event does not stop the rest. */
  dispatch(payload: Uint8Array, count: number, maxFailures = Infinity): DispatchResult {
    return parsed(this.dispatchRaw(payload, count, maxFailures));
  }

  /** start(endpoints) or periodic(endpoints): one call with the encoded endpoint list. */
  call(hook: "start" | "periodic", payload: Uint8Array, at: number): DispatchResult {
    return parsed(this.callRaw(hook, payload, at));
  }

  /**
   * dispatch(), with the actions as the guest wrote them. `onRetry` is told when the handler
   * starts again after a failing event, with the deadline (on performance.now()) of that run.
   */
  dispatchRaw(payload: Uint8Array, count: number, maxFailures = Infinity, onRetry?: (deadline: number) => void): RawResult {
    return this.guard(() => this.runDispatch(payload, count, maxFailures, onRetry));
  }

  /** call(), with the actions as the guest wrote them. */
  callRaw(hook: "start" | "periodic", payload: Uint8Array, at: number): RawResult {
    return this.guard(() => this.runCall(hook, payload, at));
  }

  /**
   * QuickJS's memory limit does not bound bytes in this build (without malloc_usable_size it
   * counts 8 bytes per allocation), so the WebAssembly memory's ceiling is what stops a rule. At
   * the ceiling the glue's own allocations fail unchecked (a failed copy of the next payload is
   * written at address 0, over the module's data), and a trap leaves the module in an unknown
   * state: either way the sandbox is stopped for good and the failure is fatal for the rule.
   * What a call that ended at the ceiling returned is dropped, not trusted.
   */
  private guard(run: () => RawResult): RawResult {
    this.assertAlive();
    if (this.broken) return { actionTexts: [], failures: [] };
    let error: unknown = null;
    if (!this.atCeiling()) {
      try {
        const result = run();
        if (!this.atCeiling()) return result;
      } catch (err) {
        error = err;
      }
    }
    this.broken = true;
    const full = this.atCeiling();
    const message = full
      ? `ran out of memory: its sandbox reached its ceiling (${Math.round(this.memory.buffer.byteLength / (1 << 20))} MiB) and is stopped`
      : `its sandbox failed and is stopped: ${(error as Error)?.message ?? String(error)}`.slice(0, 500);
    return { actionTexts: [], failures: [{ index: -1, message, line: null, column: null, kind: full ? "memory" : "error", fatal: true }] };
  }

  private atCeiling(): boolean {
    return this.memory.buffer.byteLength + WASM_PAGE > Math.max(this.limits.wasmMemoryBytes, MIN_WASM_BYTES);
  }

  private memoryHeavy(): boolean {
    return this.memory.buffer.byteLength > MIN_WASM_BYTES;
  }

  /**
   * Copies a payload into the sandbox and decodes it there, in C. A rule whose memory is too full
   * for the payload or the objects misses the call: that is its memory failure, not the sandbox's.
   */
  private decode(payload: Uint8Array): QuickJSHandle | CallFailure {
    const full = (what: string): CallFailure =>
      ({ index: -1, message: `ran out of memory: ${what} did not fit into what is left of its memory`, line: null, column: null, kind: "memory" });
    // The copy is made by the module's malloc, and the glue writes to whatever address it gets:
    // a failed one writes at address 0, over the module. Room the memory can still grow into is
    // sure to be there; short of that, the guest first allocates (and frees) as much, which
    // fails cleanly, and the copy then gets the block that was just freed.
    const room = Math.max(this.limits.wasmMemoryBytes, MIN_WASM_BYTES) - this.memory.buffer.byteLength;
    if (payload.byteLength + WASM_PAGE > room && !this.fits(payload.byteLength)) {
      return full(`the payload (${Math.ceil(payload.byteLength / 1024)} KiB)`);
    }
    const whole = payload.byteOffset === 0 && payload.byteLength === payload.buffer.byteLength;
    const buffer = this.context.newArrayBuffer(whole ? payload.buffer : payload.slice().buffer);
    const value = this.context.decodeBinaryJSON(buffer);
    buffer.dispose();
    // Every payload is an object; anything else is the exception QuickJS raised while decoding.
    if (this.context.typeof(value) === "object") return value;
    value.dispose();
    return full("the decoded objects");
  }

  private fits(bytes: number): boolean {
    this.runtime.setInterruptHandler(interruptAt(now() + 100));
    const size = this.context.newNumber(bytes);
    const r = this.context.callFunction(this.functions.fits, this.control, size);
    size.dispose();
    if ("error" in r && r.error) {
      r.error.dispose();
      return false;
    }
    r.value.dispose();
    return true;
  }

  /** The host's writer and this QuickJS must agree on the binary format: checked once per sandbox. */
  private checkFormat(): void {
    const value = this.decode(encodeProbe());
    if (isFailure(value)) throw new RuleError(this.compiled.file, null, null, "sandbox setup failed: cannot decode the payload format");
    try {
      this.runtime.setInterruptHandler(interruptAt(now() + 1000));
      const r = this.context.callFunction(this.functions.probe, this.control, value);
      if ("error" in r && r.error) {
        r.error.dispose();
        throw new RuleError(this.compiled.file, null, null, "sandbox setup failed: the payload probe failed");
      }
      const echoed = this.context.getString(r.value);
      r.value.dispose();
      if (echoed !== PROBE_JSON) {
        throw new RuleError(this.compiled.file, null, null, "sandbox setup failed: this QuickJS reads the payload format differently");
      }
    } finally {
      value.dispose();
    }
  }

  private runDispatch(payload: Uint8Array, count: number, maxFailures: number, onRetry?: (deadline: number) => void): RawResult {
    const actions: string[] = [];
    const failures: CallFailure[] = [];
    if (!this.info.handle) return { actionTexts: actions, failures };
    let from = 0;
    const events = this.decode(payload);
    if (isFailure(events)) return { actionTexts: actions, failures: [events] };
    // The batch shares one deadline. A retry gets what is left of it, or one event's budget when
    // nothing is: an event that overruns cannot take the time of every event after it again
    // (that made a rule that loops on each event cost the square of the batch size).
    const batchDeadline = now() + Math.min(this.limits.callBudgetMs * count, 10_000);
    try {
      // Each retry starts after the event that failed; the bound is the batch size, and the
      // failures the caller still tolerates (a rule about to be quarantined stops here).
      for (let attempt = 0; attempt <= count && from < count && failures.length < maxFailures; attempt++) {
        const deadline = attempt === 0 ? batchDeadline : Math.max(batchDeadline, now() + this.limits.callBudgetMs);
        if (attempt > 0) onRetry?.(deadline);
        this.runtime.setInterruptHandler(interruptAt(deadline));
        const fromHandle = this.context.newNumber(from);
        const result = this.context.callFunction(this.functions.dispatch, this.control, events, fromHandle);
        fromHandle.dispose();
        if ("error" in result && result.error) {
          const index = this.readIndex();
          const failure = describeError(this.context, this.compiled, result.error, index, this.memoryHeavy());
          result.error.dispose();
          failures.push(failure);
          actions.push(this.takeActions());
          if (index < 0) break;
          from = index + 1;
          continue;
        }
        actions.push(this.context.getString(result.value));
        result.value.dispose();
        break;
      }
    } finally {
      events.dispose();
    }
    return { actionTexts: actions, failures };
  }

  private runCall(hook: "start" | "periodic", payload: Uint8Array, at: number): RawResult {
    if (!this.info[hook]) return { actionTexts: [], failures: [] };
    const list = this.decode(payload);
    if (isFailure(list)) return { actionTexts: [], failures: [list] };
    // Set after decoding: the memory check while decoding sets a deadline of its own.
    this.runtime.setInterruptHandler(interruptAt(now() + Math.max(this.limits.callBudgetMs * 10, 100)));
    const atHandle = this.context.newNumber(at);
    try {
      const result = this.context.callFunction(this.functions[hook], this.control, list, atHandle);
      if ("error" in result && result.error) {
        const failure = describeError(this.context, this.compiled, result.error, -1, this.memoryHeavy());
        result.error.dispose();
        return { actionTexts: [this.takeActions()], failures: [failure] };
      }
      const actions = this.context.getString(result.value);
      result.value.dispose();
      return { actionTexts: [actions], failures: [] };
    } finally {
      list.dispose();
      atHandle.dispose();
    }
  }

  private readIndex(): number {
    this.runtime.setInterruptHandler(interruptAt(now() + 100));
    const r = this.context.callFunction(this.functions.index, this.control);
    if ("error" in r && r.error) {
      r.error.dispose();
      return -1;
    }
    const n = this.context.getNumber(r.value);
    r.value.dispose();
    return n;
  }

  private takeActions(): string {
    this.runtime.setInterruptHandler(interruptAt(now() + 100));
    const r = this.context.callFunction(this.functions.actions, this.control);
    if ("error" in r && r.error) {
      r.error.dispose();
      return "[]";
    }
    const list = this.context.getString(r.value);
    r.value.dispose();
    return list;
  }

  /** Bytes of WebAssembly memory this rule holds (its share of the host's memory). */
  memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error(`rule ${this.info.name} was unloaded`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    // A broken module is left to the garbage collector: freeing into it could trap again.
    if (this.broken) return;
    for (const h of [...Object.values(this.functions), this.control]) if (h.alive) h.dispose();
    this.context.dispose();
    this.runtime.dispose();
    void this.module;
  }
}

function isFailure(x: QuickJSHandle | CallFailure): x is CallFailure {
  return "kind" in x;
}
