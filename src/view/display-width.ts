/**
 * Text measured as a terminal shows it: a CJK character or an emoji takes two cells, a combining
 * mark none. Counting UTF-16 units (`.length`) instead makes such a name push a row past the
 * terminal's edge, or leave its column short.
 */

export function displayWidth(text: string): number {
  // Plain ASCII, nearly every cell, is one cell per unit: no need to ask.
  return /^[\x20-\x7e]*$/.test(text) ? text.length : Bun.stringWidth(text);
}

/** The longest start of `text` at most `width` cells wide. */
export function cutToWidth(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  let out = "";
  let used = 0;
  for (const ch of text) {
    const w = displayWidth(ch);
    if (used + w > width) break;
    out += ch;
    used += w;
  }
  return out;
}

/** The longest end of `text` at most `width` cells wide. */
function tailToWidth(text: string, width: number): string {
  const chars = [...text];
  let out = "";
  let used = 0;
  for (let i = chars.length - 1; i >= 0; i--) {
    const w = displayWidth(chars[i]!);
    if (used + w > width) break;
    out = chars[i]! + out;
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

/** Exactly `width` cells: cut at the end or padded with spaces on the right (or left). */
export function fitToWidth(text: string, width: number, align: "left" | "right" = "left"): string {
  const cut = cutToWidth(text, width);
  const pad = " ".repeat(Math.max(0, width - displayWidth(cut)));
  return align === "left" ? cut + pad : pad + cut;
}
