/**
 * Generic generators: integers that sit on the edges decoders check, and mutations that turn a
 * well-formed input into an almost well-formed one (truncated, bit-flipped, a length field
 * overwritten, a piece repeated), for bytes and for text.
 */
import fc from "fast-check";

/** Values a length, count or offset field is most likely to be checked against wrongly. */
export const EDGE_U32 = [
  0, 1, 2, 3, 4, 7, 8, 12, 15, 16, 17, 19, 20, 23, 24, 28, 32, 48, 52, 56, 64, 68, 71, 72, 73, 76, 96, 127, 128, 160,
  176, 192, 255, 256, 568, 4096, 0x7fff, 0x8000, 0xfffc, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffff0, 0xfffffffc,
  0xffffffff,
] as const;

/** `arbitrary` about once in `every` values, null otherwise. */
export function sometimes<T>(arbitrary: fc.Arbitrary<T>, every: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: every - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary });
}

export const u8 = fc.integer({ min: 0, max: 0xff });
export const u16 = fc.oneof(fc.constantFrom(...EDGE_U32.filter((v) => v <= 0xffff)), fc.integer({ min: 0, max: 0xffff }));
export const u32 = fc.oneof(fc.constantFrom(...EDGE_U32), fc.integer({ min: 0, max: 0xffffffff }));

/**
 * Bytes of a length in [min, max] filled from a seed (xorshift), all zero or all 0xff. Much
 * cheaper than a byte-by-byte array for payloads whose values matter less than their length;
 * shrinks towards shorter and all-zero.
 */
export function filledBytes(min: number, max: number): fc.Arbitrary<Uint8Array> {
  return fc
    .record({ length: fc.integer({ min, max }), fill: fc.constantFrom("zero", "seeded", "seeded", "seeded", "ones"), seed: fc.integer() })
    .map(({ length, fill, seed }) => {
      const out = new Uint8Array(length);
      if (fill === "ones") out.fill(0xff);
      else if (fill === "seeded") {
        const next = xorshift(seed);
        for (let i = 0; i < length; i++) out[i] = next() & 0xff;
      }
      return out;
    });
}

/** Any bytes, mostly short, sometimes a few kilobytes. */
export const randomBytes = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 2, arbitrary: filledBytes(0, 600) },
  { weight: 1, arbitrary: filledBytes(600, 4096) },
);

type ByteMutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; value: number }
  | { kind: "u16"; at: number; value: number }
  | { kind: "u32"; at: number; value: number }
  | { kind: "truncate"; at: number }
  | { kind: "append"; bytes: Uint8Array }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; count: number }
  | { kind: "repeat"; at: number; count: number };

const position = fc.nat({ max: 0xffff });

const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: position, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("set" as const), at: position, value: u8 }),
  fc.record({ kind: fc.constant("u16" as const), at: position, value: u16 }),
  fc.record({ kind: fc.constant("u32" as const), at: position, value: u32 }),
  fc.record({ kind: fc.constant("truncate" as const), at: position }),
  fc.record({ kind: fc.constant("append" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant("insert" as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
  fc.record({ kind: fc.constant("delete" as const), at: position, count: fc.integer({ min: 1, max: 80 }) }),
  fc.record({ kind: fc.constant("repeat" as const), at: position, count: fc.integer({ min: 1, max: 200 }) }),
);

function applyByteMutation(bytes: Uint8Array, m: ByteMutation): Uint8Array {
  const n = bytes.length;
  if (m.kind === "append") return concatBytes([bytes, m.bytes]);
  if (n === 0) return m.kind === "insert" ? m.bytes.slice() : bytes;
  const at = m.at % n;
  switch (m.kind) {
    case "flip": {
      const out = bytes.slice();
      out[at]! ^= 1 << m.bit;
      return out;
    }
    case "set": {
      const out = bytes.slice();
      out[at] = m.value;
      return out;
    }
    case "u16":
    case "u32": {
      // Length fields sit on 2- and 4-byte boundaries: aim there.
      const width = m.kind === "u16" ? 2 : 4;
      const aligned = at - (at % width);
      if (aligned + width > n) return bytes;
      const out = bytes.slice();
      const view = new DataView(out.buffer);
      if (width === 2) view.setUint16(aligned, m.value, true);
      else view.setUint32(aligned, m.value, true);
      return out;
    }
    case "truncate":
      return bytes.slice(0, at);
    case "insert":
      return concatBytes([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
    case "delete":
      return concatBytes([bytes.subarray(0, at), bytes.subarray(Math.min(n, at + m.count))]);
    case "repeat": {
      const piece = bytes.subarray(at, Math.min(n, at + m.count));
      return concatBytes([bytes.subarray(0, at + piece.length), piece, bytes.subarray(at + piece.length)]);
    }
  }
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Well-formed bytes from `base`, then one to `max` mutations. */
export function mutatedBytes(base: fc.Arbitrary<Uint8Array>, max = 4): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(base, fc.array(byteMutation, { minLength: 1, maxLength: max }))
    .map(([bytes, mutations]) => mutations.reduce(applyByteMutation, bytes));
}

/**
 * The same bytes placed at an offset inside a larger buffer, as a receive buffer's subarray is:
 * a decoder that forgets `byteOffset` reads the wrong bytes.
 */
export function atSomeOffset(bytes: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(bytes, fc.nat({ max: 9 }), fc.nat({ max: 5 })).map(([b, before, after]) => {
    if (before === 0 && after === 0) return b;
    const big = new Uint8Array(before + b.length + after).fill(0xa5);
    big.set(b, before);
    return big.subarray(before, before + b.length);
  });
}

// ---- text ----

type TextMutation =
  | { kind: "insert"; at: number; text: string }
  | { kind: "delete"; at: number; count: number }
  | { kind: "replace"; at: number; text: string }
  | { kind: "truncate"; at: number }
  | { kind: "repeat"; at: number; count: number; times: number }
  | { kind: "swapLines"; a: number; b: number };

/** Characters that carry meaning in the formats fuzzed here. */
const PUNCTUATION = [..." \t\r\n:;,.-_/\\[](){}<>\"'#=%?&*@!+0123456789abcdefABCDEFxX\u0000\u00a0\u2028\ufeff\ud800"];

/** A short string of format punctuation, any characters, or whole code points. */
export const noise: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: fc.constantFrom(...PUNCTUATION), minLength: 1, maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) },
);

const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("insert" as const), at: position, text: noise }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), at: position, count: fc.integer({ min: 1, max: 20 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("replace" as const), at: position, text: noise }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), at: position }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("repeat" as const),
      at: position,
      count: fc.integer({ min: 1, max: 40 }),
      times: fc.integer({ min: 1, max: 50 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("swapLines" as const), a: position, b: position }) },
);

