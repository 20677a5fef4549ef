/**
 * The Windows table codec on buffers built with the Windows SDK's own struct declarations
 * (test/fixtures/windows/make-tables.c) and on a real recording from wine: every table class the
 * engine asks for, IPv6, padding, junk in the ports' upper bytes, short and odd-sized buffers, and
 * counts larger than the buffer. Runs anywhere: no Windows call is made.
 */
import { describe, expect, test } from "vitest";
import fs from "node:fs";
import path from "node:path";
import {
  MIB_TCP6ROW_LEN,
  MIB_TCPROW_LEN,
  MIB_TCP_STATE_DELETE_TCB,
  TCP6ROW_OWNER_MODULE,
  TCP6ROW_OWNER_PID,
  TCPROW_OWNER_MODULE,
  TCPROW_OWNER_PID,
  TCP_ESTATS_DATA_ROD_V0_LEN,
  TCP_TABLE_OWNER_MODULE_ALL,
  TCP_TABLE_OWNER_PID_ALL,
  UDP6ROW_OWNER_MODULE,
  UDP6ROW_OWNER_PID,
  UDPROW_OWNER_MODULE,
  UDPROW_OWNER_PID,
  UDP_TABLE_OWNER_MODULE,
  UDP_TABLE_OWNER_PID,
  WIN_AF_INET,
  WIN_AF_INET6,
  decodeDataRod,
  decodeTable,
  encodeTcp6Row,
  encodeTcpRow,
  fileTimeToMs,
  mibTcpState,
  rowBytes,
  rowLayout,
  tableRequest,
  tcpStateName,
  type RowLayout,
  type TableRow,
} from "../../src/engine/windows/ip-table-codec.ts";
import {
  PROCESSENTRY32W_LEN,
  decodeOwnerModuleBasicInfo,
  decodeProcessEntry,
  decodeUnicodeStringHeader,
  decodeUnicodeStringInBlock,
  newProcessEntry,
  stringFileInfoKeys,
} from "../../src/engine/windows/process-codec.ts";
import { ALL_LAYOUTS, ReplayTableSource } from "../../src/engine/windows/table-source.ts";
import { WindowsEngine } from "../../src/engine/windows/windows-engine.ts";
import { DecodeError } from "../../src/errors.ts";
import { parseIP } from "../../src/net/ip.ts";

const FIXTURES = path.join(import.meta.dirname, "../fixtures/windows");
const fixture = (name: string) => new Uint8Array(fs.readFileSync(path.join(FIXTURES, name)));
const LAYOUTS = JSON.parse(fs.readFileSync(path.join(FIXTURES, "layouts.json"), "utf8")) as Record<string, Record<string, number>>;

const TS_A = "2026-01-02T03:04:05.678Z";
const TS_B = "2025-06-30T23:59:59.999Z";

/** The fields a test states, in a stable order. */
function brief(r: TableRow) {
  return {
    state: r.protocol === "tcp" ? tcpStateName(r.state) : null,
    local: `${r.localAddress}:${r.localPort}`,
    remote: `${r.remoteAddress}:${r.remotePort}`,
    pid: r.pid,
    createdAt: r.createdAt === null ? null : new Date(r.createdAt).toISOString(),
  };
}

