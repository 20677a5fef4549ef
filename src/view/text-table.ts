/**
 * Renders rows as aligned text columns, measured in terminal cells (display-width.ts). When a
 * width is given (a terminal), columns marked shrinkable give up cells, middle first (keeping both
 * ends: the port and the start of the address), so a line fits; without one nothing is cut, so
 * piped output keeps every character. Every cell is shown through escapeControl: cells hold
 * names and paths that other users choose, and a newline or escape sequence in one would split
 * a row or drive the terminal.
 */
import { escapeControl } from "../text/escape-control.ts";
import { displayWidth, elideToWidth, padToWidth } from "./display-width.ts";

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
  // In terminal cells, not UTF-16 units: a CJK name or an emoji must not shift the columns after it.
  const widths = columns.map((c, i) => Math.max(displayWidth(c.header), ...rows.map((r) => displayWidth(r[i] ?? ""))));
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
        const min = Math.max(columns[i]!.minWidth ?? 8, displayWidth(columns[i]!.header));
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
        const text = elideToWidth(cell, w);
        if (i === cells.length - 1 && columns[i]!.align !== "right") return text;
        return padToWidth(text, w, columns[i]!.align);
      })
      .join(" ".repeat(gap))
      .trimEnd();
  const out = [line(columns.map((c) => escapeControl(c.header)))];
  for (const r of rows) out.push(line(r));
  return out.join("\n") + "\n";
}
