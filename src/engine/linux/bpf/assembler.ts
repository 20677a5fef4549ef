/**
 * A small eBPF assembler: named instructions in, the kernel's 8-byte `struct bpf_insn` out
 * (include/uapi/linux/bpf.h and bpf_common.h). It exists so the sensor's program can be written
 * and read as instructions rather than as hex, without clang or libbpf on the target machine.
 *
 * Jumps name labels; `assemble()` turns them into the kernel's relative offsets (counted in
 * 8-byte slots from the instruction after the jump; a 64-bit immediate load takes two slots).
 * Anything the kernel could not encode (an offset beyond 16 bits, an immediate beyond 32, a
 * register beyond r10, a label used but never placed) is refused here with the instruction's
 * index, rather than by the verifier with a less telling message.
 */

/** Kernel helper numbers (include/uapi/linux/bpf.h, __BPF_FUNC_MAPPER order), for call(). */
export const HELPER = {
  mapLookupElem: 1,
  mapUpdateElem: 2,
  mapDeleteElem: 3,
  /** Reads kernel memory before 5.5 (user or kernel, by address). */
  probeRead: 4,
  ktimeGetNs: 5,
  getCurrentPidTgid: 14,
  getCurrentUidGid: 15,
  getCurrentComm: 16,
  perfEventOutput: 25,
  /** Reads kernel memory (5.5+). */
  probeReadKernel: 113,
  ringbufOutput: 130,
} as const;

/** eBPF registers: r0 return value, r1-r5 helper arguments, r6-r9 kept across calls, r10 frame pointer. */
export type Register = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;
export const R0 = 0,
  R1 = 1,
  R2 = 2,
  R3 = 3,
  R4 = 4,
  R5 = 5,
  R6 = 6,
  R7 = 7,
  R8 = 8,
  R9 = 9,
  R10 = 10;

/** Access widths: byte, half word (2), word (4), double word (8). */
export type Size = "b" | "h" | "w" | "dw";
export const SIZE_BYTES: Readonly<Record<Size, number>> = { b: 1, h: 2, w: 4, dw: 8 };

// Instruction classes, the low three bits of the opcode.
const CLASS_LD = 0x00;
const CLASS_LDX = 0x01;
const CLASS_ST = 0x02;
const CLASS_STX = 0x03;
const CLASS_ALU = 0x04;
const CLASS_JMP = 0x05;
const CLASS_JMP32 = 0x06;
const CLASS_ALU64 = 0x07;

const SIZE_CODE: Readonly<Record<Size, number>> = { w: 0x00, h: 0x08, b: 0x10, dw: 0x18 };
const MODE_IMM = 0x00;
const MODE_MEM = 0x60;
const MODE_ATOMIC = 0xc0;
const SOURCE_K = 0x00;
const SOURCE_X = 0x08;

export type AluOp = "add" | "sub" | "mul" | "div" | "or" | "and" | "lsh" | "rsh" | "neg" | "mod" | "xor" | "mov" | "arsh";
const ALU_CODE: Readonly<Record<AluOp, number>> = {
  add: 0x00,
  sub: 0x10,
  mul: 0x20,
  div: 0x30,
  or: 0x40,
  and: 0x50,
  lsh: 0x60,
  rsh: 0x70,
  neg: 0x80,
  mod: 0x90,
  xor: 0xa0,
  mov: 0xb0,
  arsh: 0xc0,
};

/** Conditional jumps; the "s" forms compare signed. */
export type JumpOp = "jeq" | "jgt" | "jge" | "jset" | "jne" | "jsgt" | "jsge" | "jlt" | "jle" | "jslt" | "jsle";
const JUMP_CODE: Readonly<Record<JumpOp, number>> = {
  jeq: 0x10,
  jgt: 0x20,
  jge: 0x30,
  jset: 0x40,
  jne: 0x50,
  jsgt: 0x60,
  jsge: 0x70,
  jlt: 0xa0,
  jle: 0xb0,
  jslt: 0xc0,
  jsle: 0xd0,
};
const JMP_JA = 0x00;
const JMP_CALL = 0x80;
const JMP_EXIT = 0x90;

/** `src_reg` of a 64-bit immediate load whose immediate is a map's file descriptor. */
export const PSEUDO_MAP_FD = 1;

/** One encoded slot, before labels are resolved. */
interface Slot {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
  /** Label whose position becomes `off` (jumps only). */
  target?: string;
  /** What the caller wrote, for error messages. */
  text: string;
}

export class AssemblerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AssemblerError";
  }
}

