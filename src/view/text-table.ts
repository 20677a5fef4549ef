/**
 * Renders rows as aligned text columns. When a width is given (a terminal), columns marked
 * shrinkable give up characters, middle first, so a line fits; without one nothing is cut, so
 * piped output keeps every character. Every cell is shown through escapeControl: cells hold
 * names and paths that other users choose, and a newline or escape sequence in one would split
 * a row or drive the terminal.
 */
import { escapeControl } from "../text/escape-control.ts";

export interface Column {
  header: string;
  align?: "left" | "right";
  /** Lower numbers shrink first; undefined never shrinks. */
  shrinkOrder?: number;
  /** Narrowest a shrinkable column may become. */
  minWidth?: number;
}

export function renderTable(columns: readonly Column[], rawRows: readonly string[][], maxWidth?: number): string {
  const rows = rawRows.map((r) => r.map(escapeControl));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? "").length)));
  const gap = 2;
  if (maxWidth !== undefined) {
    let total = widths.reduce((a, b) => a + b, 0) + gap * (columns.length - 1);
    const order = columns
      .map((c, i) => ({ i, o: c.shrinkOrder }))
      .filter((x): x is { i: number; o: number } => x.o !== undefined)
      .sort((a, b) => a.o - b.o);
    // Take a character at a time from the widest shrinkable column, so cuts spread evenly.
    while (total > maxWidth && order.length > 0) {
      let best: number | null = null;
      for (const { i } of order) {
        const min = Math.max(columns[i]!.minWidth ?? 8, columns[i]!.header.length);
        if (widths[i]! > min && (best === null || widths[i]! > widths[best]!)) best = i;
      }
      if (best === null) break;
      widths[best]!--;
      total--;
    }
  }
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => {
        const w = widths[i]!;
        const text = cell.length > w ? elide(cell, w) : cell;
        if (i === cells.length - 1 && columns[i]!.align !== "right") return text;
        return columns[i]!.align === "right" ? text.padStart(w) : text.padEnd(w);
      })
      .join(" ".repeat(gap))
      .trimEnd();
  const out = [line(columns.map((c) => escapeControl(c.header)))];
  for (const r of rows) out.push(line(r));
  return out.join("\n") + "\n";
}

/** Cuts the middle of a string, keeping both ends (the port and the start of the address). */
export function elide(text: string, width: number): string {
  if (width <= 1) return text.slice(0, width);
  const keepRight = Math.ceil((width - 1) / 2);
  const keepLeft = width - 1 - keepRight;
  return text.slice(0, keepLeft) + "…" + text.slice(text.length - keepRight);
}
