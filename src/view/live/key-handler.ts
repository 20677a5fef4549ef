/**
 * What each key does in the live view. View changes (selection, sort, filter, toggles, panels)
 * are made on the model here; anything that needs the outside world (the monitor loop, /proc,
 * closing a socket, signalling a process, leaving) is returned as a command for the controller.
 * The bindings follow TCPView where it has one (Ctrl+R names, F5 refresh, space pause) and
 * less/top habits for the rest; KEY_HELP lists them for the help panel and the README.
 */
import type { Endpoint } from "../../model/endpoint.ts";
import { endpointLabel } from "../../actions/close-endpoint.ts";
import { COLUMN_IDS } from "./columns.ts";
import type { LiveModel } from "./model.ts";

export type LiveCommand =
  | { type: "quit" }
  | { type: "pause"; paused: boolean }
  | { type: "interval"; ms: number }
  | { type: "refresh" }
  | { type: "names"; on: boolean }
  | { type: "properties"; endpoint: Endpoint }
  | { type: "close-endpoint"; endpoint: Endpoint }
  | { type: "end-process"; endpoint: Endpoint }
  | { type: "redraw" };

/** Key bindings as shown by `?`: keys, then what they do. */
export const KEY_HELP: ReadonlyArray<readonly [string, string]> = [
  ["Up Down j k", "select the previous or next row"],
  ["PgUp PgDn Home End", "move a page, or to the first or last row (also g G)"],
  ["1 .. 9, 0", "sort by column 1..10 on screen; the same key again reverses the order"],
  ["< >  r", "sort by the column on screen to the left or right; reverse the order"],
  ["/", "filter: type text (process, PID, address, port, state), Enter to keep"],
  ["Esc", "clear the filter; close a panel"],
  ["Space  p", "pause or resume refreshing"],
  ["+ -", "refresh less or more often"],
  ["F5", "refresh now (also while paused)"],
  ["Ctrl+R  n", "show names or numbers for addresses and ports"],
  ["a", "show all endpoints or connected ones only"],
  ["Enter", "properties of the selected row's process"],
  ["c", "close the selected connection (asks first)"],
  ["K", "end the selected row's process (asks first)"],
  ["Ctrl+L", "redraw the screen"],
  ["?  F1", "this help"],
  ["q  Ctrl+C", "quit"],
];

/** Applies one key (a name from parseKeys) to the model; returns what else must happen. */
export function handleKey(model: LiveModel, key: string, pageSize: number): LiveCommand | null {
  if (key === "ctrl-c") return { type: "quit" };
  if (model.confirm) return confirmKey(model, key);
  if (model.overlay) return overlayKey(model, key, pageSize);
  if (model.editingFilter) return filterKey(model, key, pageSize);
  model.message = null;
  if (moveKey(model, key, pageSize)) return null;
  if (/^[0-9]$/.test(key)) {
    // The Nth column on screen, as the help says: hidden ones are not counted.
    const column = (model.shownColumns ?? COLUMN_IDS)[(Number(key) + 9) % 10];
    if (column) model.sortBy(column);
    return null;
  }
  switch (key) {
    case "<":
    case ",":
      model.shiftSort(-1);
      return null;
    case ">":
    case ".":
      model.shiftSort(1);
      return null;
    case "r":
      model.reverseSort();
      return null;
    case "/":
      model.editingFilter = true;
      return null;
    case "escape":
      if (model.filter !== "") model.setFilter("");
      return null;
    case " ":
    case "p":
      model.paused = !model.paused;
      return { type: "pause", paused: model.paused };
    case "+":
    case "=":
      return { type: "interval", ms: model.stepInterval(1) };
    case "-":
    case "_":
      return { type: "interval", ms: model.stepInterval(-1) };
    case "f5":
      return { type: "refresh" };
    case "ctrl-r":
    case "n":
      model.toggleNames();
      return { type: "names", on: model.namesOn };
    case "a":
      model.toggleConnectedOnly();
      return null;
    case "enter": {
      const row = model.selected();
      if (!row) return null;
      if (!row.endpoint.process) {
        model.message = { text: "no process is known for this endpoint", error: true };
        return null;
      }
      return { type: "properties", endpoint: row.endpoint };
    }
    case "c": {
      const row = model.selected();
      if (!row) return null;
      if (row.highlight === "closed") {
        model.message = { text: "this connection is already closed", error: true };
        return null;
      }
      model.confirm = { action: "close-endpoint", endpoint: row.endpoint, prompt: `Close ${endpointLabel(row.endpoint)}? (y/n)` };
      return null;
    }
    case "K": {
      const row = model.selected();
      if (!row) return null;
      const p = row.endpoint.process;
      if (!p) {
        model.message = { text: "no process is known for this endpoint", error: true };
        return null;
      }
      model.confirm = { action: "end-process", endpoint: row.endpoint, prompt: `End process ${p.name} (pid ${p.pid})? (y/n)` };
      return null;
    }
    case "?":
    case "f1":
    case "h":
      model.overlay = { kind: "help", scroll: 0 };
      return null;
    case "q":
      return { type: "quit" };
    case "ctrl-l":
      return { type: "redraw" };
    default:
      return null;
  }
}

