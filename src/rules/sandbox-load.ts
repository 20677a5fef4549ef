/**
 * Starting a rule's sandbox: a QuickJS module in its own WebAssembly instance over a fixed-size
 * memory, a runtime with its heap and stack limits and a module loader that knows only
 * "sockwarden", the control and lockdown scripts, the host helpers, and then the rule's own
 * module and definition. On any failure everything made so far is disposed and the failure is
 * a RuleError at the user's line (line 1 when nothing better is known).
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
import type { CompiledRule } from "./compile-rule.ts";
import { interruptAt, now } from "./guest-deadline.ts";
import { describeError } from "./guest-error.ts";
import { API_MODULE_SOURCE, CONTROL_SOURCE, HELPERS_GLOBAL, LOCKDOWN_SOURCE } from "./guest-prelude.ts";
import { hostHelpers } from "./host-helpers.ts";
import { MIN_WASM_BYTES, WASM_PAGE, type RuleInfo, type SandboxLimits } from "./sandbox-types.ts";

/**
 * In the compiled executable the default import of this CommonJS package is its exports object
 * ({ default: variant }). newVariant would copy that object, and the core's unwrapping would then
 * pick the inner variant and drop the options: the module made its own 2 GiB memory, and the
 * ceiling below bound nothing. Unwrapped here, the options reach the module wherever it runs.
 */
const BASE_VARIANT: typeof singlefileVariant =
  (singlefileVariant as { default?: typeof singlefileVariant }).default ?? singlefileVariant;

/** The control script's functions the host calls. */
export type ControlFunction = "dispatch" | "start" | "periodic" | "index" | "actions" | "probe" | "fits";

/** A loaded rule: what its sandbox holds. The handles are owned by whoever `build` makes. */
export interface LoadedRule {
  info: RuleInfo;
  module: QuickJSWASMModule;
  runtime: QuickJSRuntime;
  context: QuickJSContext;
  control: QuickJSHandle;
  functions: Record<ControlFunction, QuickJSHandle>;
  memory: WebAssembly.Memory;
}

/**
 * Loads `compiled` with its configured options. `build` makes the sandbox of what was loaded;
 * what it throws is a load failure too (it disposes what it took over before throwing).
 */
export async function loadRule<T>(
  compiled: CompiledRule, configuredOptions: unknown, limits: SandboxLimits, build: (loaded: LoadedRule) => T,
): Promise<T> {
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
    const control = unwrap(context, compiled, context.evalCode(CONTROL_SOURCE, "sockwarden-control.js"), "setup");
    owned.push(control);
    unwrap(context, compiled, context.evalCode(LOCKDOWN_SOURCE, "sockwarden-lockdown.js"), "setup").dispose();
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
    const boot = unwrap(context, compiled, context.evalCode(`import "sockwarden";`, "sockwarden-bootstrap.js", { type: "module" }), "setup");
    const booted = settle(context, boot);
    if (booted !== boot) booted.dispose();
    boot.dispose();

    deadline();
    const ns = unwrap(context, compiled, context.evalCode(compiled.code, compiled.file, { type: "module" }), "load", { line: 1, column: 1 });
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
    const infoHandle = unwrap(context, compiled, context.callFunction(setRule, control, def, configured), "load", at);
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
    return build({ info, module, runtime, context, control, functions, memory });
  } catch (err) {
    return fail(err);
  }
}

/** Unwraps a guest result; a guest error becomes a RuleError at the user's line. */
function unwrap(
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
