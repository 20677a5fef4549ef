/**
 * Just enough of the kernel's BTF (BPF Type Format, include/uapi/linux/btf.h and
 * Documentation/bpf/btf.rst) to find where a struct's members lie, so that the sensor's program
 * can read a socket's counters from kernel memory at the offsets of the running kernel rather
 * than offsets guessed at build time.
 *
 * The type section is a sequence of `struct btf_type` (12 bytes) each followed by data whose
 * size depends on its kind; to reach the Nth type every earlier one must be skipped exactly, so a
 * kind this code does not know ends parsing (its trailing size is unknowable) with an error that
 * names it. Members may sit in anonymous structs and unions (and, since 6.8, between zero-sized
 * cacheline group markers): a lookup walks into anonymous members and adds their offsets.
 */
import fs from "node:fs";
import { DecodeError } from "../../../errors.ts";

export const BTF_MAGIC = 0xeb9f;
const HEADER_MIN = 24;
const TYPE_SIZE = 12;

/** BTF kinds (BTF_KIND_*). */
export const BTF_KIND = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

export interface BtfType {
  /** Type id (1-based; 0 is void). */
  id: number;
  kind: number;
  /** Decoded for structs and unions only ("" for others and for anonymous ones). */
  name: string;
  vlen: number;
  kindFlag: boolean;
  /** `size` for INT, STRUCT, UNION, ENUM, ENUM64, FLOAT, DATASEC; `type` for the others that refer. */
  sizeOrType: number;
  /** STRUCT/UNION: where its members start in the blob (they are decoded when first asked for). */
  membersAt?: number;
  /** ARRAY: element type and count. */
  array?: { type: number; count: number };
}

export interface BtfMember {
  name: string;
  type: number;
  /** Offset from the start of the struct, in bits. */
  bitOffset: number;
  /** Width of a bitfield in bits, 0 for an ordinary member. */
  bitfieldSize: number;
}

/** A member found by name: where it is and how wide, in bits and bytes. */
export interface MemberPlace {
  name: string;
  bitOffset: number;
  /** The member's size in bytes (of its type). */
  size: number;
  bitfieldSize: number;
}

/** Bytes that follow each kind's struct btf_type: fixed, or per vlen entry. */
function trailingBytes(kind: number, vlen: number): number | null {
  switch (kind) {
    case BTF_KIND.INT:
      return 4;
    case BTF_KIND.ARRAY:
      return 12;
    case BTF_KIND.STRUCT:
    case BTF_KIND.UNION:
      return 12 * vlen;
    case BTF_KIND.ENUM:
      return 8 * vlen;
    case BTF_KIND.FUNC_PROTO:
      return 8 * vlen;
    case BTF_KIND.VAR:
      return 4;
    case BTF_KIND.DATASEC:
      return 12 * vlen;
    case BTF_KIND.DECL_TAG:
      return 4;
    case BTF_KIND.ENUM64:
      return 12 * vlen;
    case BTF_KIND.PTR:
    case BTF_KIND.FWD:
    case BTF_KIND.TYPEDEF:
    case BTF_KIND.VOLATILE:
    case BTF_KIND.CONST:
    case BTF_KIND.RESTRICT:
    case BTF_KIND.FUNC:
    case BTF_KIND.FLOAT:
    case BTF_KIND.TYPE_TAG:
      return 0;
    default:
      return null;
  }
}

export class Btf {
  /** Types by id; index 0 is void (undefined). */
  private readonly types: (BtfType | undefined)[];
  private byName: Map<string, BtfType[]> | null = null;
  private readonly memberCache = new Map<number, BtfMember[]>();

  private constructor(
    types: (BtfType | undefined)[],
    private readonly view: DataView,
    private readonly le: boolean,
    private readonly name: (offset: number) => string,
  ) {
    this.types = types;
  }

  get typeCount(): number {
    return this.types.length - 1;
  }

  type(id: number): BtfType | undefined {
    return this.types[id];
  }

