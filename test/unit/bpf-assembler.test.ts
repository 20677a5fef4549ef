/**
 * The eBPF assembler against known encodings. Each expected byte string is written out by hand
 * from include/uapi/linux/bpf.h and bpf_common.h (opcode = class | size/op | mode/source,
 * then dst_reg in the low nibble and src_reg in the high nibble of byte 1 on little-endian
 * machines, then off as s16 and imm as s32, little-endian); several are the well-known forms
 * seen in kernel samples and in cilium/ebpf's asm tests (e.g. the 64-bit immediate 2<<32|1).
 */
import { describe, expect, test } from "vitest";
import {
  Assembler,
  AssemblerError,
  R0,
  R1,
  R2,
  R6,
  R7,
  R10,
  type Register,
} from "../../src/engine/linux/bpf/assembler.ts";

function hex(buf: Buffer): string {
  return [...buf].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

function one(build: (a: Assembler) => Assembler): string {
  return hex(build(new Assembler()).assemble(true));
}

describe("single instructions", () => {
  const cases: [string, (a: Assembler) => Assembler, string][] = [
    ["mov64 r0, 0", (a) => a.mov64Imm(R0, 0), "b7 00 00 00 00 00 00 00"],
    ["mov64 r6, r1", (a) => a.mov64Reg(R6, R1), "bf 16 00 00 00 00 00 00"],
    ["mov32 r0, 1", (a) => a.mov32Imm(R0, 1), "b4 00 00 00 01 00 00 00"],
    ["mov32 r1, r2", (a) => a.mov32Reg(R1, R2), "bc 21 00 00 00 00 00 00"],
    ["add64 r2, -8", (a) => a.alu64Imm("add", R2, -8), "07 02 00 00 f8 ff ff ff"],
    ["add64 r1, r2", (a) => a.alu64Reg("add", R1, R2), "0f 21 00 00 00 00 00 00"],
    ["rsh64 r0, 32", (a) => a.alu64Imm("rsh", R0, 32), "77 00 00 00 20 00 00 00"],
    ["lsh64 r1, 8", (a) => a.alu64Imm("lsh", R1, 8), "67 01 00 00 08 00 00 00"],
    ["or64 r1, r2", (a) => a.alu64Reg("or", R1, R2), "4f 21 00 00 00 00 00 00"],
    ["and32 r0, 0xff", (a) => a.alu32Imm("and", R0, 0xff), "54 00 00 00 ff 00 00 00"],
    ["xor32 r1, r1", (a) => a.alu32Reg("xor", R1, R1), "ac 11 00 00 00 00 00 00"],
    ["arsh64 r7, 1", (a) => a.alu64Imm("arsh", R7, 1), "c7 07 00 00 01 00 00 00"],
    ["imm 0xffffffff is taken as -1", (a) => a.mov32Imm(R0, 0xffff_ffff), "b4 00 00 00 ff ff ff ff"],
    ["ldxb r1, [r6+31]", (a) => a.ldx("b", R1, R6, 31), "71 61 1f 00 00 00 00 00"],
    ["ldxh r0, [r6+30]", (a) => a.ldx("h", R0, R6, 30), "69 60 1e 00 00 00 00 00"],
    ["ldxw r0, [r1+8]", (a) => a.ldx("w", R0, R1, 8), "61 10 08 00 00 00 00 00"],
    ["ldxdw r7, [r6+8]", (a) => a.ldx("dw", R7, R6, 8), "79 67 08 00 00 00 00 00"],
    ["stb [r10-1], 7", (a) => a.st("b", R10, -1, 7), "72 0a ff ff 07 00 00 00"],
    ["sth [r10-2], 0", (a) => a.st("h", R10, -2, 0), "6a 0a fe ff 00 00 00 00"],
    ["stw [r10-4], 0", (a) => a.st("w", R10, -4, 0), "62 0a fc ff 00 00 00 00"],
    ["stdw [r10-8], 0", (a) => a.st("dw", R10, -8, 0), "7a 0a f8 ff 00 00 00 00"],
    ["stxb [r10-1], r1", (a) => a.stx("b", R10, -1, R1), "73 1a ff ff 00 00 00 00"],
    ["stxh [r10-2], r1", (a) => a.stx("h", R10, -2, R1), "6b 1a fe ff 00 00 00 00"],
    ["stxw [r10-4], r0", (a) => a.stx("w", R10, -4, R0), "63 0a fc ff 00 00 00 00"],
    ["stxdw [r10-8], r1", (a) => a.stx("dw", R10, -8, R1), "7b 1a f8 ff 00 00 00 00"],
    ["xadddw [r0+0], r1", (a) => a.atomicAdd("dw", R0, 0, R1), "db 10 00 00 00 00 00 00"],
    ["xaddw [r0+8], r1", (a) => a.atomicAdd("w", R0, 8, R1), "c3 10 08 00 00 00 00 00"],
    ["call 14 (get_current_pid_tgid)", (a) => a.call(14), "85 00 00 00 0e 00 00 00"],
    ["call 130 (ringbuf_output)", (a) => a.call(130), "85 00 00 00 82 00 00 00"],
    ["exit", (a) => a.exit(), "95 00 00 00 00 00 00 00"],
    [
      "lddw r0, 2<<32|1 (cilium/ebpf's vector)",
      (a) => a.ldImm64(R0, (2n << 32n) | 1n),
      "18 00 00 00 01 00 00 00 00 00 00 00 02 00 00 00",
    ],
    [
      "lddw r0, 0x1122334455667788",
      (a) => a.ldImm64(R0, 0x1122334455667788n),
      "18 00 00 00 88 77 66 55 00 00 00 00 44 33 22 11",
    ],
    ["lddw r1, -1", (a) => a.ldImm64(R1, -1n), "18 01 00 00 ff ff ff ff 00 00 00 00 ff ff ff ff"],
    [
      "lddw r1, map fd 3 (src_reg BPF_PSEUDO_MAP_FD)",
      (a) => a.ldMapFd(R1, 3),
      "18 11 00 00 03 00 00 00 00 00 00 00 00 00 00 00",
    ],
  ];
  test.each(cases)("%s", (_name, build, expected) => {
    expect(one(build)).toBe(expected);
  });
});

describe("jumps and labels", () => {
  test("a forward jump counts slots from the instruction after it", () => {
    const a = new Assembler().jmpImm("jeq", R0, 0, "out").mov64Imm(R0, 1).label("out").exit();
    expect(hex(a.assemble(true))).toBe(
      ["15 00 01 00 00 00 00 00", "b7 00 00 00 01 00 00 00", "95 00 00 00 00 00 00 00"].join(" "),
    );
  });

  test("a 64-bit immediate load counts as two slots", () => {
    const a = new Assembler().ja("out").ldImm64(R1, 5n).label("out").exit();
    expect(hex(a.assemble(true)).slice(0, 23)).toBe("05 00 02 00 00 00 00 00");
    expect(a.length).toBe(4);
  });

  test("a backward jump gets a negative offset", () => {
    const a = new Assembler().label("top").mov64Imm(R0, 0).jmpReg("jne", R1, R2, "top");
    expect(hex(a.assemble(true))).toBe("b7 00 00 00 00 00 00 00 5d 21 fe ff 00 00 00 00");
  });

  test("a jump to the very next instruction is offset 0", () => {
    expect(one((a) => a.ja("next").label("next"))).toBe("05 00 00 00 00 00 00 00");
  });

  test("every conditional opcode, 64 and 32 bits, immediate and register", () => {
    const codes = { jeq: 0x10, jgt: 0x20, jge: 0x30, jset: 0x40, jne: 0x50, jsgt: 0x60, jsge: 0x70, jlt: 0xa0, jle: 0xb0, jslt: 0xc0, jsle: 0xd0 } as const;
    for (const [op, code] of Object.entries(codes) as [keyof typeof codes, number][]) {
      const bytes = new Assembler()
        .jmpImm(op, R1, 9, "x")
        .jmpReg(op, R1, R2, "x")
        .jmp32Imm(op, R1, 9, "x")
        .jmp32Reg(op, R1, R2, "x")
        .label("x")
        .assemble(true);
      expect([bytes[0], bytes[8], bytes[16], bytes[24]]).toEqual([code | 0x05, code | 0x0d, code | 0x06, code | 0x0e]);
      expect(bytes.readInt16LE(2)).toBe(3);
      expect(bytes.readInt32LE(4)).toBe(9);
      expect(bytes[9]).toBe(0x21);
    }
  });
});

describe("what the kernel could not encode is refused here", () => {
  test("a label used but never placed", () => {
    const a = new Assembler().mov64Imm(R0, 0).ja("nowhere");
    expect(() => a.assemble()).toThrow(/instruction 1 \(ja nowhere\): label "nowhere" is never placed/);
  });
  test("a label placed twice", () => {
    expect(() => new Assembler().label("a").exit().label("a")).toThrow(AssemblerError);
  });
  test("a register beyond r10", () => {
    expect(() => new Assembler().mov64Imm(11 as Register, 0)).toThrow(/no register r11/);
  });
  test("an immediate beyond 32 bits", () => {
    expect(() => new Assembler().mov64Imm(R0, 2 ** 32)).toThrow(/does not fit in 32 bits/);
    expect(() => new Assembler().mov64Imm(R0, -(2 ** 31) - 1)).toThrow(/does not fit in 32 bits/);
    expect(() => new Assembler().mov64Imm(R0, 1.5)).toThrow(/does not fit/);
  });
  test("a memory offset beyond 16 bits", () => {
    expect(() => new Assembler().ldx("w", R0, R1, 0x8000)).toThrow(/does not fit in 16 signed bits/);
  });
  test("a jump farther than 32767 slots", () => {
    const a = new Assembler().ja("far");
    for (let i = 0; i < 0x8000; i++) a.mov64Imm(R0, 0);
    a.label("far").exit();
    expect(() => a.assemble()).toThrow(/offset 32768 does not fit/);
  });
});

describe("byte order", () => {
  test("big-endian machines swap the register nibbles and the number fields", () => {
    const a = new Assembler().stx("dw", R10, -8, R1).alu64Imm("add", R2, -8);
    expect(hex(a.assemble(false))).toBe("7b a1 ff f8 00 00 00 00 07 20 00 00 ff ff ff f8");
  });

  test("the listing names labels and instructions", () => {
    const a = new Assembler().mov64Reg(R6, R1).label("out").mov64Imm(R0, 0).exit();
    expect(a.listing()).toBe("   0: mov64 r6, r1\nout:\n   1: mov64 r0, 0\n   2: exit");
  });
});
