/**
 * One rule in its own QuickJS runtime, in its own WebAssembly instance over a fixed-size memory:
 * QuickJS's own memory limit is soft, and a fixed WebAssembly.Memory is what actually bounds how
 * much of the host a rule can take. Calls run under a deadline (the interrupt handler) and a
 * stack limit. The rule sees only copies of data, written by the host in QuickJS's binary object
 * format (guest-payload.ts) and decoded inside the sandbox; nothing of the host.
 *
 * Every handle is owned and disposed; disposing a context while a handle lives would abort the
 * whole module.
 */
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSRuntime,
  type QuickJSWASMModule,
} from "quickjs-emscripten-core";
import singlefileVariant from "@jitl/quickjs-singlefile-cjs-release-sync";
import { RuleError } from "../errors.ts";
import { hasControlCharacters } from "../text/escape-control.ts";
import { API_MODULE_SOURCE, CONTROL_SOURCE, HELPERS_GLOBAL, LOCKDOWN_SOURCE } from "./guest-source.ts";
import type { CompiledRule } from "./compile-rule.ts";
import type { OptionType } from "./rule-options.ts";
import { hostHelpers } from "./host-helpers.ts";
import { encodeProbe, PROBE_JSON } from "./guest-payload.ts";

export interface SandboxLimits {
  /** QuickJS heap limit (bytes). */
  memoryBytes: number;
  /** Ceiling of the WebAssembly memory the runtime lives in (bytes); bounds host memory. */
  wasmMemoryBytes: number;
  stackBytes: number;
  /** Time one event (or one start/periodic call) may take, ms. */
  callBudgetMs: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  memoryBytes: 16 << 20,
  wasmMemoryBytes: 48 << 20,
  stackBytes: 256 << 10,
  callBudgetMs: 50,
};

export interface RuleInfo {
  name: string;
  description: string;
  on: string[];
  every: number;
  handle: boolean;
  start: boolean;
  periodic: boolean;
  /** The shape of the rule's option defaults, as the guest describes them (checked on the host). */
  optionTypes?: OptionType;
}

/** Raw action rows as the guest recorded them; validated by the caller. */
export type GuestAction = unknown[];

export interface CallFailure {
  /** Index of the event that failed in the batch, or -1 for start/periodic. */
  index: number;
  message: string;
  /** Position in the user's source, when the error's stack names one. */
  line: number | null;
  column: number | null;
  kind: "error" | "timeout" | "memory";
  /** The sandbox cannot run again: the rule should be stopped now. */
  fatal?: boolean;
}

export interface DispatchResult {
  actions: GuestAction[];
  failures: CallFailure[];
}

/**
 * What a call returned as the guest wrote it: each text a JSON list of action rows. A runner
 * passes these on unparsed; the host parses and checks them.
 */
export interface RawResult {
  actionTexts: string[];
  failures: CallFailure[];
}

function parsed(r: RawResult): DispatchResult {
  return { actions: r.actionTexts.flatMap((t) => JSON.parse(t) as GuestAction[]), failures: r.failures };
}

/**
 * In the compiled executable the default import of this CommonJS package is its exports object
 * ({ default: variant }). newVariant would copy that object, and the core's unwrapping would then
 * pick the inner variant and drop the options: the module made its own 2 GiB memory, and the
 * ceiling below bound nothing. Unwrapped here, the options reach the module wherever it runs.
 */
const BASE_VARIANT: typeof singlefileVariant =
  (singlefileVariant as { default?: typeof singlefileVariant }).default ?? singlefileVariant;