function checkRegister(r: number, text: string): void {
  if (!Number.isInteger(r) || r < 0 || r > 10) throw new AssemblerError(`${text}: no register r${r}`);
}

function checkImm32(value: number, text: string): number {
  if (!Number.isInteger(value) || value < -0x8000_0000 || value > 0xffff_ffff) {
    throw new AssemblerError(`${text}: immediate ${value} does not fit in 32 bits`);
  }
  return value | 0;
}

function checkOff16(value: number, text: string): number {
  if (!Number.isInteger(value) || value < -0x8000 || value > 0x7fff) {
    throw new AssemblerError(`${text}: offset ${value} does not fit in 16 signed bits`);
  }
  return value;
}

/**
 * Builds a program instruction by instruction. Methods return `this` so a program reads as a
 * list; `label` names the position of the next instruction.
 */
export class Assembler {
  private readonly slots: Slot[] = [];
  private readonly labels = new Map<string, number>();

  /** Number of 8-byte slots so far (what the kernel counts as instructions). */
  get length(): number {
    return this.slots.length;
  }

  label(name: string): this {
    if (this.labels.has(name)) throw new AssemblerError(`label "${name}" placed twice`);
    this.labels.set(name, this.slots.length);
    return this;
  }

  private push(slot: Omit<Slot, "off" | "imm" | "dst" | "src"> & Partial<Slot>): this {
    const full: Slot = { dst: 0, src: 0, off: 0, imm: 0, ...slot };
    checkRegister(full.dst, full.text);
    checkRegister(full.src, full.text);
    full.off = checkOff16(full.off, full.text);
    full.imm = checkImm32(full.imm, full.text);
    this.slots.push(full);
    return this;
  }

  // ALU, 64 and 32 bits. A 32-bit operation zeroes the upper half of the destination.

  alu64Imm(op: AluOp, dst: Register, imm: number): this {
    return this.push({ code: CLASS_ALU64 | ALU_CODE[op] | SOURCE_K, dst, imm, text: `${op}64 r${dst}, ${imm}` });
  }
  alu64Reg(op: AluOp, dst: Register, src: Register): this {
    return this.push({ code: CLASS_ALU64 | ALU_CODE[op] | SOURCE_X, dst, src, text: `${op}64 r${dst}, r${src}` });
  }
  alu32Imm(op: AluOp, dst: Register, imm: number): this {
    return this.push({ code: CLASS_ALU | ALU_CODE[op] | SOURCE_K, dst, imm, text: `${op}32 r${dst}, ${imm}` });
  }
  alu32Reg(op: AluOp, dst: Register, src: Register): this {
    return this.push({ code: CLASS_ALU | ALU_CODE[op] | SOURCE_X, dst, src, text: `${op}32 r${dst}, r${src}` });
  }
  mov64Imm(dst: Register, imm: number): this {
    return this.alu64Imm("mov", dst, imm);
  }
  mov64Reg(dst: Register, src: Register): this {
    return this.alu64Reg("mov", dst, src);
  }
  mov32Imm(dst: Register, imm: number): this {
    return this.alu32Imm("mov", dst, imm);
  }
  mov32Reg(dst: Register, src: Register): this {
    return this.alu32Reg("mov", dst, src);
  }

  // Memory. `ldx` loads dst = *(size *)(src + off); `st`/`stx` store *(size *)(dst + off).

  ldx(size: Size, dst: Register, src: Register, off: number): this {
    return this.push({ code: CLASS_LDX | SIZE_CODE[size] | MODE_MEM, dst, src, off, text: `ldx${size} r${dst}, [r${src}${sign(off)}]` });
  }
  st(size: Size, dst: Register, off: number, imm: number): this {
    return this.push({ code: CLASS_ST | SIZE_CODE[size] | MODE_MEM, dst, off, imm, text: `st${size} [r${dst}${sign(off)}], ${imm}` });
  }
  stx(size: Size, dst: Register, off: number, src: Register): this {
    return this.push({ code: CLASS_STX | SIZE_CODE[size] | MODE_MEM, dst, src, off, text: `stx${size} [r${dst}${sign(off)}], r${src}` });
  }
  /** Atomic *(size *)(dst + off) += src; only word and double word exist. */
  atomicAdd(size: "w" | "dw", dst: Register, off: number, src: Register): this {
    return this.push({ code: CLASS_STX | SIZE_CODE[size] | MODE_ATOMIC, dst, src, off, imm: 0, text: `xadd${size} [r${dst}${sign(off)}], r${src}` });
  }

