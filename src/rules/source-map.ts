/**
 * Maps positions in a rule's generated JavaScript back to its TypeScript source, from the
 * source map the transpiler writes (version 3, "mappings" in base64 VLQ), so that errors name the
 * line the user wrote.
 */

import { DecodeError } from "../errors.ts";

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DIGIT = new Map([...B64].map((c, i) => [c, i]));

interface Segment {
  column: number;
  sourceLine: number;
  sourceColumn: number;
}

export class LineMap {
  /** Per generated line (0-based), its segments in column order. */
  private readonly lines: Segment[][];

  /** The mappings as given: what a rule runner is handed to rebuild the map on its side. */
  constructor(readonly mappings: string) {
    this.lines = decodeMappings(mappings);
  }

  /** 1-based line and column in, 1-based out; null where the map says nothing. */
  original(line: number, column: number): { line: number; column: number } | null {
    const segs = this.lines[line - 1];
    if (!segs || segs.length === 0) return null;
    let best: Segment | null = null;
    for (const s of segs) {
      if (s.column <= column - 1) best = s;
      else break;
    }
    best ??= segs[0]!;
    return { line: best.sourceLine + 1, column: best.sourceColumn + 1 };
  }
}

export function decodeMappings(mappings: string): Segment[][] {
  const lines: Segment[][] = [];
  let sourceLine = 0;
  let sourceColumn = 0;
  for (const lineText of mappings.split(";")) {
    const segs: Segment[] = [];
    let column = 0;
    if (lineText.length > 0) {
      for (const segText of lineText.split(",")) {
        if (!segText) continue;
        const v = decodeVlq(segText);
        column += v[0] ?? 0;
        // A rule is one source file: the source and name fields (v[1], v[4]) are not needed.
        if (v.length >= 4) {
          sourceLine += v[2]!;
          sourceColumn += v[3]!;
          segs.push({ column, sourceLine, sourceColumn });
        }
      }
    }
    lines.push(segs);
  }
  return lines;
}

function decodeVlq(text: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const ch of text) {
    const digit = DIGIT.get(ch);
    if (digit === undefined) throw new DecodeError(`bad source map character ${JSON.stringify(ch)}`);
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
      continue;
    }
    out.push(value & 1 ? -(value >>> 1) : value >>> 1);
    value = 0;
    shift = 0;
  }
  return out;
}