describe("layouts agree with the Windows SDK's declarations (layouts.json from make-tables.c)", () => {
  const cases: [RowLayout, string, string][] = [
    [TCPROW_OWNER_PID, "MIB_TCPROW_OWNER_PID", "MIB_TCPTABLE_OWNER_PID"],
    [TCPROW_OWNER_MODULE, "MIB_TCPROW_OWNER_MODULE", "MIB_TCPTABLE_OWNER_MODULE"],
    [TCP6ROW_OWNER_PID, "MIB_TCP6ROW_OWNER_PID", "MIB_TCP6TABLE_OWNER_PID"],
    [TCP6ROW_OWNER_MODULE, "MIB_TCP6ROW_OWNER_MODULE", "MIB_TCP6TABLE_OWNER_MODULE"],
    [UDPROW_OWNER_PID, "MIB_UDPROW_OWNER_PID", "MIB_UDPTABLE_OWNER_PID"],
    [UDPROW_OWNER_MODULE, "MIB_UDPROW_OWNER_MODULE", "MIB_UDPTABLE_OWNER_MODULE"],
    [UDP6ROW_OWNER_PID, "MIB_UDP6ROW_OWNER_PID", "MIB_UDP6TABLE_OWNER_PID"],
    [UDP6ROW_OWNER_MODULE, "MIB_UDP6ROW_OWNER_MODULE", "MIB_UDP6TABLE_OWNER_MODULE"],
  ];
  test.each(cases)("%s", (layout, rowName, tableName) => {
    const sdk = LAYOUTS[rowName]!;
    expect(layout.name).toBe(rowName);
    expect(layout.size).toBe(sdk.sizeof);
    expect(layout.firstRow).toBe(LAYOUTS[tableName]!.table);
    const named: Record<string, number> = {
      dwState: layout.state,
      dwLocalAddr: layout.localAddr,
      ucLocalAddr: layout.localAddr,
      dwLocalScopeId: layout.localScopeId,
      dwLocalPort: layout.localPort,
      dwRemoteAddr: layout.remoteAddr,
      ucRemoteAddr: layout.remoteAddr,
      dwRemoteScopeId: layout.remoteScopeId,
      dwRemotePort: layout.remotePort,
      dwOwningPid: layout.owningPid,
      liCreateTimestamp: layout.createTimestamp,
      dwFlags: layout.flags,
      OwningModuleInfo: layout.owningModuleInfo,
    };
    for (const [field, offset] of Object.entries(sdk)) {
      if (field === "sizeof") continue;
      expect(named[field], `${rowName}.${field}`).toBe(offset);
    }
  });

  test("MIB_TCPROW, MIB_TCP6ROW, TCP_ESTATS_DATA_ROD_v0 and PROCESSENTRY32W sizes", () => {
    expect(MIB_TCPROW_LEN).toBe(LAYOUTS.MIB_TCPROW!.sizeof);
    expect(MIB_TCP6ROW_LEN).toBe(LAYOUTS.MIB_TCP6ROW!.sizeof);
    expect(TCP_ESTATS_DATA_ROD_V0_LEN).toBe(LAYOUTS.TCP_ESTATS_DATA_ROD_v0!.sizeof);
    expect(LAYOUTS.TCP_ESTATS_DATA_ROD_v0).toMatchObject({ ThruBytesAcked: 72, ThruBytesReceived: 88 });
    expect(PROCESSENTRY32W_LEN).toBe(LAYOUTS.PROCESSENTRY32W!.sizeof);
    expect(LAYOUTS.PROCESSENTRY32W).toMatchObject({ th32ProcessID: 8, cntThreads: 28, th32ParentProcessID: 32, szExeFile: 44 });
  });
});

