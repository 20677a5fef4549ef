/**
 * Raw dumps of iproute2's `ss -D`, read back with `--replay`: told apart from a `--record`
 * recording by their first bytes, decoded with the sock_diag codec (fixture described in
 * test/fixtures/netlink/README.md).
 */
import { describe, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SsDumpDiagSource, looksLikeSsDump } from "../../src/engine/linux/ss-dump-source.ts";
import { openReplaySource } from "../../src/engine/linux/replay-source.ts";
import { ReplayDiagSource } from "../../src/engine/linux/diag-source.ts";
import { dumpAll } from "../support/diag-dump.ts";
import { AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP } from "../../src/engine/linux/sock-diag-codec.ts";
import { DecodeError } from "../../src/errors.ts";

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/netlink/${name}`, import.meta.url));
const DUMP = fixture("ss-D-dump.bin");
const RECORDING = fixture("dump-basic.ndjson");

const rows = (source: ReturnType<typeof openReplaySource>, family: number, protocol = IPPROTO_TCP) =>
  dumpAll(source, family, protocol).map((r) => `${r.source}:${r.sourcePort} ${r.destination}:${r.destinationPort} ${r.state}`).sort();

describe("ss -D dumps", () => {
  test("both of its parts, by family; TCP only", () => {
    const source = openReplaySource(DUMP);
    expect(source).toBeInstanceOf(SsDumpDiagSource);
    expect(rows(source, AF_INET)).toEqual(["127.0.0.1:35082 127.0.0.1:5000 1", "127.0.0.1:5000 0.0.0.0:0 10", "127.0.0.1:5000 127.0.0.1:35082 1"].sort());
    expect(rows(source, AF_INET6)).toEqual(["::1:6000 :::0 10", "::1:6000 ::1:57908 1", "::1:57908 ::1:6000 1"].sort());
    expect(rows(source, AF_INET, IPPROTO_UDP)).toEqual([]);
  });

  test("a --record recording is still read as one", () => {
    expect(looksLikeSsDump(fs.readFileSync(RECORDING))).toBe(false);
    expect(openReplaySource(RECORDING)).toBeInstanceOf(ReplayDiagSource);
  });

  test("a cut or foreign file is a DecodeError naming it", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-ssdump-"));
    try {
      const bytes = fs.readFileSync(DUMP);
      const cut = path.join(dir, "cut.bin");
      fs.writeFileSync(cut, bytes.subarray(0, 200));
      expect(() => openReplaySource(cut)).toThrow(DecodeError);
      expect(() => openReplaySource(cut)).toThrow(new RegExp(`^${cut}: not a whole ss -D dump: netlink message at offset 124 is truncated`));
      // An rtnetlink message where sock_diag replies belong (type 16, RTM_NEWLINK).
      const foreign = Buffer.from(bytes.subarray(0, 124));
      foreign.writeUInt16LE(16, 4);
      expect(() => new SsDumpDiagSource(Buffer.concat([bytes.subarray(0, 124), foreign]), "f")).toThrow(/^f: netlink message of type 16/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
