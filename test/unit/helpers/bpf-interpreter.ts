/**
 * A small eBPF interpreter for unit tests: runs an assembled tracepoint program against a
 * made-up tracepoint record, with maps and helpers simulated, so the set-state program's logic
 * (owners kept per socket, listeners, both tracepoint layouts) is tested without a kernel.
 *
 * It implements only what the sensor's programs use, and it enforces the verifier rules that
 * matter for them: context loads must be aligned and not below offset 8, memory accesses must
 * stay inside a known region, a program must end with exit within a step budget. Anything else
 * throws, so a program that would need more cannot pass silently.
 */
import { PSEUDO_MAP_FD } from "../../../src/engine/linux/bpf/assembler.ts";

const CTX_BASE = 0x1000_0000n;
const STACK_TOP = 0x2000_0000n;
const STACK_SIZE = 512;
const VALUE_BASE = 0x3000_0000n;
const MAP_HANDLE_BASE = 0x4000_0000n;
const U64 = (1n << 64n) - 1n;

interface Region {
  base: bigint;
  bytes: Uint8Array;
  name: string;
}

export type SimMap =
  | { kind: "hash"; keySize: number; valueSize: number; maxEntries: number; entries: Map<string, Region> }
  | { kind: "array"; valueSize: number; values: Region[] }
  | { kind: "output"; records: Uint8Array[]; full: boolean };

export interface Task {
  tgid: number;
  tid: number;
  uid: number;
  gid: number;
  comm: string;
}

export interface RunResult {
  r0: bigint;
  /** Every load from the context: offset and width. */
  contextLoads: { offset: number; size: number }[];
}

export class BpfInterpreter {
  private readonly maps = new Map<number, SimMap>();
  private valueCount = 0n;
  /** Kernel time the next bpf_ktime_get_ns returns. */
  now = 1_000_000n;
  /** Kernel objects the probe-read helpers can read (the program cannot load from them directly). */
  private readonly kernel: Region[] = [];
  /** Every probe read: address and size, and whether it succeeded. */
  readonly probeReads: { address: bigint; size: number; ok: boolean }[] = [];

  constructor(private readonly program: Buffer) {}

  hashMap(fd: number, keySize: number, valueSize: number, maxEntries: number): SimMap & { kind: "hash" } {
    const map = { kind: "hash" as const, keySize, valueSize, maxEntries, entries: new Map<string, Region>() };
    this.maps.set(fd, map);
    return map;
  }

  arrayMap(fd: number, valueSize: number, entries: number): SimMap & { kind: "array" } {
    const map = { kind: "array" as const, valueSize, values: Array.from({ length: entries }, (_, i) => this.region(valueSize, `array ${fd}[${i}]`)) };
    this.maps.set(fd, map);
    return map;
  }

  /** Places a kernel object (e.g. a struct tcp_sock) at `address` for probe reads. */
  kernelObject(address: bigint, bytes: Uint8Array): void {
    this.kernel.push({ base: address, bytes, name: `kernel 0x${address.toString(16)}` });
  }

  outputMap(fd: number): SimMap & { kind: "output" } {
    const map = { kind: "output" as const, records: [] as Uint8Array[], full: false };
    this.maps.set(fd, map);
    return map;
  }

  private region(size: number, name: string): Region {
    const base = VALUE_BASE + this.valueCount * 0x1000n;
    this.valueCount++;
    return { base, bytes: new Uint8Array(size), name };
  }