describe("decodeTable on SDK-built tables", () => {
  test("MIB_TCPTABLE_OWNER_MODULE: states, creation times, junk above the ports, extreme values", () => {
    const rows = decodeTable(fixture("tcp4-owner-module.bin"), TCPROW_OWNER_MODULE);
    expect(rows.map(brief)).toEqual([
      { state: "LISTEN", local: "0.0.0.0:445", remote: "0.0.0.0:0", pid: 4, createdAt: TS_A },
      { state: "ESTABLISHED", local: "10.0.0.5:49712", remote: "93.184.216.34:443", pid: 1234, createdAt: TS_B },
      { state: "TIME_WAIT", local: "127.0.0.1:50000", remote: "127.0.0.1:80", pid: 0, createdAt: null },
      { state: "CLOSE", local: "192.168.1.20:65535", remote: "255.255.255.255:1", pid: 4294967295, createdAt: TS_A },
    ]);
    expect(rows.every((r) => r.family === 4 && r.protocol === "tcp" && r.specificPortBind === null)).toBe(true);
    expect(rows.map((r) => r.offset)).toEqual([8, 168, 328, 488]);
  });

  test("MIB_TCPTABLE_OWNER_PID: rows from offset 4, no creation time", () => {
    const rows = decodeTable(fixture("tcp4-owner-pid.bin"), TCPROW_OWNER_PID);
    expect(rows.map(brief)).toEqual([
      { state: "SYN_SENT", local: "10.1.2.3:50001", remote: "10.9.8.7:25", pid: 5000, createdAt: null },
      { state: "CLOSE_WAIT", local: "127.0.0.1:8080", remote: "127.0.0.1:50002", pid: 6000, createdAt: null },
      { state: "CLOSE", local: "0.0.0.0:0", remote: "0.0.0.0:0", pid: 7000, createdAt: null },
    ]);
  });

  test("MIB_TCP6TABLE_OWNER_MODULE: canonical IPv6 text and scope ids", () => {
    const rows = decodeTable(fixture("tcp6-owner-module.bin"), TCP6ROW_OWNER_MODULE);
    expect(rows.map(brief)).toEqual([
      { state: "LISTEN", local: ":::135", remote: ":::0", pid: 900, createdAt: TS_A },
      { state: "FIN_WAIT2", local: "2001:db8::5:50443", remote: "2001:db8:0:1::1:443", pid: 4321, createdAt: TS_B },
      { state: "ESTABLISHED", local: "fe80::1:22", remote: "fe80::abcd:2:61000", pid: 1500, createdAt: null },
    ]);
    expect(rows.map((r) => [r.localScopeId, r.remoteScopeId])).toEqual([[0, 0], [0, 0], [12, 12]]);
    expect(rows.every((r) => r.family === 6)).toBe(true);
  });

  test("MIB_TCP6TABLE_OWNER_PID: v4-mapped addresses, LAST_ACK and CLOSING", () => {
    const rows = decodeTable(fixture("tcp6-owner-pid.bin"), TCP6ROW_OWNER_PID);
    expect(rows.map(brief)).toEqual([
      { state: "LAST_ACK", local: "::ffff:10.0.0.5:8443", remote: "::ffff:10.0.0.9:51515", pid: 800, createdAt: null },
      { state: "CLOSING", local: "::1:5000", remote: "::1:5001", pid: 801, createdAt: null },
    ]);
  });

  test("MIB_UDPTABLE_OWNER_MODULE: padding around the timestamp and flags, SpecificPortBind", () => {
    const rows = decodeTable(fixture("udp4-owner-module.bin"), UDPROW_OWNER_MODULE);
    expect(rows.map(brief)).toEqual([
      { state: null, local: "0.0.0.0:53", remote: "0.0.0.0:0", pid: 2048, createdAt: TS_A },
      { state: null, local: "127.0.0.1:1900", remote: "0.0.0.0:0", pid: 3072, createdAt: TS_B },
    ]);
    expect(rows.map((r) => r.specificPortBind)).toEqual([true, false]);
    expect(rows.map((r) => r.state)).toEqual([0, 0]);
  });

  test("MIB_UDPTABLE_OWNER_PID", () => {
    expect(decodeTable(fixture("udp4-owner-pid.bin"), UDPROW_OWNER_PID).map(brief)).toEqual([
      { state: null, local: "0.0.0.0:137", remote: "0.0.0.0:0", pid: 4, createdAt: null },
      { state: null, local: "192.168.1.20:138", remote: "0.0.0.0:0", pid: 4, createdAt: null },
    ]);
  });

  test("MIB_UDP6TABLE_OWNER_MODULE: unspecified remote is ::", () => {
    const rows = decodeTable(fixture("udp6-owner-module.bin"), UDP6ROW_OWNER_MODULE);
    expect(rows.map(brief)).toEqual([
      { state: null, local: ":::5353", remote: ":::0", pid: 1700, createdAt: TS_B },
      { state: null, local: "fe80::1:546", remote: ":::0", pid: 1701, createdAt: TS_A },
    ]);
    expect(rows.map((r) => [r.localScopeId, r.specificPortBind])).toEqual([[0, false], [7, true]]);
  });

  test("MIB_UDP6TABLE_OWNER_PID", () => {
    expect(decodeTable(fixture("udp6-owner-pid.bin"), UDP6ROW_OWNER_PID).map(brief)).toEqual([
      { state: null, local: "2001:db8::53:53", remote: ":::0", pid: 9999, createdAt: null },
    ]);
  });

  test("a table with no rows may be just dwNumEntries, or padded to the first row", () => {
    for (const layout of ALL_LAYOUTS) {
      expect(decodeTable(new Uint8Array(4), layout)).toEqual([]);
      expect(decodeTable(new Uint8Array(layout.firstRow), layout)).toEqual([]);
    }
  });

  test("bytes past the last row (a buffer larger than the table) are ignored", () => {
    const exact = fixture("udp4-owner-pid.bin");
    const padded = new Uint8Array(exact.byteLength + 13).fill(0xee);
    padded.set(exact);
    expect(decodeTable(padded, UDPROW_OWNER_PID)).toEqual(decodeTable(exact, UDPROW_OWNER_PID));
  });

  test("a buffer at an odd offset inside a larger one decodes the same", () => {
    const exact = fixture("tcp6-owner-module.bin");
    const big = new Uint8Array(exact.byteLength + 3);
    big.set(exact, 3);
    expect(decodeTable(big.subarray(3), TCP6ROW_OWNER_MODULE)).toEqual(decodeTable(exact, TCP6ROW_OWNER_MODULE));
  });
});

