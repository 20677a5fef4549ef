/**
 * Fuzzing of netlink sock_diag replies (dumps, destroy notices, SOCK_DESTROY acknowledgements,
 * recordings), a few thousand inputs per target; `npm run fuzz` runs a million. Below them, inputs
 * the fuzzer found that once broke a decoder.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { NETLINK_TARGETS } from "../fuzz/netlink.ts";
import { fuzzTests } from "../fuzz/suite.ts";
import type { FuzzTarget } from "../fuzz/target.ts";
import { ReplayDiagSource } from "../../src/engine/linux/diag-source.ts";
import { decodeMessages } from "../../src/engine/linux/sock-diag-codec.ts";
import { DecodeError } from "../../src/errors.ts";

describe("fuzz: netlink replies", () => {
  fuzzTests(NETLINK_TARGETS as FuzzTarget<never>[]);
});

describe("fuzz: counterexamples kept", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sockwarden-fuzz-netlink-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("a recording line that is JSON but not an object (null) is a DecodeError naming the line", () => {
    const file = path.join(dir, "null.ndjson");
    fs.writeFileSync(file, '{"family":2,"protocol":6,"data":""}\nnull\n');
    expect(() => new ReplayDiagSource(file)).toThrow(DecodeError);
    expect(() => new ReplayDiagSource(file)).toThrow(/null\.ndjson:2:/);
  });

  test("a datagram inside a larger buffer decodes as it does on its own", () => {
    const line = fs.readFileSync(path.join(import.meta.dirname, "../fixtures/netlink/dump-basic.ndjson"), "utf8").split("\n")[0]!;
    const alone = new Uint8Array(Buffer.from((JSON.parse(line) as { data: string }).data, "base64"));
    const big = new Uint8Array(alone.length + 7).fill(0xa5);
    big.set(alone, 3);
    expect(decodeMessages(big.subarray(3, 3 + alone.length))).toEqual(decodeMessages(alone));
  });
});