function moveKey(model: LiveModel, key: string, pageSize: number): boolean {
  const page = Math.max(1, pageSize - 1);
  switch (key) {
    case "up":
    case "k":
      model.move(-1);
      return true;
    case "down":
    case "j":
      model.move(1);
      return true;
    case "pageup":
    case "ctrl-b":
      model.move(-page);
      return true;
    case "pagedown":
    case "ctrl-f":
      model.move(page);
      return true;
    case "home":
    case "g":
      model.moveTo(0);
      return true;
    case "end":
    case "G":
      model.moveTo(Number.MAX_SAFE_INTEGER);
      return true;
    default:
      return false;
  }
}

function confirmKey(model: LiveModel, key: string): LiveCommand | null {
  const confirm = model.confirm!;
  model.confirm = null;
  if (key === "y" || key === "Y") {
    return confirm.action === "close-endpoint"
      ? { type: "close-endpoint", endpoint: confirm.endpoint }
      : { type: "end-process", endpoint: confirm.endpoint };
  }
  model.message = { text: "cancelled", error: false };
  return null;
}

function filterKey(model: LiveModel, key: string, pageSize: number): LiveCommand | null {
  // Letters are text here; only the named movement keys move.
  if (key.length > 1 && moveKey(model, key, pageSize)) return null;
  switch (key) {
    case "enter":
      model.editingFilter = false;
      return null;
    case "escape":
      model.editingFilter = false;
      model.setFilter("");
      return null;
    case "backspace":
      model.setFilter(model.filter.slice(0, -1));
      return null;
    case "ctrl-u":
      model.setFilter("");
      return null;
    case "ctrl-w":
      model.setFilter(model.filter.replace(/\S*\s*$/, ""));
      return null;
    default:
      // Printable characters (letters are text here, not commands); other keys do nothing.
      if ([...key].length === 1 && key >= " ") model.setFilter(model.filter + key);
      return null;
  }
}

function overlayKey(model: LiveModel, key: string, pageSize: number): LiveCommand | null {
  const overlay = model.overlay!;
  switch (key) {
    case "escape":
    case "enter":
    case "q":
    case "?":
    case "f1":
    case "h":
      model.overlay = null;
      return null;
    case "up":
    case "k":
      overlay.scroll = Math.max(0, overlay.scroll - 1);
      return null;
    case "down":
    case "j":
      overlay.scroll++;
      return null;
    case "pageup":
      overlay.scroll = Math.max(0, overlay.scroll - Math.max(1, pageSize - 1));
      return null;
    case "pagedown":
      overlay.scroll += Math.max(1, pageSize - 1);
      return null;
    case "home":
      overlay.scroll = 0;
      return null;
    case "ctrl-l":
      return { type: "redraw" };
    default:
      return null;
  }
}
