/**
 * Fuzzing of /proc and /etc text (net/tcp*, PID stat, status and cgroup, fd and namespace links,
 * passwd, hosts, a whole fake /proc/PID), a few thousand inputs per target; `npm run fuzz` runs a
 * million. Below them, inputs the fuzzer found that once broke a reader.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { PROC_TARGETS } from "../fuzz/proc.ts";
import { fuzzTests } from "../fuzz/suite.ts";
import type { FuzzTarget } from "../fuzz/target.ts";
import { readProcessDetails } from "../../src/engine/linux/process-details.ts";

describe("fuzz: /proc and /etc files", () => {
  fuzzTests(PROC_TARGETS as FuzzTarget<never>[]);
});

describe("fuzz: counterexamples kept", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "sockwarden-fuzz-proc-"));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test("a boot time past what a Date holds gives no start time instead of a RangeError", () => {
    fs.mkdirSync(path.join(root, "77"));
    fs.writeFileSync(path.join(root, "stat"), "btime 99999999999999999999\n");
    fs.writeFileSync(path.join(root, "77", "stat"), "77 (x) S 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5000 0 0\n");
    fs.writeFileSync(path.join(root, "77", "status"), "Name:\tx\nPPid:\t1\n");
    const details = readProcessDetails(77, root, { clockTicks: 100 });
    expect(details?.name).toBe("x");
    expect(details?.startTime).toBeNull();
  });
});
