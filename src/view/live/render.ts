/**
 * Draws the live view: a title line with the view's switches, the column headers, the rows with
 * TCPView's colours (new green, closed red, changed yellow; the selection in reverse video), and a
 * status line (key hints, a prompt, the filter being typed, or an action's outcome). A panel
 * (help, process properties) takes the place of the table. Pure: the same model, size and clock
 * give the same lines, one per terminal row, none wider than the terminal (in cells, as the
 * terminal counts them: wide characters take two). Text from elsewhere (names, prompts and
 * messages that quote them, the typed filter) is escaped where it is placed. It notes on the
 * model which columns it showed, for the keys that step through them.
 */
import { endpointLabel } from "../../actions/close-endpoint.ts";
import { renderProcessProperties } from "../process-properties.ts";
import { displayWidth, elideToWidth, fitToWidth } from "../display-width.ts";
import { escapeControl } from "../../text/escape-control.ts";
import { SGR } from "./ansi.ts";
import { COLUMNS, COLUMN_GAP, columnTitle, fitColumns, stateText, type ColumnId, type NameMode, type PlacedColumn } from "./columns.ts";
import { KEY_HELP } from "./key-handler.ts";
import { scrollTop, type Highlight, type LiveModel, type LiveRow, type Overlay } from "./model.ts";

export interface RenderOptions {
  width: number;
  height: number;
  /** Colours (off for NO_COLOR): without them rows carry a +, - or ~ mark instead. */
  colour: boolean;
  /** Wall clock (ms since epoch), for how long ago a process started. */
  now: number;
  /** Shown in the title line. */
  hostName?: string;
}

/** Rows of the table on a terminal `height` rows high: all but title, header and status. */
export function bodyHeight(height: number): number {
  return Math.max(1, height - 3);
}

const HIGHLIGHT_COLOUR: Record<Highlight, string> = { new: SGR.green, closed: SGR.red, changed: SGR.yellow };
const HIGHLIGHT_MARK: Record<Highlight, string> = { new: "+", closed: "-", changed: "~" };
/**
 * Key hints in the order shown, each with its rank: where the line is too narrow for all, the
 * lowest ranks go first, whole, rather than the line being cut in the middle of a word.
 */
const HINTS: ReadonlyArray<readonly [string, number]> = [
  ["q quit", 10], ["? help", 9], ["/ filter", 8], ["Space pause", 4], ["+/- interval", 1], ["^R names", 2],
  ["a all", 3], ["1-0 sort", 5], ["Enter properties", 6], ["c close", 7], ["K end process", 7],
];

export function hintsText(width: number): string {
  const kept = [...HINTS];
  const text = () => ` ${kept.map(([h]) => h).join("  ")}`;
  while (kept.length > 1 && displayWidth(text()) > width) {
    let lowest = 0;
    kept.forEach(([, rank], i) => {
      if (rank <= kept[lowest]![1]) lowest = i;
    });
    kept.splice(lowest, 1);
  }
  return text();
}

export function renderScreen(model: LiveModel, o: RenderOptions): string[] {
  const width = Math.max(1, o.width);
  const height = Math.max(1, o.height);
  const body = bodyHeight(height);
  const lines = [titleLine(model, width, o.hostName)];
  if (model.overlay) lines.push(...overlayLines(model.overlay, width, body + 1, o));
  else lines.push(...tableLines(model, width, body, o.colour));
  lines.push(statusLine(model, width, o.colour));
  // A terminal too small for all three fixed lines keeps the table and the status line.
  return height >= lines.length ? lines : [...lines.slice(1, height), lines[lines.length - 1]!].slice(-height);
}

export function intervalText(ms: number): string {
  return ms < 1000 ? `${ms / 1000} s` : `${Math.round(ms / 100) / 10} s`;
}

function titleLine(model: LiveModel, width: number, hostName: string | undefined): string {
  const { shown, total } = model.counts();
  const parts = [`sockwarden${hostName ? ` on ${escapeControl(hostName)}` : ""}`];
  if (model.paused) parts.push("PAUSED");
  parts.push(`${shown} of ${total} endpoints`);
  parts.push(model.connectedOnly ? "connected" : "all");
  parts.push(model.namesOn ? "names" : "numeric");
  parts.push(`every ${intervalText(model.intervalMs)}`);
  parts.push(`sort: ${columnTitle(model.sortColumn)} ${model.descending ? "▼" : "▲"}`);
  if (model.filter !== "") parts.push(`filter: ${escapeControl(model.filter)}`);
  return SGR.inverse + fit(` ${parts.join("  ")}`, width) + SGR.reset;
}

function cellsOf(row: LiveRow, names: NameMode): string[] {
  return COLUMNS.map((c) => c.text(row.endpoint, names));
}

/**
 * Cell texts and the widest cell of each column, per view: the model makes a new rows array
 * whenever rows, order, filter or names change, so moving the selection through 30k rows does
 * not format them all again at each key press.
 */
const tableCache = new WeakMap<readonly LiveRow[], { cells: string[][]; widest: number[] }>();