describe("decodeTable refuses what does not fit", () => {
  test("fewer than 4 bytes: no dwNumEntries", () => {
    for (const n of [0, 1, 3]) {
      expect(() => decodeTable(new Uint8Array(n), TCPROW_OWNER_MODULE)).toThrow(DecodeError);
    }
    expect(() => decodeTable(new Uint8Array(3), UDP6ROW_OWNER_PID)).toThrow(
      "MIB_UDP6TABLE_OWNER_PID: 3 bytes, too short for dwNumEntries (4)",
    );
  });

  test("dwNumEntries larger than the buffer names both sizes", () => {
    const buf = fixture("tcp4-owner-module.bin");
    const lying = buf.slice();
    new DataView(lying.buffer).setUint32(0, 5, true);
    expect(() => decodeTable(lying, TCPROW_OWNER_MODULE)).toThrow(
      "MIB_TCPTABLE_OWNER_MODULE: dwNumEntries 5 needs 808 bytes (8 + 5 x 160), buffer holds 648",
    );
    const huge = new Uint8Array(8);
    new DataView(huge.buffer).setUint32(0, 0xffffffff, true);
    expect(() => decodeTable(huge, UDPROW_OWNER_PID)).toThrow(DecodeError);
  });

  test("a table cut short inside its last row, at every length", () => {
    for (const [name, layout] of [
      ["tcp4-owner-module.bin", TCPROW_OWNER_MODULE],
      ["tcp6-owner-pid.bin", TCP6ROW_OWNER_PID],
      ["udp6-owner-module.bin", UDP6ROW_OWNER_MODULE],
    ] as const) {
      const buf = fixture(name);
      for (let cut = 1; cut < layout.size; cut += 7) {
        expect(() => decodeTable(buf.subarray(0, buf.byteLength - cut), layout), `${name} minus ${cut}`).toThrow(DecodeError);
      }
      // The `length` argument (what the call said it filled) bounds decoding the same way.
      expect(() => decodeTable(buf, layout, buf.byteLength - 1)).toThrow(DecodeError);
    }
  });

  test("a table decoded with the wrong class is refused when its rows cannot fit", () => {
    // Two owner-PID rows (4 + 2 x 12 bytes) read as owner-module rows (8 + 2 x 160).
    expect(() => decodeTable(fixture("udp4-owner-pid.bin"), UDPROW_OWNER_MODULE)).toThrow(DecodeError);
  });

  test("counts every refused buffer across all classes", () => {
    let refused = 0;
    let decoded = 0;
    for (const layout of ALL_LAYOUTS) {
      for (const count of [1, 2]) {
        for (const extra of [-1, 0, 1]) {
          const buf = new Uint8Array(Math.max(0, layout.firstRow + count * layout.size + extra));
          new DataView(buf.buffer).setUint32(0, count, true);
          try {
            decodeTable(buf, layout);
            decoded++;
          } catch (e) {
            expect(e).toBeInstanceOf(DecodeError);
            refused++;
          }
        }
      }
    }
    expect({ decoded, refused }).toEqual({ decoded: 32, refused: 16 });
  });
});