function applyTextMutation(text: string, m: TextMutation): string {
  const n = text.length;
  if (m.kind === "insert") {
    const at = n === 0 ? 0 : m.at % (n + 1);
    return text.slice(0, at) + m.text + text.slice(at);
  }
  if (n === 0) return text;
  if (m.kind === "swapLines") {
    const lines = text.split("\n");
    const a = m.a % lines.length;
    const b = m.b % lines.length;
    [lines[a], lines[b]] = [lines[b]!, lines[a]!];
    return lines.join("\n");
  }
  const at = m.at % n;
  switch (m.kind) {
    case "delete":
      return text.slice(0, at) + text.slice(at + m.count);
    case "replace":
      return text.slice(0, at) + m.text + text.slice(at + m.text.length);
    case "truncate":
      return text.slice(0, at);
    case "repeat": {
      const piece = text.slice(at, at + m.count);
      return text.slice(0, at) + piece.repeat(m.times) + text.slice(at + piece.length);
    }
  }
}

/** Well-formed text from `base`, then one to `max` mutations. */
export function mutatedText(base: fc.Arbitrary<string>, max = 4): fc.Arbitrary<string> {
  return fc
    .tuple(base, fc.array(textMutation, { minLength: 1, maxLength: max }))
    .map(([text, mutations]) => mutations.reduce(applyTextMutation, text));
}

/** Any text: printable, any code unit (lone surrogates included), or format punctuation. */
export const randomText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.string({ unit: fc.constantFrom(...PUNCTUATION), maxLength: 120 }),
);

/**
 * A long input made of one piece repeated (up to `maxChars`, some kilobytes), where a
 * quadratic loop or a backtracking regular expression shows as a slow call.
 */
export function repeated(piece: fc.Arbitrary<string>, maxChars = 20_000): fc.Arbitrary<string> {
  return fc
    .tuple(fc.string({ maxLength: 8 }), piece, fc.integer({ min: 1_000, max: maxChars }), fc.string({ maxLength: 8 }))
    .map(([head, p, chars, tail]) => head + (p === "" ? "" : p.repeat(Math.ceil(chars / p.length))) + tail);
}

/** Lines joined by "\n", "\r\n" or nothing at the end. */
export function joinLines(lines: fc.Arbitrary<string[]>): fc.Arbitrary<string> {
  return fc
    .tuple(lines, fc.constantFrom("\n", "\r\n"), fc.boolean())
    .map(([ls, eol, trailing]) => ls.join(eol) + (trailing && ls.length > 0 ? eol : ""));
}

function xorshift(seed: number): () => number {
  let x = seed | 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/**
 * A string of `min` to `max` characters of `alphabet`, drawn from a seed: far cheaper than a
 * character-by-character string for long fields (addresses, ids) whose exact characters matter
 * less than their length and alphabet. Shrinks towards shorter and towards the first character.
 */
export function seededString(alphabet: string, min: number, max: number): fc.Arbitrary<string> {
  const chars = [...alphabet];
  return fc.record({ length: fc.integer({ min, max }), seed: fc.integer() }).map(({ length, seed }) => {
    if (seed === 0) return chars[0]!.repeat(length);
    const next = xorshift(seed);
    let out = "";
    for (let i = 0; i < length; i++) out += chars[next() % chars.length];
    return out;
  });
}

export const hexDigits = (min: number, max: number, upper = true): fc.Arbitrary<string> =>
  seededString(upper ? "0123456789ABCDEF" : "0123456789abcdef", min, max);
