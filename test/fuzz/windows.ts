/**
 * Windows buffers: the iphlpapi tables GetExtendedTcpTable / GetExtendedUdpTable fill in (all
 * eight owner-PID and owner-module layouts), TCP_ESTATS_DATA_ROD_v0, PROCESSENTRY32W, the
 * UNICODE_STRING and TCPIP_OWNER_MODULE_BASIC_INFO blocks whose pointers lead into themselves, the
 * version resource's translation array, FILETIMEs, and table recordings read back with --replay.
 * Tables are built row by row to the layouts the codec names, mixed with the fixture buffers the
 * Windows SDK's own structs produced, then mutated and given lying row counts.
 */
import fs from "node:fs";
import path from "node:path";
import fc from "fast-check";
import {
  TCP_ESTATS_DATA_ROD_V0_LEN,
  decodeDataRod,
  decodeTable,
  rowBytes,
  type RowLayout,
} from "../../src/engine/windows/ip-table-codec.ts";
import {
  PROCESSENTRY32W_LEN,
  UNICODE_STRING_LEN,
  decodeOwnerModuleBasicInfo,
  decodeProcessEntry,
  decodeUnicodeStringHeader,
  decodeUnicodeStringInBlock,
  fileTimeToIso,
  stringFileInfoKeys,
} from "../../src/engine/windows/process-codec.ts";
import { ALL_LAYOUTS, ReplayTableSource } from "../../src/engine/windows/table-source.ts";
import { atSomeOffset, concatBytes, filledBytes, mutatedBytes, mutatedText, noise, randomBytes, randomText, sometimes, u16, u32 } from "./mutate.ts";
import { scratchFile } from "./scratch.ts";
import { target } from "./target.ts";

const FIXTURES = path.join(import.meta.dirname, "../fixtures/windows");
const fixture = (name: string) => new Uint8Array(fs.readFileSync(path.join(FIXTURES, name)));

/** The recorded table of each layout, by layout name. */
const TABLE_FIXTURES = new Map<string, Uint8Array>([
  ["MIB_TCPROW_OWNER_MODULE", fixture("tcp4-owner-module.bin")],
  ["MIB_TCPROW_OWNER_PID", fixture("tcp4-owner-pid.bin")],
  ["MIB_TCP6ROW_OWNER_MODULE", fixture("tcp6-owner-module.bin")],
  ["MIB_TCP6ROW_OWNER_PID", fixture("tcp6-owner-pid.bin")],
  ["MIB_UDPROW_OWNER_MODULE", fixture("udp4-owner-module.bin")],
  ["MIB_UDPROW_OWNER_PID", fixture("udp4-owner-pid.bin")],
  ["MIB_UDP6ROW_OWNER_MODULE", fixture("udp6-owner-module.bin")],
  ["MIB_UDP6ROW_OWNER_PID", fixture("udp6-owner-pid.bin")],
]);

/** One row of a layout: random bytes with the state, ports and pid set to plausible values. */
function row(layout: RowLayout): fc.Arbitrary<Uint8Array> {
  return fc
    .record({
      bytes: filledBytes(layout.size, layout.size),
      state: fc.oneof(fc.integer({ min: 0, max: 13 }), u32),
      localPort: u16,
      remotePort: u16,
      pid: fc.oneof(fc.constantFrom(0, 4, 1234), u32),
      created: fc.oneof(fc.constant([0, 0]), fc.tuple(u32, u32), fc.constant([0xd53e8000, 0x01d5f3a4])),
    })
    .map((r) => {
      const out = r.bytes;
      const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
      if (layout.state >= 0) view.setUint32(layout.state, r.state, true);
      view.setUint16(layout.localPort, r.localPort, false);
      if (layout.remotePort >= 0) view.setUint16(layout.remotePort, r.remotePort, false);
      view.setUint32(layout.owningPid, r.pid, true);
      if (layout.createTimestamp >= 0) {
        view.setUint32(layout.createTimestamp, r.created[0]!, true);
        view.setUint32(layout.createTimestamp + 4, r.created[1]!, true);
      }
      return out;
    });
}