describe("state names", () => {
  test("MIB_TCP_STATE 1..12 map to the kernel's names; DELETE_TCB and unknown values read as CLOSE", () => {
    expect(Array.from({ length: 14 }, (_, i) => tcpStateName(i))).toEqual([
      "CLOSE",
      "CLOSE",
      "LISTEN",
      "SYN_SENT",
      "SYN_RECV",
      "ESTABLISHED",
      "FIN_WAIT1",
      "FIN_WAIT2",
      "CLOSE_WAIT",
      "CLOSING",
      "LAST_ACK",
      "TIME_WAIT",
      "CLOSE",
      "CLOSE",
    ]);
    expect(mibTcpState("ESTABLISHED")).toBe(5);
    expect(mibTcpState("TIME_WAIT")).toBe(11);
    expect(mibTcpState("CLOSE")).toBe(1);
  });
});

describe("requests", () => {
  test("each layout asks for the class that produces it", () => {
    expect(tableRequest(rowLayout("tcp", 4, true))).toEqual({ af: WIN_AF_INET, tableClass: TCP_TABLE_OWNER_MODULE_ALL });
    expect(tableRequest(rowLayout("tcp", 6, false))).toEqual({ af: WIN_AF_INET6, tableClass: TCP_TABLE_OWNER_PID_ALL });
    expect(tableRequest(rowLayout("udp", 4, true))).toEqual({ af: WIN_AF_INET, tableClass: UDP_TABLE_OWNER_MODULE });
    expect(tableRequest(rowLayout("udp", 6, false))).toEqual({ af: WIN_AF_INET6, tableClass: UDP_TABLE_OWNER_PID });
  });

  test("MIB_TCPROW for SetTcpEntry matches the SDK's bytes", () => {
    const row = encodeTcpRow({
      state: MIB_TCP_STATE_DELETE_TCB,
      local: parseIP("10.0.0.5")!.bytes,
      localPort: 49712,
      localScopeId: 0,
      remote: parseIP("93.184.216.34")!.bytes,
      remotePort: 443,
      remoteScopeId: 0,
    });
    expect(Buffer.from(row)).toEqual(Buffer.from(fixture("mib-tcprow.bin")));
    expect(() => encodeTcpRow({ ...{ state: 12, localPort: 1, remotePort: 2, localScopeId: 0, remoteScopeId: 0 }, local: new Uint8Array(16), remote: new Uint8Array(16) })).toThrow(RangeError);
  });

  test("MIB_TCP6ROW for the statistics calls matches the SDK's bytes", () => {
    const row = encodeTcp6Row({
      state: 5,
      local: parseIP("fe80::1")!.bytes,
      localPort: 22,
      localScopeId: 12,
      remote: parseIP("fe80::abcd:2")!.bytes,
      remotePort: 61000,
      remoteScopeId: 12,
    });
    expect(Buffer.from(row)).toEqual(Buffer.from(fixture("mib-tcp6row.bin")));
  });

  test("rowBytes hands back one row of the table, and refuses one that runs past it", () => {
    const buf = fixture("tcp4-owner-module.bin");
    const rows = decodeTable(buf, TCPROW_OWNER_MODULE);
    const second = rowBytes(buf, TCPROW_OWNER_MODULE, rows[1]!);
    expect(second.byteLength).toBe(160);
    expect(new DataView(second.buffer, second.byteOffset).getUint32(20, true)).toBe(1234);
    expect(() => rowBytes(buf.subarray(0, 300), TCPROW_OWNER_MODULE, rows[1]!)).toThrow(DecodeError);
  });
});

