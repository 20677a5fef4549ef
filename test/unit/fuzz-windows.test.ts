/**
 * Fuzzing of Windows table buffers, process structures and table recordings, a few thousand
 * inputs per target; `npm run fuzz` runs a million. Below them, inputs the fuzzer found that once
 * broke a decoder.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { WINDOWS_TARGETS } from "../fuzz/windows.ts";
import { fuzzTests } from "../fuzz/suite.ts";
import type { FuzzTarget } from "../fuzz/target.ts";
import { ReplayTableSource } from "../../src/engine/windows/table-source.ts";
import { DecodeError } from "../../src/errors.ts";

describe("fuzz: Windows buffers", () => {
  fuzzTests(WINDOWS_TARGETS as FuzzTarget<never>[]);
});

describe("fuzz: counterexamples kept", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sockwarden-fuzz-windows-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("a recording line that is JSON but not an object (null) is a DecodeError naming the line", () => {
    const file = path.join(dir, "null.ndjson");
    fs.writeFileSync(file, "null\n");
    expect(() => new ReplayTableSource(file)).toThrow(DecodeError);
    expect(() => new ReplayTableSource(file)).toThrow(/null\.ndjson:1:/);
  });
});