  /** Runs the program once for a tracepoint record `ctx`, as if `task` were current. */
  run(ctx: Uint8Array, task: Task, maxSteps = 10_000): RunResult {
    const stack: Region = { base: STACK_TOP - BigInt(STACK_SIZE), bytes: new Uint8Array(STACK_SIZE), name: "stack" };
    const context: Region = { base: CTX_BASE, bytes: ctx, name: "context" };
    const regions = (): Region[] => [
      stack,
      context,
      ...[...this.maps.values()].flatMap((m) => (m.kind === "hash" ? [...m.entries.values()] : m.kind === "array" ? m.values : [])),
    ];
    const contextLoads: { offset: number; size: number }[] = [];
    const find = (address: bigint, size: number, write: boolean): { region: Region; at: number } => {
      for (const region of regions()) {
        if (address >= region.base && address + BigInt(size) <= region.base + BigInt(region.bytes.length)) {
          const at = Number(address - region.base);
          if (region === context) {
            if (write) throw new Error("write to the context");
            if (at < 8) throw new Error(`context load below offset 8 (at ${at})`);
            if (at % size !== 0) throw new Error(`misaligned context load of ${size} bytes at ${at}`);
            contextLoads.push({ offset: at, size });
          }
          return { region, at };
        }
      }
      throw new Error(`access of ${size} bytes at 0x${address.toString(16)} outside every region`);
    };
    const load = (address: bigint, size: number): bigint => {
      const { region, at } = find(address, size, false);
      let value = 0n;
      for (let i = size - 1; i >= 0; i--) value = (value << 8n) | BigInt(region.bytes[at + i]!);
      return value;
    };
    const store = (address: bigint, size: number, value: bigint) => {
      const { region, at } = find(address, size, true);
      for (let i = 0; i < size; i++) region.bytes[at + i] = Number((value >> BigInt(8 * i)) & 0xffn);
    };
    const readBytes = (address: bigint, size: number) => {
      const { region, at } = find(address, size, false);
      return region.bytes.slice(at, at + size);
    };
    const mapOf = (handle: bigint): SimMap => {
      const map = this.maps.get(Number(handle - MAP_HANDLE_BASE));
      if (!map) throw new Error(`no map behind handle 0x${handle.toString(16)}`);
      return map;
    };

    const reg = new Array<bigint>(11).fill(0n);
    reg[1] = CTX_BASE;
    reg[10] = STACK_TOP;
    const p = this.program;
    const slots = p.length / 8;
    let pc = 0;
    for (let steps = 0; steps < maxSteps; steps++) {
      if (pc < 0 || pc >= slots) throw new Error(`jumped outside the program (to ${pc})`);
      const b = pc * 8;
      const code = p[b]!;
      const dst = p[b + 1]! & 0x0f;
      const src = p[b + 1]! >> 4;
      const off = p.readInt16LE(b + 2);
      const imm = p.readInt32LE(b + 4);
      const immU64 = BigInt.asUintN(64, BigInt(imm));
      const cls = code & 0x07;
      const width = ({ 0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8 } as Record<number, number>)[code & 0x18]!;
      pc++;
      switch (cls) {
        case 0x07:
        case 0x04: {
          const is64 = cls === 0x07;
          const operand = code & 0x08 ? reg[src]! : immU64;
          const a = is64 ? reg[dst]! : reg[dst]! & 0xffff_ffffn;
          const bv = is64 ? operand : operand & 0xffff_ffffn;
          const bits = is64 ? 64 : 32;
          let r: bigint;
          switch (code & 0xf0) {
            case 0x00: r = a + bv; break;
            case 0x10: r = a - bv; break;
            case 0x20: r = a * bv; break;
            case 0x40: r = a | bv; break;
            case 0x50: r = a & bv; break;
            case 0x60: r = a << (bv & BigInt(bits - 1)); break;
            case 0x70: r = a >> (bv & BigInt(bits - 1)); break;
            case 0xa0: r = a ^ bv; break;
            case 0xb0: r = bv; break;
            default: throw new Error(`ALU op 0x${code.toString(16)} not simulated`);
          }
          reg[dst] = BigInt.asUintN(bits, r);
          break;
        }
        case 0x01:
          if ((code & 0xe0) !== 0x60) throw new Error(`load mode 0x${code.toString(16)} not simulated`);
          reg[dst] = load(reg[src]! + BigInt(off), width);
          break;
        case 0x02:
          store(reg[dst]! + BigInt(off), width, immU64);
          break;
        case 0x03:
          if ((code & 0xe0) === 0x60) store(reg[dst]! + BigInt(off), width, reg[src]!);
          else if ((code & 0xe0) === 0xc0 && imm === 0) {
            const address = reg[dst]! + BigInt(off);
            store(address, width, BigInt.asUintN(width * 8, load(address, width) + reg[src]!));
          } else throw new Error(`store 0x${code.toString(16)} not simulated`);
          break;
        case 0x00: {
          if (code !== 0x18) throw new Error(`LD 0x${code.toString(16)} not simulated`);
          const high = BigInt(p.readUInt32LE(b + 12));
          const value = (high << 32n) | BigInt(p.readUInt32LE(b + 4));
          reg[dst] = src === PSEUDO_MAP_FD ? MAP_HANDLE_BASE + value : value;
          pc++;
          break;
        }
        case 0x05:
        case 0x06: {
          const op = code & 0xf0;
          if (cls === 0x05 && op === 0x90) return { r0: reg[0]!, contextLoads };
          if (cls === 0x05 && op === 0x80) {
            reg[0] = this.call(imm, reg, { load, store, readBytes, mapOf }, task);
            for (let r = 1; r <= 5; r++) reg[r] = 0xdead_beefn; // clobbered
            break;
          }
          if (cls === 0x05 && op === 0x00) {
            pc += off;
            break;
          }
          const mask = cls === 0x06 ? 0xffff_ffffn : U64;
          const a = reg[dst]! & mask;
          const bv = (code & 0x08 ? reg[src]! : immU64) & mask;
          let taken: boolean;
          switch (op) {
            case 0x10: taken = a === bv; break;
            case 0x50: taken = a !== bv; break;
            case 0x20: taken = a > bv; break;
            case 0x30: taken = a >= bv; break;
            case 0xa0: taken = a < bv; break;
            case 0xb0: taken = a <= bv; break;
            default: throw new Error(`jump 0x${code.toString(16)} not simulated`);
          }
          if (taken) pc += off;
          break;
        }
        default:
          throw new Error(`instruction class ${cls} not simulated`);
      }
    }
    throw new Error(`no exit within ${maxSteps} steps`);
  }