function tableData(rows: readonly LiveRow[], names: NameMode): { cells: string[][]; widest: number[] } {
  let data = tableCache.get(rows);
  if (!data) {
    const cells = rows.map((r) => cellsOf(r, names));
    const widest = COLUMNS.map((_, i) => cells.reduce((w, r) => Math.max(w, displayWidth(r[i]!)), 0));
    data = { cells, widest };
    tableCache.set(rows, data);
  }
  return data;
}

function tableLines(model: LiveModel, width: number, body: number, colour: boolean): string[] {
  const rows = model.view();
  const { cells, widest } = tableData(rows, model.names);
  const arrow = model.descending ? "▼" : "▲";
  const headerText = (id: ColumnId, header: string) => (id === model.sortColumn ? header + arrow : header);
  const natural = new Map<ColumnId, number>();
  COLUMNS.forEach((c, i) => natural.set(c.id, c.optional && widest[i] === 0 ? 0 : Math.max(displayWidth(headerText(c.id, c.header)), widest[i]!)));
  const mark = colour ? 0 : 2;
  const placed = fitColumns(natural, width - mark);
  model.shownColumns = placed.map((p) => p.spec.id);
  const index = new Map(COLUMNS.map((c, i) => [c.id, i]));
  const out: string[] = [];
  const header = placed.map((p) => {
    const full = headerText(p.spec.id, p.spec.header);
    return p.spec.shortHeader && displayWidth(full) > p.width ? headerText(p.spec.id, p.spec.shortHeader) : full;
  });
  out.push(SGR.bold + fit(" ".repeat(mark) + joinCells(placed, header), width) + SGR.reset);
  const cursor = model.cursorIndex();
  const top = scrollTop(model.top, cursor, body, rows.length);
  for (let i = top; i < top + body; i++) {
    const row = rows[i];
    if (!row) {
      out.push("");
      continue;
    }
    const rowCells = placed.map((p) => cells[i]![index.get(p.spec.id)!]!);
    const marker = colour ? "" : `${row.highlight ? HIGHLIGHT_MARK[row.highlight] : " "} `;
    const text = fit(marker + joinCells(placed, rowCells), width);
    const style = (colour && row.highlight ? HIGHLIGHT_COLOUR[row.highlight] : "") + (i === cursor ? SGR.inverse : "");
    out.push(style ? style + text + SGR.reset : text);
  }
  if (rows.length === 0) {
    const why = model.filter !== "" ? `no endpoint matches "${escapeControl(model.filter)}" (Esc clears the filter)` : "no endpoints";
    out[1] = fit(` ${why}`, width);
  }
  return out;
}

function joinCells(placed: readonly PlacedColumn[], cells: readonly string[]): string {
  return placed
    .map((p, i) => {
      return fitToWidth(elideToWidth(cells[i] ?? "", p.width), p.width, p.spec.align);
    })
    .join(" ".repeat(COLUMN_GAP));
}

/** Exactly `width` cells: cut at the end or padded with spaces. */
function fit(text: string, width: number): string {
  return fitToWidth(text, width);
}

function overlayLines(overlay: Overlay, width: number, height: number, o: RenderOptions): string[] {
  let heading: string;
  let content: string[];
  if (overlay.kind === "help") {
    heading = " Keys";
    const keyWidth = Math.max(...KEY_HELP.map(([k]) => k.length)) + 2;
    content = ["", ...KEY_HELP.map(([keys, what]) => `  ${keys.padEnd(keyWidth)}${what}`)];
  } else {
    const p = overlay.endpoint.process;
    heading = ` Properties of ${escapeControl(p?.name ?? "?")} (pid ${overlay.pid})`;
    content = ["", ` Endpoint: ${escapeControl(endpointLabel(overlay.endpoint))} ${stateText(overlay.endpoint)}`.trimEnd(), ""];
    if (overlay.details === null) {
      content.push(` Process ${overlay.pid} has exited.`);
    } else {
      if (overlay.reused) {
        content.push(
          ` The process listed for this row has exited; PID ${overlay.pid} now belongs to another process, shown here.`,
          "",
        );
      }
      content.push(...renderProcessProperties(overlay.details, { width: width - 2, now: o.now }).map((l) => ` ${l}`));
    }
  }
  const room = Math.max(0, height - 1);
  const scroll = Math.max(0, Math.min(overlay.scroll, content.length - room));
  const shown = content.slice(scroll, scroll + room);
  const out = [SGR.bold + SGR.inverse + fit(heading, width) + SGR.reset];
  for (let i = 0; i < room; i++) out.push(fit(shown[i] ?? "", width));
  return out;
}

function statusLine(model: LiveModel, width: number, colour: boolean): string {
  if (model.confirm) return SGR.bold + (colour ? SGR.yellow : "") + fit(` ${escapeControl(model.confirm.prompt)}`, width) + SGR.reset;
  if (model.editingFilter) return fit(` Filter: ${escapeControl(model.filter)}_   Enter keep  Esc clear`, width);
  if (model.message) {
    const style = model.message.error && colour ? SGR.red : "";
    return style + fit(` ${escapeControl(model.message.text)}`, width) + (style ? SGR.reset : "");
  }
  if (model.overlay) return fit(model.overlay.kind === "help" ? " Esc close" : " Up/Down scroll  Esc close", width);
  return fit(hintsText(width), width);
}
