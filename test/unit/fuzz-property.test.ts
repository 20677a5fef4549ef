/** The fuzz property itself: what passes, what fails, and how a failure reads. */
import { describe, expect, test } from "vitest";
import fc from "fast-check";
import { checkInput, each, namedErrorsOnly, target } from "../fuzz/target.ts";
import { DecodeError, UsageError } from "../../src/errors.ts";
import { mutatedBytes, mutatedText } from "../fuzz/mutate.ts";

describe("the property", () => {
  test("returning and throwing a named error both pass", () => {
    const t = target({
      name: "t",
      covers: "",
      input: fc.nat(),
      decode: (n: number) => {
        if (n % 2) throw new DecodeError("odd");
      },
    });
    expect(() => fc.assert(namedErrorsOnly(t), { numRuns: 200 })).not.toThrow();
  });

  test("any other error fails, and the report names its class", () => {
    const t = target({
      name: "t",
      covers: "",
      input: fc.nat(),
      decode: (n: number) => {
        if (n > 10) throw new TypeError(`boom ${n}`);
      },
    });
    const details = fc.check(namedErrorsOnly(t), { numRuns: 500 });
    expect(details.failed).toBe(true);
    // Shrunk to the smallest failing input.
    expect(details.counterexample).toEqual([11]);
    expect(String(details.errorInstance)).toMatch(/threw something other than a named error: TypeError: boom 11/);
  });

  test("a thrown non-Error value fails", () => {
    const t = target({ name: "t", covers: "", input: fc.constant(0), decode: () => {
      throw "a string";
    } });
    expect(() => checkInput(t, 0)).toThrow(/non-Error value: string a string/);
  });

  test("a call slower than the limit fails, even when retried", () => {
    const t = target({ name: "slow", covers: "", input: fc.constant(0), decode: () => Bun.sleepSync(30) });
    expect(() => checkInput(t, 0, 10)).toThrow(/slow took \d+ ms on one input \(limit 10 ms\)/);
    expect(() => checkInput(t, 0, 1000)).not.toThrow();
  });

  test("each() lets named errors pass and stops at the first other error", () => {
    const seen: number[] = [];
    expect(() =>
      each(
        () => {
          seen.push(1);
          throw new UsageError("bad");
        },
        () => seen.push(2),
      ),
    ).not.toThrow();
    expect(() =>
      each(
        () => {
          throw new RangeError("x");
        },
        () => seen.push(3),
      ),
    ).toThrow(RangeError);
    expect(seen).toEqual([1, 2]);
  });

  test("mutations change inputs and keep them the same type", () => {
    const bytes = fc.sample(mutatedBytes(fc.constant(new Uint8Array(64))), 200);
    expect(bytes.every((b) => b instanceof Uint8Array)).toBe(true);
    expect(bytes.some((b) => b.length !== 64 || b.some((x) => x !== 0))).toBe(true);
    const texts = fc.sample(mutatedText(fc.constant("key = value\nother = 1\n")), 200);
    expect(texts.filter((t) => t !== "key = value\nother = 1\n").length).toBeGreaterThan(150);
  });
});
