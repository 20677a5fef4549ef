/**
 * The BTF reader on blobs built here, type by type as the kernel lays them out (every kind, so a
 * wrong trailing size for any of them shifts the types after it and the lookups fail), in both
 * byte orders; then on this machine's own /sys/kernel/btf/vmlinux, where the counters the sensor
 * reads must be found in struct tcp_sock.
 */
import fs from "node:fs";
import { describe, expect, test } from "vitest";
import { BTF_KIND, Btf } from "../../src/engine/linux/bpf/btf.ts";
import { tcpCounterFields } from "../../src/engine/linux/bpf/tcp-counter-fields.ts";
import { DecodeError } from "../../src/errors.ts";

/** Writes a BTF blob: types are added in order (ids from 1), names go to the string section. */
class BtfBuilder {
  private readonly words: { value: number; bytes: 4 }[] = [];
  private readonly strings: string[] = [""];
  private stringBytes = 1;
  private nextId = 1;

  name(text: string): number {
    if (text === "") return 0;
    const at = this.stringBytes;
    this.strings.push(text);
    this.stringBytes += Buffer.byteLength(text) + 1;
    return at;
  }

  /** One struct btf_type and its trailing words; returns its id. */
  type(kind: number, name: string, vlen: number, sizeOrType: number, trailing: number[] = [], kindFlag = false): number {
    const info = ((kindFlag ? 1 : 0) << 31) | (kind << 24) | vlen;
    for (const w of [this.name(name), info >>> 0, sizeOrType, ...trailing]) this.words.push({ value: w >>> 0, bytes: 4 });
    return this.nextId++;
  }

  /** Trailing words of a struct/union: name, type, offset for each member. */
  members(list: [string, number, number][]): number[] {
    return list.flatMap(([name, type, offset]) => [this.name(name), type, offset]);
  }

  build(littleEndian = true): Uint8Array {
    const typeLen = this.words.length * 4;
    const strings = Buffer.from(this.strings.join("\0") + "\0");
    const out = new Uint8Array(24 + typeLen + strings.length);
    const view = new DataView(out.buffer);
    view.setUint16(0, 0xeb9f, littleEndian);
    view.setUint8(2, 1);
    view.setUint32(4, 24, littleEndian);
    view.setUint32(8, 0, littleEndian);
    view.setUint32(12, typeLen, littleEndian);
    view.setUint32(16, typeLen, littleEndian);
    view.setUint32(20, strings.length, littleEndian);
    this.words.forEach((w, i) => view.setUint32(24 + i * 4, w.value, littleEndian));
    out.set(strings, 24 + typeLen);
    return out;
  }
}

/**
 * A blob in which struct tcp_sock comes after one type of every kind, and keeps its counters the
 * way 6.8+ does: between zero-sized cacheline markers, one inside an anonymous union inside an
 * anonymous struct, behind typedefs and a const.
 */
function sample(littleEndian = true): Uint8Array {
  const b = new BtfBuilder();
  const u32 = b.type(BTF_KIND.INT, "unsigned int", 0, 4, [32]);
  const u64 = b.type(BTF_KIND.INT, "long long unsigned int", 0, 8, [64]);
  const char = b.type(BTF_KIND.INT, "char", 0, 1, [8]);
  const typedefU32 = b.type(BTF_KIND.TYPEDEF, "u32", 0, u32);
  const typedefU64 = b.type(BTF_KIND.TYPEDEF, "u64", 0, u64);
  const ptr = b.type(BTF_KIND.PTR, "", 0, char);
  b.type(BTF_KIND.ARRAY, "", 0, 0, [char, u32, 16]);
  const empty = b.type(BTF_KIND.ARRAY, "", 0, 0, [char, u32, 0]);
  b.type(BTF_KIND.ENUM, "tcp_ca_state", 3, 4, [b.name("A"), 0, b.name("B"), 1, b.name("C"), 2]);
  b.type(BTF_KIND.FWD, "request_sock", 0, 0);
  const volatileU32 = b.type(BTF_KIND.VOLATILE, "", 0, typedefU32);
  const constU64 = b.type(BTF_KIND.CONST, "", 0, typedefU64);
  b.type(BTF_KIND.RESTRICT, "", 0, ptr);
  const proto = b.type(BTF_KIND.FUNC_PROTO, "", 2, u32, [b.name("sk"), ptr, b.name("how"), u32]);
  b.type(BTF_KIND.FUNC, "tcp_close", 0, proto);
  const variable = b.type(BTF_KIND.VAR, "sysctl_tcp_mem", 0, u64, [1]);
  b.type(BTF_KIND.DATASEC, ".data", 1, 8, [variable, 0, 8]);
  b.type(BTF_KIND.FLOAT, "double", 0, 8);
  b.type(BTF_KIND.DECL_TAG, "tag", 0, proto, [0xffff_ffff]);
  b.type(BTF_KIND.TYPE_TAG, "user", 0, ptr);
  b.type(BTF_KIND.ENUM64, "big", 2, 8, [b.name("X"), 1, 0, b.name("Y"), 2, 0]);
  // struct sock stand-in, 64 bytes.
  const sock = b.type(BTF_KIND.STRUCT, "sock", 1, 64, b.members([["skc_state", u32, 0]]));
  const rxInner = b.type(BTF_KIND.UNION, "", 2, 8, b.members([["bytes_received", typedefU64, 0], ["rx_alias", u64, 0]]));
  const rxGroup = b.type(BTF_KIND.STRUCT, "", 2, 16, b.members([["rcv_nxt", u32, 0], ["", rxInner, 64]]));
  // Members with kind_flag: offsets carry a bitfield width in their top byte.
  b.type(
    BTF_KIND.STRUCT,
    "tcp_sock",
    8,
    128,
    b.members([
      ["inet_conn", sock, 0],
      ["__cacheline_group_begin__tcp_sock_write_tx", empty, 512],
      ["segs_out", volatileU32, 512],
      ["bytes_sent", constU64, 576],
      ["__cacheline_group_end__tcp_sock_write_tx", empty, 640],
      ["", rxGroup, 640],
      ["segs_in", typedefU32, (0 << 24) | 768],
      ["nonagle", u32, (4 << 24) | 800],
    ]),
    true,
  );
  return b.build(littleEndian);
}

