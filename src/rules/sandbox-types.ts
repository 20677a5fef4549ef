/**
 * What a rule's sandbox is given and gives back: its limits, what a rule says of itself when it
 * loads, and what a call returned. Kept apart so that the loader (sandbox-load.ts) and the
 * sandbox that runs calls (sandbox.ts) share them without importing each other.
 */
import type { OptionType } from "./rule-options.ts";

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

export const WASM_PAGE = 65536;
// The QuickJS build starts with 16 MiB of memory; a ceiling below that cannot be instantiated.
export const MIN_WASM_BYTES = 16 << 20;

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
  /**
   * The rule's `select` as the guest copied it (plain data, or null without one): a claim, checked
   * on the host (selector.ts) before anything is routed by it.
   */
  select?: unknown;
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
