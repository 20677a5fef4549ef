/**
 * What a fuzz target is and the one property every target must keep: decoding any input either
 * returns or throws one of the project's named errors (a SockwardenError), and no single call
 * takes longer than a time limit. Anything else (a TypeError, a RangeError from a DataView, a
 * stack overflow, a slow path) is a counterexample, which fast-check then shrinks.
 *
 * A call that never returns cannot be caught here; the runner's watchdog (watchdog.ts) sees the
 * call counter this module keeps stop moving and reports the input to replay.
 */
import fc from "fast-check";
import { SockwardenError } from "../../src/errors.ts";

export interface FuzzTarget<T = unknown> {
  /** Short kebab-case name, as `--only` takes it. */
  name: string;
  /** The functions it feeds, for the runner's listing. */
  covers: string;
  input: fc.Arbitrary<T>;
  /** Feeds one input to the decoders; the return value is ignored. */
  decode(input: T): void;
}

/** Builds a target with its input type checked against its decode function. */
export function target<T>(t: FuzzTarget<T>): FuzzTarget<T> {
  return t;
}

/**
 * Feeds one input to several independent decoders: a named error from one is the expected outcome
 * for that decoder and does not stop the others; anything else is thrown at once.
 */
export function each(...calls: (() => unknown)[]): void {
  for (const call of calls) {
    try {
      call();
    } catch (err) {
      if (!(err instanceof SockwardenError)) throw err;
    }
  }
}

/** A call slower than this is a failure: on inputs of fuzz size every decoder answers in far less. */
export const DEFAULT_TIME_LIMIT_MS = 200;

/**
 * Progress, for the watchdog: slot CALLS counts calls made, slot FAILED_AT holds the index of the
 * first failing input plus one (0 while none failed). Backed by shared memory when the runner
 * hands some, so that another thread can watch it while this one is stuck in a call.
 */
export const CALLS = 0;
export const FAILED_AT = 1;
let progress: Int32Array<ArrayBufferLike> = new Int32Array(2);

export function shareProgress(memory: SharedArrayBuffer): void {
  progress = new Int32Array(memory, 0, 2);
}

export class FuzzFailure extends Error {
  override name = "FuzzFailure";
}

function describeThrown(err: unknown): string {
  if (err instanceof Error) {
    const frames = (err.stack ?? "").split("\n").slice(1, 6).join("\n");
    return `${err.constructor.name}: ${err.message}${frames ? `\n${frames}` : ""}`;
  }
  return `a non-Error value: ${typeof err} ${String(err)}`;
}

/** One call, timed; throws FuzzFailure when the outcome breaks the property. */
function callOnce<T>(t: FuzzTarget<T>, input: T): number {
  const start = performance.now();
  try {
    t.decode(input);
  } catch (err) {
    if (!(err instanceof SockwardenError)) {
      throw new FuzzFailure(`${t.name} threw something other than a named error: ${describeThrown(err)}`);
    }
  }
  return performance.now() - start;
}

/**
 * Checks one input. A slow call is tried twice more and judged by the fastest of the three, so
 * that a garbage-collection pause or a busy machine is not mistaken for a slow decoder.
 */
export function checkInput<T>(t: FuzzTarget<T>, input: T, timeLimitMs = DEFAULT_TIME_LIMIT_MS): void {
  const index = Atomics.add(progress, CALLS, 1);
  try {
    let fastest = callOnce(t, input);
    for (let retry = 0; retry < 2 && fastest > timeLimitMs; retry++) fastest = Math.min(fastest, callOnce(t, input));
    if (fastest > timeLimitMs) {
      throw new FuzzFailure(`${t.name} took ${fastest.toFixed(0)} ms on one input (limit ${timeLimitMs} ms)`);
    }
  } catch (err) {
    Atomics.compareExchange(progress, FAILED_AT, 0, index + 1);
    throw err;
  }
}

/** The property fast-check checks for a target. */
export function namedErrorsOnly<T>(t: FuzzTarget<T>, timeLimitMs = DEFAULT_TIME_LIMIT_MS): fc.IPropertyWithHooks<[T]> {
  return fc.property(t.input, (input) => checkInput(t, input, timeLimitMs));
}