  /** dst = a 64-bit constant; takes two slots. */
  ldImm64(dst: Register, value: bigint): this {
    const v = BigInt.asUintN(64, value);
    const low = Number(v & 0xffff_ffffn);
    const high = Number(v >> 32n);
    const text = `lddw r${dst}, 0x${v.toString(16)}`;
    this.push({ code: CLASS_LD | SIZE_CODE.dw | MODE_IMM, dst, imm: low | 0, text });
    return this.push({ code: 0, imm: high | 0, text: `${text} (second half)` });
  }

  /** dst = the map behind file descriptor `fd` (the loader replaces the fd with the map's address). */
  ldMapFd(dst: Register, fd: number): this {
    const text = `lddw r${dst}, map fd ${fd}`;
    this.push({ code: CLASS_LD | SIZE_CODE.dw | MODE_IMM, dst, src: PSEUDO_MAP_FD, imm: fd, text });
    return this.push({ code: 0, imm: 0, text: `${text} (second half)` });
  }

  // Control flow.

  ja(target: string): this {
    return this.push({ code: CLASS_JMP | JMP_JA, target, text: `ja ${target}` });
  }
  jmpImm(op: JumpOp, dst: Register, imm: number, target: string): this {
    return this.push({ code: CLASS_JMP | JUMP_CODE[op] | SOURCE_K, dst, imm, target, text: `${op} r${dst}, ${imm}, ${target}` });
  }
  jmpReg(op: JumpOp, dst: Register, src: Register, target: string): this {
    return this.push({ code: CLASS_JMP | JUMP_CODE[op] | SOURCE_X, dst, src, target, text: `${op} r${dst}, r${src}, ${target}` });
  }
  /** Compares the low 32 bits only (kernel 5.1+). */
  jmp32Imm(op: JumpOp, dst: Register, imm: number, target: string): this {
    return this.push({ code: CLASS_JMP32 | JUMP_CODE[op] | SOURCE_K, dst, imm, target, text: `${op}32 r${dst}, ${imm}, ${target}` });
  }
  jmp32Reg(op: JumpOp, dst: Register, src: Register, target: string): this {
    return this.push({ code: CLASS_JMP32 | JUMP_CODE[op] | SOURCE_X, dst, src, target, text: `${op}32 r${dst}, r${src}, ${target}` });
  }
  /** Calls kernel helper number `helper`; arguments in r1-r5, result in r0, r1-r5 clobbered. */
  call(helper: number): this {
    return this.push({ code: CLASS_JMP | JMP_CALL, imm: helper, text: `call ${helper}` });
  }
  exit(): this {
    return this.push({ code: CLASS_JMP | JMP_EXIT, text: "exit" });
  }

  /** The program as the kernel takes it in `bpf_attr.insns`. */
  assemble(littleEndian = isLittleEndianHost()): Buffer {
    const out = Buffer.alloc(this.slots.length * 8);
    this.slots.forEach((slot, index) => {
      let off = slot.off;
      if (slot.target !== undefined) {
        const at = this.labels.get(slot.target);
        if (at === undefined) throw new AssemblerError(`instruction ${index} (${slot.text}): label "${slot.target}" is never placed`);
        off = checkOff16(at - (index + 1), `instruction ${index} (${slot.text})`);
      }
      const base = index * 8;
      out[base] = slot.code;
      // The register nibbles are C bit-fields (dst_reg:4, src_reg:4), whose order follows the
      // machine's byte order.
      out[base + 1] = littleEndian ? (slot.src << 4) | slot.dst : (slot.dst << 4) | slot.src;
      if (littleEndian) {
        out.writeInt16LE(off, base + 2);
        out.writeInt32LE(slot.imm, base + 4);
      } else {
        out.writeInt16BE(off, base + 2);
        out.writeInt32BE(slot.imm, base + 4);
      }
    });
    return out;
  }

  /** One line per slot, for error messages and for reading a program next to the verifier's log. */
  listing(): string {
    const byIndex = new Map<number, string[]>();
    for (const [name, at] of this.labels) byIndex.set(at, [...(byIndex.get(at) ?? []), name]);
    const lines: string[] = [];
    this.slots.forEach((slot, index) => {
      for (const name of byIndex.get(index) ?? []) lines.push(`${name}:`);
      lines.push(`${String(index).padStart(4)}: ${slot.text}`);
    });
    return lines.join("\n");
  }
}

function sign(off: number): string {
  return off < 0 ? `${off}` : `+${off}`;
}

export function isLittleEndianHost(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}
