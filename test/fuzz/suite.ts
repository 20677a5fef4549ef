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
/** Looser than the job's 200 ms: test files share a busy machine with others. */
const TIME_LIMIT_MS = 1_000;

export function fuzzTests(targets: readonly FuzzTarget<never>[]): void {
  afterAll(removeScratch);
  for (const t of targets) {
    test(`${t.name}: every input decodes or throws a named error, each within ${TIME_LIMIT_MS} ms`, () => {
      fc.assert(namedErrorsOnly(t, TIME_LIMIT_MS), {
        numRuns: RUNS,
        // The error in the report itself, not only as its cause: it says which error class came out.
        includeErrorInReport: true,
        ...(SEED === undefined ? {} : { seed: SEED }),
      });
    });
  }
}