describe("other structures", () => {
  test("TCP_ESTATS_DATA_ROD_v0", () => {
    expect(decodeDataRod(fixture("tcp-estats-data-rod-v0.bin"))).toEqual({
      bytesSent: 123456789012,
      bytesReceived: 9876543210,
      packetsSent: 3001,
      packetsReceived: 4002,
      dataSegmentsSent: 1000,
      dataSegmentsReceived: 2000,
      bytesAcked: 123456789000,
      bytesReceivedInOrder: 9876543000,
    });
    expect(() => decodeDataRod(new Uint8Array(95))).toThrow("TCP_ESTATS_DATA_ROD_v0: 95 bytes, needs 96");
  });

  test("PROCESSENTRY32W", () => {
    expect(decodeProcessEntry(fixture("processentry32w.bin"))).toEqual({ pid: 4321, ppid: 876, threads: 17, exeFile: "svchost.exe" });
    expect(() => decodeProcessEntry(new Uint8Array(567))).toThrow(DecodeError);
    const fresh = newProcessEntry();
    expect(fresh.byteLength).toBe(568);
    expect(fresh.readUInt32LE(0)).toBe(568);
  });

  test("a process name that fills szExeFile without a terminator stops at the buffer's end", () => {
    const buf = Buffer.from(fixture("processentry32w.bin"));
    buf.fill("a", 44, 44 + 520, "utf16le");
    expect(decodeProcessEntry(buf).exeFile).toBe("a".repeat(260));
  });

  test("UNICODE_STRING inside its block (ProcessCommandLineInformation)", () => {
    const block = new Uint8Array(64);
    const view = new DataView(block.buffer);
    const text = Buffer.from('"C:\\x.exe" -v', "utf16le");
    view.setUint16(0, text.byteLength, true);
    view.setUint16(2, text.byteLength + 2, true);
    view.setBigUint64(8, 0x10000n + 16n, true);
    block.set(text, 16);
    expect(decodeUnicodeStringInBlock(block, 0x10000n)).toBe('"C:\\x.exe" -v');
    expect(decodeUnicodeStringHeader(block)).toEqual({ length: text.byteLength, buffer: 0x10010n });
    // A pointer outside the block is refused, not followed.
    view.setBigUint64(8, 0x20000n, true);
    expect(() => decodeUnicodeStringInBlock(block, 0x10000n)).toThrow(DecodeError);
    expect(() => decodeUnicodeStringInBlock(block.subarray(0, 15), 0x10000n)).toThrow(DecodeError);
  });

  test("TCPIP_OWNER_MODULE_BASIC_INFO", () => {
    const block = new Uint8Array(128);
    const view = new DataView(block.buffer);
    const name = Buffer.from("Dnscache\0", "utf16le");
    const file = Buffer.from("C:\\Windows\\system32\\dnsrslvr.dll\0", "utf16le");
    view.setBigUint64(0, 0x5000n + 16n, true);
    view.setBigUint64(8, 0x5000n + 16n + BigInt(name.byteLength), true);
    block.set(name, 16);
    block.set(file.subarray(0, 128 - 16 - name.byteLength), 16 + name.byteLength);
    expect(decodeOwnerModuleBasicInfo(block, 0x5000n)).toEqual({ name: "Dnscache", path: "C:\\Windows\\system32\\dnsrslvr.dll" });
    // A string without its terminator ends with the block.
    expect(decodeOwnerModuleBasicInfo(block.subarray(0, 80), 0x5000n).path).toBe("C:\\Windows\\system32\\dnsrslvr.dll".slice(0, 23));
    view.setBigUint64(8, 0x4000n, true);
    expect(() => decodeOwnerModuleBasicInfo(block, 0x5000n)).toThrow(DecodeError);
    view.setBigUint64(8, 0n, true);
    expect(decodeOwnerModuleBasicInfo(block, 0x5000n).path).toBeNull();
  });

  test("StringFileInfo keys: the translations first, then the usual fallbacks once", () => {
    const t = new Uint8Array([0x09, 0x04, 0xb0, 0x04, 0x07, 0x04, 0xe4, 0x04]);
    expect(stringFileInfoKeys(t)).toEqual(["040904b0", "040704e4", "040904e4", "04090000"]);
    expect(stringFileInfoKeys(null)).toEqual(["040904b0", "040904e4", "04090000"]);
  });

  test("FILETIME: zero is no time; the 1601 epoch is converted", () => {
    const b = new Uint8Array(8);
    expect(fileTimeToMs(b, 0)).toBeNull();
    new DataView(b.buffer).setBigUint64(0, 116444736000000000n, true);
    expect(fileTimeToMs(b, 0)).toBe(0);
  });
});

