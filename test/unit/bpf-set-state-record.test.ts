/**
 * Decoding the set-state program's records. The hex strings are records recorded from the
 * sensor on kernel 6.18 (x86-64, so little-endian): a loopback connection over IPv4 and one over
 * IPv6 by a Bun process named `bun`, pid 5452. The record layout is the program's own, the same
 * whichever tracepoint layout the program read it from (that is checked in
 * bpf-set-state-program.test.ts).
 *
 * The first four were recorded before records carried counters; the 32 zero bytes added to each
 * are what a program built without counter reads writes (no BTF): counters unknown. The closing
 * records were recorded later, from a loopback connection in which the accepted side sent 300
 * bytes and closed first and the client sent 100: they carry the counters read from the socket.
 */
import { describe, expect, test } from "vitest";
import { COUNTERS, OWNER, OWNER_SOURCE, RECORD, decodeSetStateRecord, socketKey } from "../../src/engine/linux/bpf/set-state-record.ts";
import { DecodeError } from "../../src/errors.ts";

const NOT_READ = "00".repeat(32);
const RECORDED = {
  v4Connect:
    "d0089d234f0c000040d302588188ffff070000000200000000001b99020006007f0000010000000000000000000000007f0000010000000000000000000000004c1500004c150000000000000000000062756e000000000000000000000000000100000000000000" +
    NOT_READ,
  v4Accepted:
    "00009e234f0c0000809202588188ffff0a000000030000001b990cb7020006007f0000010000000000000000000000007f0000010000000000000000000000004c1500004c150000000000000000000062756e000000000000000000000000000300000000000000" +
    NOT_READ,
  v6Established:
    "240cc4304f0c000080ba540a8188ffff02000000010000003a8055a90a00060000000000000000000000000000000001000000000000000000000000000000014c1500004c150000000000000000000062756e000000000000000000000000000100000000000000" +
    NOT_READ,
  v6Listen:
    "5834bd304f0c00008093540a8188ffff070000000a00000055a900000a00060000000000000000000000000000000001000000000000000000000000000000004c1500004c150000000000000000000062756e000000000000000000000000000200000000000000" +
    NOT_READ,
  /** The accepted side, which closed first: FIN_WAIT2→CLOSE as its timewait twin takes over. */
  v4AcceptedClose:
    "b1647c3cc61200000080280b8188ffff0500000007000000c79f4a9f020006007f0000010000000000000000000000007f0000010000000000000000000000004a4700004a470000000000000000000062756e0000000000000000000000000003000000000000002c01000000000000650000000000000004000000050000000100000000000000",
  /** The client, closed by its peer: LAST_ACK→CLOSE. */
  v4ClientClose:
    "7b807c3cc612000000ca280b8188ffff09000000070000004a9fc79f020006007f0000010000000000000000000000007f0000010000000000000000000000004a4700004a470000000000000000000062756e00000000000000000000000000010000000000000064000000000000002d0100000000000005000000050000000100000000000000",
};

const bytes = (hex: string) => new Uint8Array(Buffer.from(hex, "hex"));