  /** Parses a whole BTF blob (e.g. /sys/kernel/btf/vmlinux); either byte order. */
  static parse(bytes: Uint8Array): Btf {
    if (bytes.length < HEADER_MIN) throw new DecodeError(`BTF is ${bytes.length} bytes, shorter than its ${HEADER_MIN}-byte header`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const le = view.getUint16(0, true) === BTF_MAGIC;
    if (!le && view.getUint16(0, false) !== BTF_MAGIC) {
      throw new DecodeError(`BTF magic is 0x${view.getUint16(0, true).toString(16)}, expected 0x${BTF_MAGIC.toString(16)}`);
    }
    const version = view.getUint8(2);
    if (version !== 1) throw new DecodeError(`BTF version ${version}, this reader knows version 1`);
    const hdrLen = view.getUint32(4, le);
    const typeOff = view.getUint32(8, le);
    const typeLen = view.getUint32(12, le);
    const strOff = view.getUint32(16, le);
    const strLen = view.getUint32(20, le);
    if (hdrLen < HEADER_MIN) throw new DecodeError(`BTF header length ${hdrLen}, expected at least ${HEADER_MIN}`);
    const typeStart = hdrLen + typeOff;
    const strStart = hdrLen + strOff;
    if (typeStart + typeLen > bytes.length || strStart + strLen > bytes.length) {
      throw new DecodeError(`BTF sections run past its ${bytes.length} bytes (types ${typeStart}+${typeLen}, strings ${strStart}+${strLen})`);
    }
    const strings = bytes.subarray(strStart, strStart + strLen);
    const decoder = new TextDecoder("utf-8");
    const name = (off: number): string => {
      if (off === 0) return "";
      if (off >= strings.length) throw new DecodeError(`BTF name offset ${off} is past the ${strings.length}-byte string section`);
      let end = off;
      while (end < strings.length && strings[end] !== 0) end++;
      return decoder.decode(strings.subarray(off, end));
    };

    const types: (BtfType | undefined)[] = [undefined];
    const end = typeStart + typeLen;
    let at = typeStart;
    while (at < end) {
      if (at + TYPE_SIZE > end) throw new DecodeError(`BTF type ${types.length} at byte ${at} is cut short`);
      const nameOff = view.getUint32(at, le);
      const info = view.getUint32(at + 4, le);
      const sizeOrType = view.getUint32(at + 8, le);
      const vlen = info & 0xffff;
      const kind = (info >>> 24) & 0x1f;
      const kindFlag = (info >>> 31) === 1;
      const trailing = trailingBytes(kind, vlen);
      const id = types.length;
      if (trailing === null) throw new DecodeError(`BTF type ${id} has kind ${kind}, unknown here: the types after it cannot be found`);
      const data = at + TYPE_SIZE;
      if (data + trailing > end) throw new DecodeError(`BTF type ${id} (kind ${kind}) runs past the type section`);
      const t: BtfType = { id, kind, name: "", vlen, kindFlag, sizeOrType };
      // Only structs and unions are looked up by name; other kinds' names are never decoded.
      if (kind === BTF_KIND.STRUCT || kind === BTF_KIND.UNION) {
        t.name = name(nameOff);
        t.membersAt = data;
      } else if (kind === BTF_KIND.ARRAY) {
        t.array = { type: view.getUint32(data, le), count: view.getUint32(data + 8, le) };
      }
      types.push(t);
      at = data + trailing;
    }
    return new Btf(types, view, le, name);
  }

  /** A struct's or union's members, in declaration order. */
  members(t: BtfType): BtfMember[] {
    if (t.membersAt === undefined) return [];
    let list = this.memberCache.get(t.id);
    if (!list) {
      list = [];
      for (let i = 0; i < t.vlen; i++) {
        const m = t.membersAt + i * 12;
        const offset = this.view.getUint32(m + 8, this.le);
        list.push({
          name: this.name(this.view.getUint32(m, this.le)),
          type: this.view.getUint32(m + 4, this.le),
          // With kind_flag, the high 8 bits are a bitfield's width.
          bitOffset: t.kindFlag ? offset & 0xffffff : offset,
          bitfieldSize: t.kindFlag ? offset >>> 24 : 0,
        });
      }
      this.memberCache.set(t.id, list);
    }
    return list;
  }

  /** The running kernel's BTF; null where the kernel has none (built without CONFIG_DEBUG_INFO_BTF). */
  static readKernel(path = "/sys/kernel/btf/vmlinux"): Btf | null {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path);
    } catch {
      return null;
    }
    return Btf.parse(bytes);
  }

  /** The struct named `name` (not a forward declaration), or null. */
  struct(name: string): BtfType | null {
    if (!this.byName) {
      this.byName = new Map();
      for (const t of this.types) {
        if (t && (t.kind === BTF_KIND.STRUCT || t.kind === BTF_KIND.UNION) && t.name !== "") {
          const list = this.byName.get(t.name);
          if (list) list.push(t);
          else this.byName.set(t.name, [t]);
        }
      }
    }
    return this.byName.get(name)?.find((t) => t.kind === BTF_KIND.STRUCT) ?? null;
  }

  /** Size in bytes of a type, following typedefs and qualifiers; null for void, functions, forward declarations. */
  sizeOf(id: number, depth = 0): number | null {
    const t = this.types[id];
    if (!t || depth > 32) return null;
    switch (t.kind) {
      case BTF_KIND.INT:
      case BTF_KIND.STRUCT:
      case BTF_KIND.UNION:
      case BTF_KIND.ENUM:
      case BTF_KIND.ENUM64:
      case BTF_KIND.FLOAT:
        return t.sizeOrType;
      case BTF_KIND.PTR:
        return 8;
      case BTF_KIND.ARRAY: {
        const element = this.sizeOf(t.array!.type, depth + 1);
        return element === null ? null : element * t.array!.count;
      }
      case BTF_KIND.TYPEDEF:
      case BTF_KIND.VOLATILE:
      case BTF_KIND.CONST:
      case BTF_KIND.RESTRICT:
      case BTF_KIND.TYPE_TAG:
        return this.sizeOf(t.sizeOrType, depth + 1);
      default:
        return null;
    }
  }

  /** The struct or union a member's type is, through typedefs and qualifiers; null otherwise. */
  private aggregate(id: number, depth = 0): BtfType | null {
    const t = this.types[id];
    if (!t || depth > 32) return null;
    if (t.kind === BTF_KIND.STRUCT || t.kind === BTF_KIND.UNION) return t;
    if (t.kind === BTF_KIND.TYPEDEF || t.kind === BTF_KIND.VOLATILE || t.kind === BTF_KIND.CONST || t.kind === BTF_KIND.RESTRICT || t.kind === BTF_KIND.TYPE_TAG) {
      return this.aggregate(t.sizeOrType, depth + 1);
    }
    return null;
  }

  /**
   * Where member `name` of `struct` lies, looking into anonymous structs and unions (adding their
   * offsets); null when there is no such member.
   */
  member(struct: BtfType, name: string): MemberPlace | null {
    return this.findMember(struct, name, 0, 0);
  }

  private findMember(struct: BtfType, name: string, base: number, depth: number): MemberPlace | null {
    if (depth > 16) return null;
    for (const m of this.members(struct)) {
      if (m.name === name) {
        const size = this.sizeOf(m.type);
        if (size === null) return null;
        return { name, bitOffset: base + m.bitOffset, size, bitfieldSize: m.bitfieldSize };
      }
    }
    for (const m of this.members(struct)) {
      if (m.name !== "") continue;
      const inner = this.aggregate(m.type);
      if (!inner) continue;
      const found = this.findMember(inner, name, base + m.bitOffset, depth + 1);
      if (found) return found;
    }
    return null;
  }
}