describe("a recording from wine, replayed through the engine", () => {
  const recording = path.join(FIXTURES, "wine-recording.ndjson");

  test("every table decodes and the endpoints have the shape list --json prints", () => {
    const engine = new WindowsEngine({ source: "replay", replayFile: recording });
    const snap = engine.snapshot({ protocols: new Set(["tcp", "udp"]), families: new Set([4, 6]), withProcesses: true });
    engine.close();
    expect(snap.source).toBe("replay");
    const keys = snap.endpoints
      .map((e) => `${e.protocol}${e.family} ${e.localAddress}:${e.localPort} ${e.remoteAddress}:${e.remotePort} ${e.state ?? "-"}`)
      .sort();
    expect(keys).toEqual(
      [
        "tcp4 127.0.0.1:40200 0.0.0.0:0 LISTEN",
        "tcp4 127.0.0.1:40200 127.0.0.1:41152 ESTABLISHED",
        "tcp4 127.0.0.1:41152 127.0.0.1:40200 ESTABLISHED",
        "tcp4 127.0.0.1:55539 0.0.0.0:0 LISTEN",
        "tcp4 127.0.0.1:55539 127.0.0.1:60378 CLOSE_WAIT",
        "tcp4 127.0.0.1:60378 127.0.0.1:55539 FIN_WAIT2",
        "tcp6 ::1:40300 :::0 LISTEN",
        "tcp6 ::1:40300 ::1:53318 ESTABLISHED",
        "tcp6 ::1:53318 ::1:40300 ESTABLISHED",
        "udp4 127.0.0.1:40301 0.0.0.0:0 -",
        "udp6 ::1:40201 :::0 -",
      ].sort(),
    );
    for (const e of snap.endpoints) {
      expect(e).toMatchObject({ inode: 0, uid: null, cookie: null, process: null, pids: [], bytesSent: null, interfaceIndex: 0 });
    }
  });

  test("a recording limited to some tables gives the others empty; a bad line is refused with its number", () => {
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? "/tmp", "sw-wincodec-"));
    try {
      const one = path.join(dir, "one.ndjson");
      fs.writeFileSync(one, fs.readFileSync(recording, "utf8").split("\n")[0] + "\n");
      const snap = new WindowsEngine({ source: "replay", replayFile: one }).snapshot({
        protocols: new Set(["tcp", "udp"]),
        families: new Set([4, 6]),
        withProcesses: false,
      });
      expect(new Set(snap.endpoints.map((e) => `${e.protocol}${e.family}`))).toEqual(new Set(["tcp4"]));
      const bad = path.join(dir, "bad.ndjson");
      fs.writeFileSync(bad, `${fs.readFileSync(one, "utf8")}{"layout":"MIB_TCPROW","bytes":"AA=="}\n`);
      expect(() => new ReplayTableSource(bad)).toThrow(/bad\.ndjson:2: expected/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("closing from a replay is refused; the Linux-only sources are named as such", () => {
    const engine = new WindowsEngine({ source: "replay", replayFile: recording });
    const ep = engine.snapshot({ protocols: new Set(["tcp"]), families: new Set([4, 6]), withProcesses: false }).endpoints;
    const v4 = ep.find((e) => e.family === 4 && e.state === "ESTABLISHED")!;
    const v6 = ep.find((e) => e.family === 6 && e.state === "ESTABLISHED")!;
    expect(engine.destroy(v6)).toMatchObject({ outcome: "failed", reason: expect.stringMatching(/no way to close IPv6/) });
    expect(engine.destroy({ ...v4, protocol: "udp", state: null })).toMatchObject({ outcome: "failed", reason: expect.stringMatching(/UDP/) });
    expect(engine.destroy(v4, "owner")).toMatchObject({ outcome: "failed" });
    expect(engine.destroy(v4)).toMatchObject({ outcome: "failed", reason: "a replayed recording cannot be closed" });
    expect(() => new WindowsEngine({ source: "netlink" })).toThrow(/Linux only/);
  });
});