describe("recorded records", () => {
  test("IPv4 connect: CLOSE→SYN_SENT before the local port is chosen, with the connecting process", () => {
    expect(decodeSetStateRecord(bytes(RECORDED.v4Connect))).toEqual({
      kernelTimeNs: 0x0c4f239d08d0n,
      socket: 0xffff88815802d340n,
      oldState: "CLOSE",
      newState: "SYN_SENT",
      oldStateCode: 7,
      newStateCode: 2,
      family: 4,
      protocol: 6,
      localAddress: "127.0.0.1",
      localPort: 0,
      remoteAddress: "127.0.0.1",
      remotePort: 39195,
      pid: 5452,
      tid: 5452,
      uid: 0,
      gid: 0,
      comm: "bun",
      ownerSource: "connect",
      counters: null,
      // Recorded by a program that did not read the namespace yet: its bytes there are zero.
      netns: null,
    });
  });

  test("closing records carry the socket's final counters, as tcp_info counts them (a received FIN is one byte)", () => {
    expect(decodeSetStateRecord(bytes(RECORDED.v4AcceptedClose))).toMatchObject({
      oldState: "FIN_WAIT2",
      newState: "CLOSE",
      localPort: 40903,
      remotePort: 40778,
      ownerSource: "listener",
      counters: { bytesSent: 300, bytesReceived: 101, packetsSent: 4, packetsReceived: 5 },
    });
    expect(decodeSetStateRecord(bytes(RECORDED.v4ClientClose))).toMatchObject({
      oldState: "LAST_ACK",
      newState: "CLOSE",
      localPort: 40778,
      remotePort: 40903,
      ownerSource: "connect",
      counters: { bytesSent: 100, bytesReceived: 301, packetsSent: 5, packetsReceived: 5 },
    });
  });

  test("IPv4 accepted socket: its first change, LISTEN→SYN_RECV, owned through its listener", () => {
    expect(decodeSetStateRecord(bytes(RECORDED.v4Accepted))).toMatchObject({
      socket: 0xffff888158029280n,
      oldState: "LISTEN",
      newState: "SYN_RECV",
      localAddress: "127.0.0.1",
      localPort: 39195,
      remoteAddress: "127.0.0.1",
      remotePort: 46860,
      pid: 5452,
      comm: "bun",
      ownerSource: "listener",
    });
  });

  test("IPv6: SYN_SENT→ESTABLISHED with the port now known, and a listener's CLOSE→LISTEN", () => {
    expect(decodeSetStateRecord(bytes(RECORDED.v6Established))).toMatchObject({
      oldState: "SYN_SENT",
      newState: "ESTABLISHED",
      family: 6,
      localAddress: "::1",
      localPort: 32826,
      remoteAddress: "::1",
      remotePort: 43349,
      ownerSource: "connect",
    });
    expect(decodeSetStateRecord(bytes(RECORDED.v6Listen))).toMatchObject({
      oldState: "CLOSE",
      newState: "LISTEN",
      localAddress: "::1",
      localPort: 43349,
      remoteAddress: "::",
      remotePort: 0,
      ownerSource: "listen",
    });
  });

  test("one socket's records share its address; the key is its hex text", () => {
    expect(socketKey(decodeSetStateRecord(bytes(RECORDED.v4Connect)).socket)).toBe("0xffff88815802d340");
  });
});

function edited(hex: string, edit: (view: DataView, raw: Uint8Array) => void): Uint8Array {
  const raw = bytes(hex);
  edit(new DataView(raw.buffer, raw.byteOffset, raw.byteLength), raw);
  return raw;
}