/** dwNumEntries (true or lying), the padding before the first row, rows, and slack after them. */
function table(layout: RowLayout): fc.Arbitrary<Uint8Array> {
  return fc
    .record({
      rows: fc.array(row(layout), { maxLength: 5 }),
      countLie: sometimes(fc.oneof(u32, fc.integer({ min: -2, max: 2 })), 6),
      slack: fc.nat({ max: 24 }),
    })
    .map(({ rows, countLie, slack }) => {
      const head = new Uint8Array(layout.firstRow);
      let count = rows.length;
      if (countLie !== null) count = countLie >= -2 && countLie <= 2 ? Math.max(0, count + countLie) : countLie;
      new DataView(head.buffer).setUint32(0, count >>> 0, true);
      return concatBytes([head, ...rows, new Uint8Array(slack)]);
    });
}

function tableBytes(layout: RowLayout): fc.Arbitrary<Uint8Array> {
  const built = table(layout);
  const recorded = fc.constant(TABLE_FIXTURES.get(layout.name)!);
  return atSomeOffset(
    fc.oneof(
      { weight: 4, arbitrary: built },
      { weight: 3, arbitrary: mutatedBytes(built, 3) },
      { weight: 2, arbitrary: mutatedBytes(recorded, 4) },
      { weight: 1, arbitrary: randomBytes },
    ),
  );
}

const tableInput = fc.oneof(
  ...ALL_LAYOUTS.map((layout) =>
    fc.record({
      layout: fc.constant(layout),
      bytes: tableBytes(layout),
      // How many bytes the call said it filled: usually all, sometimes fewer or more.
      filled: sometimes(fc.nat({ max: 4096 }), 5),
    }),
  ),
);

export const windowsTables = target({
  name: "windows-tables",
  covers: "decodeTable, rowBytes (the eight GetExtendedTcpTable / GetExtendedUdpTable layouts)",
  input: tableInput,
  decode({ layout, bytes, filled }) {
    const rows = filled === null ? decodeTable(bytes, layout) : decodeTable(bytes, layout, filled);
    for (const r of rows) {
      rowBytes(bytes, layout, r);
      void `${r.localAddress}${r.remoteAddress}${r.createdAt}`;
    }
  },
});

// ---- process structures ----

const PROCESS_ENTRY = fixture("processentry32w.bin");
const DATA_ROD = fixture("tcp-estats-data-rod-v0.bin");

/** A 64-bit address where a block might sit. */
const address = fc.oneof(
  fc.constantFrom(0n, 0x10000n, 0x7ff6_1234_0000n, 0xffff_ffff_ffff_f000n),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
);

/**
 * A block whose header holds a pointer (at `field`) to somewhere in or near the block: inside,
 * at its end, before it, or anywhere at all; the characters follow the header.
 */
function blockWithPointers(header: number, fields: readonly number[]): fc.Arbitrary<{ block: Uint8Array; base: bigint }> {
  return fc
    .record({
      base: address,
      text: fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), fc.string({ maxLength: 40 })),
      length: sometimes(u16, 3),
      targets: fc.array(fc.oneof(fc.integer({ min: -8, max: 200 }), fc.constant(Number.NaN)), { minLength: fields.length, maxLength: fields.length }),
      tail: fc.nat({ max: 8 }),
    })
    .map(({ base, text, length, targets, tail }) => {
      const chars = Buffer.from(`${text}\0`, "utf16le");
      const block = new Uint8Array(header + chars.length + tail);
      block.set(chars, header);
      const view = new DataView(block.buffer);
      view.setUint16(0, length ?? chars.length - 2, true);
      fields.forEach((field, i) => {
        const t = targets[i]!;
        // NaN: a null pointer.
        const pointer = Number.isNaN(t) ? 0n : (base + BigInt(header + t) + (1n << 64n)) % (1n << 64n);
        view.setBigUint64(field, pointer, true);
      });
      return { block, base };
    });
}

const unicodeStringBlock = blockWithPointers(UNICODE_STRING_LEN, [8]);
const ownerModuleBlock = blockWithPointers(16, [0, 8]);