  private call(
    helper: number,
    reg: bigint[],
    mem: {
      load: (a: bigint, s: number) => bigint;
      store: (a: bigint, s: number, v: bigint) => void;
      readBytes: (a: bigint, s: number) => Uint8Array;
      mapOf: (h: bigint) => SimMap;
    },
    task: Task,
  ): bigint {
    const negative = (errno: number) => BigInt.asUintN(64, BigInt(-errno));
    switch (helper) {
      case 1: {
        const map = mem.mapOf(reg[1]!);
        if (map.kind === "hash") return map.entries.get(Buffer.from(mem.readBytes(reg[2]!, map.keySize)).toString("hex"))?.base ?? 0n;
        if (map.kind === "array") return map.values[Number(mem.load(reg[2]!, 4))]?.base ?? 0n;
        throw new Error("lookup in an output map");
      }
      case 2: {
        const map = mem.mapOf(reg[1]!);
        if (map.kind !== "hash") throw new Error("update of a non-hash map not simulated");
        const key = Buffer.from(mem.readBytes(reg[2]!, map.keySize)).toString("hex");
        const value = mem.readBytes(reg[3]!, map.valueSize);
        const existing = map.entries.get(key);
        if (existing) {
          existing.bytes.set(value);
          return 0n;
        }
        if (map.entries.size >= map.maxEntries) return negative(7); // E2BIG
        const region = this.region(map.valueSize, `hash entry ${key}`);
        region.bytes.set(value);
        map.entries.set(key, region);
        return 0n;
      }
      case 3: {
        const map = mem.mapOf(reg[1]!);
        if (map.kind !== "hash") throw new Error("delete from a non-hash map");
        return map.entries.delete(Buffer.from(mem.readBytes(reg[2]!, map.keySize)).toString("hex")) ? 0n : negative(2);
      }
      case 4:
      case 113: {
        // bpf_probe_read(_kernel)(dst, size, unsafe): a failed read zeroes dst and returns -EFAULT.
        const size = Number(reg[2]!);
        const address = reg[3]!;
        const object = this.kernel.find((k) => address >= k.base && address + BigInt(size) <= k.base + BigInt(k.bytes.length));
        this.probeReads.push({ address, size, ok: object !== undefined });
        for (let i = 0; i < size; i++) {
          const value = object ? object.bytes[Number(address - object.base) + i]! : 0;
          mem.store(reg[1]! + BigInt(i), 1, BigInt(value));
        }
        return object ? 0n : negative(14);
      }
      case 5:
        return this.now++;
      case 14:
        return (BigInt(task.tgid) << 32n) | BigInt(task.tid);
      case 15:
        return (BigInt(task.gid) << 32n) | BigInt(task.uid);
      case 16: {
        const size = Number(reg[2]!);
        const comm = new TextEncoder().encode(task.comm).slice(0, size - 1);
        for (let i = 0; i < size; i++) mem.store(reg[1]! + BigInt(i), 1, BigInt(comm[i] ?? 0));
        return 0n;
      }
      case 25: {
        if (reg[1] !== CTX_BASE) throw new Error("perf_event_output needs the context as its first argument");
        if (reg[3] !== 0xffff_ffffn) throw new Error("perf_event_output flags are not BPF_F_CURRENT_CPU");
        return this.output(mem.mapOf(reg[2]!), mem.readBytes(reg[4]!, Number(reg[5]!)));
      }
      case 130:
        if (reg[4] !== 0n) throw new Error("ringbuf_output flags are not 0");
        return this.output(mem.mapOf(reg[1]!), mem.readBytes(reg[2]!, Number(reg[3]!)));
      default:
        throw new Error(`helper ${helper} not simulated`);
    }
  }

  private output(map: SimMap, bytes: Uint8Array): bigint {
    if (map.kind !== "output") throw new Error("output to a map that is not an output");
    if (map.full) return BigInt.asUintN(64, -11n); // EAGAIN
    map.records.push(bytes);
    return 0n;
  }
}