describe("edge cases", () => {
  test("no owner known: process fields are null, whatever bytes the owner block holds", () => {
    const raw = edited(RECORDED.v4Accepted, (v) => v.setUint32(RECORD.OWNER + OWNER.SOURCE, OWNER_SOURCE.none, true));
    expect(decodeSetStateRecord(raw)).toMatchObject({ pid: null, tid: null, uid: null, gid: null, comm: null, ownerSource: null });
  });

  test("owner taken at the local close", () => {
    const raw = edited(RECORDED.v4Accepted, (v) => v.setUint32(RECORD.OWNER + OWNER.SOURCE, OWNER_SOURCE.close, true));
    expect(decodeSetStateRecord(raw).ownerSource).toBe("close");
  });

  test("NEW_SYN_RECV reads as SYN_RECV; a state newer than this code is null with its number kept", () => {
    const raw = edited(RECORDED.v4Accepted, (v) => {
      v.setUint32(RECORD.OLDSTATE, 12, true);
      v.setUint32(RECORD.NEWSTATE, 13, true);
    });
    expect(decodeSetStateRecord(raw)).toMatchObject({ oldState: "SYN_RECV", oldStateCode: 12, newState: null, newStateCode: 13 });
  });

  test("comm: exactly as the process set it, up to the first NUL; 16 bytes without one; invalid UTF-8 replaced", () => {
    const comm = (text: Uint8Array) =>
      decodeSetStateRecord(
        edited(RECORDED.v4Connect, (_v, raw) => {
          raw.fill(0, RECORD.OWNER + OWNER.COMM, RECORD.OWNER + OWNER.COMM + 16);
          raw.set(text, RECORD.OWNER + OWNER.COMM);
        }),
      ).comm;
    expect(comm(new TextEncoder().encode("beacon\u001b[2J"))).toBe("beacon\u001b[2J");
    expect(comm(new TextEncoder().encode("0123456789abcdef"))).toBe("0123456789abcdef");
    expect(comm(new Uint8Array([0x62, 0xff, 0x63]))).toBe("b\ufffdc");
    expect(comm(new Uint8Array([0]))).toBe("");
  });

  test("a perf sample's padding after the record is ignored", () => {
    const padded = new Uint8Array(RECORD.SIZE + 4);
    padded.set(bytes(RECORDED.v6Listen));
    expect(decodeSetStateRecord(padded)).toEqual(decodeSetStateRecord(bytes(RECORDED.v6Listen)));
  });

  test("a record read from an offset inside a larger buffer", () => {
    const big = new Uint8Array(RECORD.SIZE + 12);
    big.set(bytes(RECORDED.v4Connect), 12);
    expect(decodeSetStateRecord(big.subarray(12))).toEqual(decodeSetStateRecord(bytes(RECORDED.v4Connect)));
  });

  test("refused: short, an unknown family, an unknown owner source", () => {
    expect(() => decodeSetStateRecord(bytes(RECORDED.v4Connect).subarray(0, 135))).toThrow(DecodeError);
    expect(() => decodeSetStateRecord(bytes(RECORDED.v4Connect).subarray(0, 135))).toThrow("set-state record is 135 bytes, expected 136");
    // A record of the program before counters (104 bytes) is refused, not read as counters unknown.
    expect(() => decodeSetStateRecord(bytes(RECORDED.v4Connect).subarray(0, 104))).toThrow("expected 136");
    const flag = edited(RECORDED.v4ClientClose, (v) => v.setUint32(RECORD.COUNTERS + COUNTERS.READ, 2, true));
    expect(() => decodeSetStateRecord(flag)).toThrow(/counter flag 2/);
    const family = edited(RECORDED.v4Connect, (v) => v.setUint16(RECORD.FAMILY, 1, true));
    expect(() => decodeSetStateRecord(family)).toThrow("set-state record has address family 1, expected 2 or 10");
    const source = edited(RECORDED.v4Connect, (v) => v.setUint32(RECORD.OWNER + OWNER.SOURCE, 9, true));
    expect(() => decodeSetStateRecord(source)).toThrow(/owner source 9/);
  });

  test("a big-endian recording decodes with the byte order it was written in", () => {
    const le = decodeSetStateRecord(bytes(RECORDED.v4ClientClose));
    const be = edited(RECORDED.v4ClientClose, (v) => {
      for (const [off, width] of [
        [RECORD.KTIME, 8],
        [RECORD.SKADDR, 8],
        [RECORD.OLDSTATE, 4],
        [RECORD.NEWSTATE, 4],
        [RECORD.SPORT, 2],
        [RECORD.DPORT, 2],
        [RECORD.FAMILY, 2],
        [RECORD.PROTOCOL, 2],
        [RECORD.OWNER + OWNER.TGID, 4],
        [RECORD.OWNER + OWNER.TID, 4],
        [RECORD.OWNER + OWNER.UID, 4],
        [RECORD.OWNER + OWNER.GID, 4],
        [RECORD.OWNER + OWNER.SOURCE, 4],
        [RECORD.COUNTERS + COUNTERS.BYTES_SENT, 8],
        [RECORD.COUNTERS + COUNTERS.BYTES_RECEIVED, 8],
        [RECORD.COUNTERS + COUNTERS.SEGS_OUT, 4],
        [RECORD.COUNTERS + COUNTERS.SEGS_IN, 4],
        [RECORD.COUNTERS + COUNTERS.READ, 4],
      ] as const) {
        const field = new Uint8Array(v.buffer, v.byteOffset + off, width);
        field.reverse();
      }
    });
    expect(le.counters).not.toBeNull();
    expect(decodeSetStateRecord(be, false)).toEqual(le);
  });
});
