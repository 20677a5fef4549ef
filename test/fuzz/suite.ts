/**
 * The fuzz properties as Vitest tests: each target with a small number of inputs, so every test
 * run exercises them (`npm run fuzz` is the million-input job). FUZZ_RUNS and FUZZ_SEED override
 * the count and the seed; a failure prints the seed and path that replay it.
 */
import { afterAll, test } from "vitest";
import fc from "fast-check";
import { namedErrorsOnly, type FuzzTarget } from "./target.ts";
import { removeScratch } from "./scratch.ts";

const RUNS = Number(process.env.FUZZ_RUNS ?? 2_000);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/**
 * No bound per input here: on a busy machine one input past a bound failed the property, and
 * fast-check's shrinking, running it again and again, then passed the test's own timeout (62 s,
 * seen once). A parser that hangs still fails by that timeout; the time per input is the fuzz
 * job's to judge (its 200 ms bound, `npm run fuzz`).
 */
const TIME_LIMIT_MS = Number.POSITIVE_INFINITY;

export function fuzzTests(targets: readonly FuzzTarget<never>[]): void {
  afterAll(removeScratch);
  for (const t of targets) {
    test(`${t.name}: every input decodes or throws a named error`, () => {
      fc.assert(namedErrorsOnly(t, TIME_LIMIT_MS), {
        numRuns: RUNS,
        // The error in the report itself, not only as its cause: it says which error class came out.
        includeErrorInReport: true,
        ...(SEED === undefined ? {} : { seed: SEED }),
      });
    });
  }
}