describe("a blob built here", () => {
  test.each([
    ["little-endian", true],
    ["big-endian", false],
  ])("%s: every kind skipped, members found through anonymous structs and unions", (_name, le) => {
    const btf = Btf.parse(sample(le));
    expect(btf.typeCount).toBe(25);
    const tcp = btf.struct("tcp_sock")!;
    expect(tcp).not.toBeNull();
    expect(btf.member(tcp, "bytes_received")).toEqual({ name: "bytes_received", bitOffset: 640 + 64, size: 8, bitfieldSize: 0 });
    expect(btf.member(tcp, "segs_out")).toEqual({ name: "segs_out", bitOffset: 512, size: 4, bitfieldSize: 0 });
    expect(btf.member(tcp, "bytes_sent")).toMatchObject({ bitOffset: 576, size: 8 });
    expect(btf.member(tcp, "segs_in")).toMatchObject({ bitOffset: 768, size: 4, bitfieldSize: 0 });
    expect(btf.member(tcp, "nonagle")).toMatchObject({ bitOffset: 800, bitfieldSize: 4 });
    expect(btf.member(tcp, "skc_state")).toBeNull(); // a named member's members are not the struct's
    expect(btf.member(tcp, "bytes_acked")).toBeNull();
    expect(btf.struct("request_sock")).toBeNull(); // only forward-declared
  });

  test("the counters the sensor reads, in bytes from the socket's address", () => {
    const fields = tcpCounterFields(Btf.parse(sample()));
    expect(fields).toEqual({
      ok: true,
      bytesSent: { member: "bytes_sent", offset: 72, size: 8 },
      bytesReceived: { member: "bytes_received", offset: 88, size: 8 },
      segsOut: { member: "segs_out", offset: 64, size: 4 },
      segsIn: { member: "segs_in", offset: 96, size: 4 },
    });
  });

  test("no BTF, no struct tcp_sock, a missing member: counters are not read, and why is said", () => {
    expect(tcpCounterFields(null)).toMatchObject({ ok: false, reason: expect.stringContaining("no BTF") });
    const b = new BtfBuilder();
    const u32 = b.type(BTF_KIND.INT, "unsigned int", 0, 4, [32]);
    b.type(BTF_KIND.STRUCT, "udp_sock", 1, 4, b.members([["len", u32, 0]]));
    expect(tcpCounterFields(Btf.parse(b.build()))).toEqual({ ok: false, reason: "the kernel's BTF has no struct tcp_sock" });
    const c = new BtfBuilder();
    const v = c.type(BTF_KIND.INT, "unsigned int", 0, 4, [32]);
    c.type(BTF_KIND.STRUCT, "tcp_sock", 1, 4, c.members([["segs_in", v, 0]]));
    expect(tcpCounterFields(Btf.parse(c.build()))).toEqual({ ok: false, reason: "struct tcp_sock has no bytes_sent or bytes_acked" });
  });

  test("refused: bad magic, a cut header or section, a kind unknown here (the types after it could not be found)", () => {
    const good = sample();
    const badMagic = good.slice();
    badMagic[0] = 0;
    expect(() => Btf.parse(badMagic)).toThrow(/BTF magic/);
    expect(() => Btf.parse(good.subarray(0, 20))).toThrow(DecodeError);
    expect(() => Btf.parse(good.subarray(0, good.length - 1))).toThrow(/run past/);
    const b = new BtfBuilder();
    b.type(20, "from-the-future", 0, 0);
    expect(() => Btf.parse(b.build())).toThrow("BTF type 1 has kind 20, unknown here: the types after it cannot be found");
  });
});

const VMLINUX = "/sys/kernel/btf/vmlinux";

describe.runIf(fs.existsSync(VMLINUX))("this machine's kernel BTF", () => {
  test("struct tcp_sock's counters are found, inside struct tcp_sock and in the right sizes", () => {
    const btf = Btf.readKernel()!;
    const tcp = btf.struct("tcp_sock")!;
    expect(tcp).not.toBeNull();
    const fields = tcpCounterFields(btf);
    if (!fields.ok) throw new Error(fields.reason);
    // Past the embedded inet_connection_sock (which begins with struct sock) and inside the struct.
    const first = btf.members(tcp)[0]!;
    expect(first.name).toBe("inet_conn");
    const firstSize = btf.sizeOf(first.type)!;
    for (const f of [fields.bytesSent, fields.bytesReceived, fields.segsOut, fields.segsIn]) {
      expect(f.offset).toBeGreaterThanOrEqual(firstSize);
      expect(f.offset + f.size).toBeLessThanOrEqual(tcp.sizeOrType);
    }
    expect([fields.bytesSent.size, fields.bytesReceived.size, fields.segsOut.size, fields.segsIn.size]).toEqual([8, 8, 4, 4]);
    // 4.19+ has bytes_sent, which is what sock_diag reports as bytesSent.
    expect(fields.bytesSent.member).toBe("bytes_sent");
  });
});
