/**
 * Text measured as a terminal shows it: a CJK character or an emoji takes two cells, a combining
 * mark or a zero-width joiner none. Counting UTF-16 units (`.length`) instead makes such a name
 * push a row past the terminal's edge, or leave its column short. Every column that can hold a
 * name someone else chose (a process, a user, a path, a host) is measured, cut and padded here.
 */

/** Plain ASCII, nearly every cell, is one cell per unit: no need to ask. */
const ASCII = /^[\x20-\x7e]*$/;

/** What a terminal shows as one: a base character with its marks, an emoji joined of several. */
const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

export function displayWidth(text: string): number {
  return ASCII.test(text) ? text.length : Bun.stringWidth(text);
}

function clusters(text: string): string[] {
  return Array.from(graphemes.segment(text), (s) => s.segment);
}

/** The longest start of `text` at most `width` cells wide, never ending inside a character. */
export function cutToWidth(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  if (ASCII.test(text)) return text.slice(0, Math.max(0, width));
  let out = "";
  let used = 0;
  for (const g of clusters(text)) {
    const w = displayWidth(g);
    if (used + w > width) break;
    out += g;
    used += w;
  }
  return out;
}

/** The longest end of `text` at most `width` cells wide. */
function tailToWidth(text: string, width: number): string {
  if (ASCII.test(text)) return width <= 0 ? "" : text.slice(-width);
  const all = clusters(text);
  let out = "";
  let used = 0;
  for (let i = all.length - 1; i >= 0; i--) {
    const w = displayWidth(all[i]!);
    if (used + w > width) break;
    out = all[i]! + out;
    used += w;
  }
  return out;
}

/** `text` in at most `width` cells, its middle replaced by "…" where it is longer. */
export function elideToWidth(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  if (width <= 1) return cutToWidth(text, width);
  const right = Math.ceil((width - 1) / 2);
  const left = cutToWidth(text, width - 1 - right);
  return left + "…" + tailToWidth(text, width - 1 - displayWidth(left));
}

/** `text` padded with spaces to `width` cells, on the right (or left); never cut. */
export function padToWidth(text: string, width: number, align: "left" | "right" = "left"): string {
  const pad = " ".repeat(Math.max(0, width - displayWidth(text)));
  return align === "left" ? text + pad : pad + text;
}

/** Exactly `width` cells: cut at the end or padded with spaces on the right (or left). */
export function fitToWidth(text: string, width: number, align: "left" | "right" = "left"): string {
  return padToWidth(cutToWidth(text, width), width, align);
}