const processInput = fc.oneof(
  fc.record({ kind: fc.constant("entry" as const), bytes: fc.oneof(mutatedBytes(fc.constant(PROCESS_ENTRY), 4), filledBytes(PROCESSENTRY32W_LEN - 8, PROCESSENTRY32W_LEN + 8), randomBytes) }),
  fc.record({ kind: fc.constant("commandLine" as const), block: fc.oneof(unicodeStringBlock, fc.record({ block: randomBytes, base: address })) }),
  fc.record({ kind: fc.constant("module" as const), block: fc.oneof(ownerModuleBlock, fc.record({ block: randomBytes, base: address })) }),
  fc.record({ kind: fc.constant("bytes" as const), bytes: fc.oneof(randomBytes, mutatedBytes(fc.constant(DATA_ROD), 3), filledBytes(TCP_ESTATS_DATA_ROD_V0_LEN - 4, TCP_ESTATS_DATA_ROD_V0_LEN + 4)) }),
);

export const windowsProcess = target({
  name: "windows-process",
  covers:
    "decodeProcessEntry, decodeUnicodeStringInBlock, decodeUnicodeStringHeader, decodeOwnerModuleBasicInfo, " +
    "stringFileInfoKeys, fileTimeToIso, decodeDataRod",
  input: atSomeOffsetIn(processInput),
  decode(input) {
    switch (input.kind) {
      case "entry":
        decodeProcessEntry(input.bytes);
        return;
      case "commandLine":
        decodeUnicodeStringInBlock(input.block.block, input.block.base);
        decodeUnicodeStringHeader(input.block.block);
        return;
      case "module":
        decodeOwnerModuleBasicInfo(input.block.block, input.block.base);
        return;
      case "bytes":
        decodeDataRod(input.bytes);
        stringFileInfoKeys(input.bytes);
        // The callers hand fileTimeToIso a FILETIME they allocated: 8 bytes or more.
        if (input.bytes.byteLength >= 8) fileTimeToIso(input.bytes, 0);
        return;
    }
  },
});

type ProcessInput = typeof processInput extends fc.Arbitrary<infer T> ? T : never;

/** The buffers of a process input, moved to an offset inside a larger buffer now and then. */
function atSomeOffsetIn(input: fc.Arbitrary<ProcessInput>): fc.Arbitrary<ProcessInput> {
  return fc.tuple(input, fc.nat({ max: 7 })).map(([i, before]) => {
    if (before === 0) return i;
    const shift = (b: Uint8Array) => {
      const big = new Uint8Array(before + b.length);
      big.set(b, before);
      return big.subarray(before);
    };
    if (i.kind === "entry" || i.kind === "bytes") return { ...i, bytes: shift(i.bytes) };
    return { ...i, block: { block: shift(i.block.block), base: i.block.base } };
  });
}

// ---- recordings ----

const RECORDING = fs.readFileSync(path.join(FIXTURES, "wine-recording.ndjson"), "utf8").trim().split("\n");

const recordingLine: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: tableInput.map(({ layout, bytes }) => JSON.stringify({ layout: layout.name, bytes: Buffer.from(bytes).toString("base64") })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ layout: fc.oneof(fc.constantFrom(...ALL_LAYOUTS.map((l) => l.name)), fc.jsonValue({ maxDepth: 1 })), bytes: fc.oneof(fc.string({ maxLength: 30 }), fc.jsonValue({ maxDepth: 1 })) })
      .map((o) => JSON.stringify(o)),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: mutatedText(fc.constantFrom(...RECORDING), 3) },
  { weight: 1, arbitrary: fc.oneof(noise, randomText) },
);

export const windowsReplay = target({
  name: "windows-replay",
  covers: "ReplayTableSource (a recorded table set read back with --replay), then decodeTable",
  input: fc.array(recordingLine, { maxLength: 5 }).map((lines) => lines.join("\n")),
  decode(text) {
    const source = new ReplayTableSource(scratchFile("tables.ndjson", text));
    for (const protocol of ["tcp", "udp"] as const) {
      for (const family of [4, 6] as const) {
        const t = source.read(protocol, family);
        decodeTable(t.bytes, t.layout);
      }
    }
    source.close();
  },
});

export const WINDOWS_TARGETS = [windowsTables, windowsProcess, windowsReplay];
