/**
 * What a rule threw, as the host reports it: a time-out and a lack of memory told apart from the
 * rule's own errors (they are counted and acted on differently), and the position mapped back
 * to the rule's own source from the compiled code's stack.
 */
import type { QuickJSContext, QuickJSHandle } from "quickjs-emscripten-core";
import type { CompiledRule } from "./compile-rule.ts";
import type { CallFailure } from "./sandbox-types.ts";

/**
 * `error` is the caller's and stays alive. `index` is the failing event's in its batch (-1 for
 * a start or periodic call); `memoryHeavy` says the rule's memory has grown past its start.
 */
export function describeError(context: QuickJSContext, compiled: CompiledRule, error: QuickJSHandle, index: number, memoryHeavy = false): CallFailure {
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