const WASM_PAGE = 65536;
// The QuickJS build starts with 16 MiB of memory; a ceiling below that cannot be instantiated.
const MIN_WASM_BYTES = 16 << 20;

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
    private readonly functions: Record<"dispatch" | "start" | "periodic" | "index" | "actions" | "probe" | "fits", QuickJSHandle>,
    private readonly limits: SandboxLimits,
    readonly memory: WebAssembly.Memory,
  ) {}

  static async create(compiled: CompiledRule, configuredOptions: unknown, limits: SandboxLimits = DEFAULT_LIMITS): Promise<RuleSandbox> {
    const wasmBytes = Math.max(limits.wasmMemoryBytes, MIN_WASM_BYTES);
    const memory = new WebAssembly.Memory({ initial: MIN_WASM_BYTES / WASM_PAGE, maximum: Math.ceil(wasmBytes / WASM_PAGE) });
    let module: QuickJSWASMModule;
    try {
      module = await newQuickJSWASMModuleFromVariant(newVariant(BASE_VARIANT, { wasmMemory: memory }));
      // The memory must be the one passed: it is what bounds the rule's share of the host.
      if (module.getWasmMemory() !== memory) throw new Error("the sandbox did not take its fixed memory");
    } catch (err) {
      throw new RuleError(compiled.file, null, null, `cannot start the sandbox: ${(err as Error).message}`);
    }
    const runtime = module.newRuntime();
    runtime.setMemoryLimit(limits.memoryBytes);
    runtime.setMaxStackSize(limits.stackBytes);
    runtime.setModuleLoader((name) => {
      if (name === "sockwarden") return API_MODULE_SOURCE;
      return { error: new Error(`rules can import only "sockwarden", not "${name}"`) };
    });
    const context = runtime.newContext();
    const owned: QuickJSHandle[] = [];
    const fail = (err: unknown): never => {
      try {
        for (const h of owned) if (h.alive) h.dispose();
        if (context.alive) context.dispose();
        if (runtime.alive) runtime.dispose();
      } catch {
        // The module broke (its memory is at the ceiling); it goes with the garbage collector.
        if (memory.buffer.byteLength + WASM_PAGE > wasmBytes) err = new RuleError(compiled.file, 1, 1, "ran out of memory while loading");
      }
      // Without a better place, a load failure is the module's: line 1.
      throw err instanceof RuleError ? err : new RuleError(compiled.file, 1, 1, err instanceof Error ? err.message : String(err));
    };
    const deadline = () => runtime.setInterruptHandler(interruptAt(now() + Math.max(limits.callBudgetMs * 20, 1000)));
    try {
      deadline();
      const control = RuleSandbox.unwrap(context, compiled, context.evalCode(CONTROL_SOURCE, "sockwarden-control.js"), "setup");
      owned.push(control);
      RuleSandbox.unwrap(context, compiled, context.evalCode(LOCKDOWN_SOURCE, "sockwarden-lockdown.js"), "setup").dispose();
      // Helpers go onto a temporary global that the API module removes as it loads; the
      // bootstrap import makes that happen before any rule code can look.
      const helpers = context.newObject();
      owned.push(helpers);
      for (const [name, fn] of Object.entries(hostHelpers())) {
        const h = context.newFunction(name, (...args) => {
          const values = args.map((a) => context.dump(a));
          const result = (fn as (...a: unknown[]) => unknown)(...values);
          if (typeof result === "boolean") return result ? context.true : context.false;
          if (typeof result === "string") return context.newString(result);
          if (typeof result === "number") return context.newNumber(result);
          return context.null;
        });
        context.setProp(helpers, name, h);
        h.dispose();
      }
      context.setProp(context.global, HELPERS_GLOBAL, helpers);
      helpers.dispose();
      owned.splice(owned.indexOf(helpers), 1);
      const boot = RuleSandbox.unwrap(context, compiled, context.evalCode(`import "sockwarden";`, "sockwarden-bootstrap.js", { type: "module" }), "setup");
      const booted = settle(context, boot);
      if (booted !== boot) booted.dispose();
      boot.dispose();

      deadline();
      const ns = RuleSandbox.unwrap(context, compiled, context.evalCode(compiled.code, compiled.file, { type: "module" }), "load", { line: 1, column: 1 });
      owned.push(ns);
      const exportsHandle = settle(context, ns);
      const def = context.getProp(exportsHandle, "default");
      if (exportsHandle !== ns) exportsHandle.dispose();
      owned.push(def);
      const setRule = context.getProp(control, "setRule");
      owned.push(setRule);
      const configured = context.newString(JSON.stringify(configuredOptions ?? {}));
      owned.push(configured);
      // What the definition gets wrong is reported at its `export default`.
      const at = compiled.exportAt ?? { line: 1, column: 1 };
      const infoHandle = RuleSandbox.unwrap(context, compiled, context.callFunction(setRule, control, def, configured), "load", at);
      const info = JSON.parse(context.getString(infoHandle)) as RuleInfo;
      infoHandle.dispose();
      if (hasControlCharacters(info.name)) throw new RuleError(compiled.file, at.line, at.column, "a rule's name must not contain control characters");
      for (const h of [configured, setRule, def, ns]) h.dispose();
      owned.length = 0;
      owned.push(control);
      const functions = {
        dispatch: context.getProp(control, "dispatch"),
        start: context.getProp(control, "start"),
        periodic: context.getProp(control, "periodic"),
        index: context.getProp(control, "index"),
        actions: context.getProp(control, "actions"),
        probe: context.getProp(control, "probe"),
        fits: context.getProp(control, "fits"),
      };
      const sandbox = new RuleSandbox(compiled, info, module, runtime, context, control, functions, limits, memory);
      try {
        sandbox.checkFormat();
      } catch (err) {
        sandbox.dispose();
        throw err;
      }
      return sandbox;
    } catch (err) {
      return fail(err);
    }
  }

  /** Unwraps a guest result; a guest error becomes a RuleError at the user's line. */
  private static unwrap(
    context: QuickJSContext, compiled: CompiledRule, result: ReturnType<QuickJSContext["evalCode"]>, phase: string,
    fallback: { line: number; column: number } | null = null,
  ): QuickJSHandle {
    if ("error" in result && result.error) {
      const f = describeError(context, compiled, result.error, -1);
      result.error.dispose();
      if (f.line === null && fallback) ({ line: f.line, column: f.column } = fallback);
      throw new RuleError(compiled.file, f.line, f.column, `${phase === "setup" ? "sandbox setup failed: " : ""}${f.message}`);
    }
    return (result as { value: QuickJSHandle }).value;
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

/**
 * Deadlines follow the monotonic clock: a wall clock set back (NTP, an operator) must not stall
 * the interrupt, nor one set forward cut a call short.
 */
const now = (): number => performance.now();

function interruptAt(deadline: number): () => boolean {
  return () => now() > deadline;
}

function isFailure(x: QuickJSHandle | CallFailure): x is CallFailure {
  return "kind" in x;
}

/** A module evaluation may return a promise for its namespace (top-level await); settle it. */
function settle(context: QuickJSContext, handle: QuickJSHandle): QuickJSHandle {
  if (context.typeof(handle) !== "object") return handle;
  const state = context.getPromiseState(handle);
  if (state.type === "fulfilled") {
    if (state.notAPromise) return handle;
    return state.value;
  }
  if (state.type === "rejected") {
    const msg = context.dump(state.error);
    state.error.dispose();
    throw new Error(typeof msg === "object" && msg && "message" in msg ? String((msg as { message: unknown }).message) : String(msg));
  }
  // Pending: run queued jobs once (a rule's top level must not wait on anything).
  const jobs = context.runtime.executePendingJobs(1000);
  if (jobs.error) {
    const f = context.dump(jobs.error);
    if (jobs.error.alive) jobs.error.dispose();
    const message = f && typeof f === "object" && "message" in f ? String((f as { message: unknown }).message) : String(f);
    throw new Error(`a job queued by the rule's top level failed: ${/interrupted/.test(message) ? "it took longer than its time budget" : message.slice(0, 200)}`);
  }
  const again = context.getPromiseState(handle);
  if (again.type === "fulfilled") return again.notAPromise ? handle : again.value;
  throw new Error("a rule's top level must not wait for anything");
}

function describeError(context: QuickJSContext, compiled: CompiledRule, error: QuickJSHandle, index: number, memoryHeavy = false): CallFailure {
  let dumped: unknown;
  // dump() disposes a promise it is given; the caller owns `error`, so it gets a copy (a rule
  // that threw a promise made the caller's dispose throw in the host).
  const copy = error.dup();
  try {
    dumped = context.dump(copy);
  } catch {
    dumped = "unknown error";
  } finally {
    if (copy.alive) copy.dispose();
  }
  let name = "Error";
  let message: string;
  let stack = "";
  if (dumped && typeof dumped === "object") {
    const d = dumped as { name?: unknown; message?: unknown; stack?: unknown };
    name = typeof d.name === "string" ? d.name : "Error";
    message = typeof d.message === "string" ? d.message : safeString(dumped);
    stack = typeof d.stack === "string" ? d.stack : "";
  } else {
    // A thrown non-error (a string, a number, undefined).
    name = "thrown value";
    message = safeString(dumped);
  }
  // QuickJS throws null when it cannot even allocate the "out of memory" error; a rule whose
  // WebAssembly memory has grown past its initial size is taken to be in that case.
  const kind: CallFailure["kind"] =
    name === "InternalError" && /interrupted/.test(message) ? "timeout"
    : /out of memory/.test(message) || (dumped === null && memoryHeavy) ? "memory" : "error";
  let line: number | null = null;
  let column: number | null = null;
  const escaped = compiled.file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const m = new RegExp(`${escaped}:(\\d+)(?::(\\d+))?`).exec(stack);
  if (m) {
    const mapped = compiled.lines.original(Number(m[1]), Number(m[2] ?? 1));
    if (mapped) ({ line, column } = mapped);
  }
  const text = kind === "timeout" ? "took longer than its time budget" : kind === "memory" ? "ran out of memory" : `${name}: ${message}`;
  return { index, message: text.slice(0, 500), line, column, kind };
}

function safeString(v: unknown): string {
  try {
    return typeof v === "string" ? v : JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
