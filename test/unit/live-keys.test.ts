import { describe, expect, test } from "vitest";
import type { Endpoint } from "../../src/model/endpoint.ts";
import type { ProcessInfo } from "../../src/model/process.ts";
import { parseKeys } from "../../src/view/live/keys.ts";
import { handleKey, KEY_HELP } from "../../src/view/live/key-handler.ts";
import { LiveModel } from "../../src/view/live/model.ts";
import { endpoint, processInfo } from "../support/endpoints.ts";

const proc = (pid: number, name: string): ProcessInfo => processInfo({ pid, name });

let cookies = 0;
const ep = (o: Partial<Endpoint> = {}): Endpoint => endpoint({ cookie: String(++cookies), process: proc(10, "app"), ...o });

function model(): LiveModel {
  const m = new LiveModel({ sortColumn: "localPort", names: false });
  m.load([
    ep({ localPort: 1, process: proc(11, "one") }),
    ep({ localPort: 2, process: null, pids: [] }),
    ep({ localPort: 3, process: proc(33, "three") }),
  ]);
  return m;
}

const press = (m: LiveModel, ...keys: string[]) => keys.map((k) => handleKey(m, k, 10));

describe("parseKeys", () => {
  test("characters, control keys and escape sequences, several in one read", () => {
    expect(parseKeys("jk/ab\r")).toEqual(["j", "k", "/", "a", "b", "enter"]);
    expect(parseKeys("\x1b[A\x1b[B\x1bOC\x1b[D")).toEqual(["up", "down", "right", "left"]);
    expect(parseKeys("\x1b[5~\x1b[6~\x1b[H\x1b[F\x1b[1~\x1b[4~")).toEqual(["pageup", "pagedown", "home", "end", "home", "end"]);
    expect(parseKeys("\x03\x12\x0c\x7f\t")).toEqual(["ctrl-c", "ctrl-r", "ctrl-l", "backspace", "tab"]);
    expect(parseKeys("\x1bOP\x1b[15~")).toEqual(["f1", "f5"]);
    expect(parseKeys("\x1b")).toEqual(["escape"]);
    expect(parseKeys("\x1bq")).toEqual(["escape", "q"]);
  });

  test("modified keys read as the plain key; unknown sequences are dropped", () => {
    expect(parseKeys("\x1b[1;5A\x1b[5;2~")).toEqual(["up", "pageup"]);
    expect(parseKeys("\x1b[200~x")).toEqual(["x"]);
    expect(parseKeys("é😀")).toEqual(["é", "😀"]);
  });
});

describe("handleKey", () => {
  test("movement", () => {
    const m = model();
    press(m, "j", "down");
    expect(m.selected()!.endpoint.localPort).toBe(3);
    press(m, "k");
    expect(m.selected()!.endpoint.localPort).toBe(2);
    press(m, "home");
    expect(m.cursorIndex()).toBe(0);
    press(m, "G");
    expect(m.cursorIndex()).toBe(2);
    press(m, "pageup");
    expect(m.cursorIndex()).toBe(0);
  });

  test("number keys pick the sort column; the same key again reverses", () => {
    const m = model();
    press(m, "1");
    expect(m.sortColumn).toBe("process");
    press(m, "1");
    expect(m.descending).toBe(true);
    press(m, "0");
    expect([m.sortColumn, m.descending]).toEqual(["recv", false]);
    press(m, "5");
    expect(m.sortColumn).toBe("localPort");
    press(m, ">", "<", "<");
    expect(m.sortColumn).toBe("local");
    press(m, "r");
    expect(m.descending).toBe(true);
  });

  test("/ edits the filter: letters are text, Enter keeps it, Esc clears it", () => {
    const m = model();
    press(m, "/", "t", "h", "r", "x", "backspace", "e", "e");
    expect(m.editingFilter).toBe(true);
    expect(m.filter).toBe("three");
    expect(m.view().map((r) => r.endpoint.localPort)).toEqual([3]);
    press(m, "enter");
    expect(m.editingFilter).toBe(false);
    expect(m.filter).toBe("three");
    press(m, "escape");
    expect(m.filter).toBe("");
    press(m, "/", "o", "n", "e", "escape");
    expect([m.filter, m.editingFilter]).toEqual(["", false]);
    press(m, "/", "a", "b", " ", "c", "d", "ctrl-w");
    expect(m.filter).toBe("ab ");
    press(m, "ctrl-u");
    expect(m.filter).toBe("");
  });

  test("switches return commands for the controller", () => {
    const m = model();
    expect(press(m, " ")).toEqual([{ type: "pause", paused: true }]);
    expect(press(m, "p")).toEqual([{ type: "pause", paused: false }]);
    expect(press(m, "+")).toEqual([{ type: "interval", ms: 2000 }]);
    expect(press(m, "-", "-")).toEqual([{ type: "interval", ms: 1000 }, { type: "interval", ms: 500 }]);
    expect(press(m, "ctrl-r")).toEqual([{ type: "names", on: true }]);
    expect(press(m, "n")).toEqual([{ type: "names", on: false }]);
    expect(press(m, "a")).toEqual([null]);
    expect(m.connectedOnly).toBe(false);
    expect(press(m, "f5")).toEqual([{ type: "refresh" }]);
    expect(press(m, "ctrl-l")).toEqual([{ type: "redraw" }]);
    expect(press(m, "q")).toEqual([{ type: "quit" }]);
    expect(press(m, "ctrl-c")).toEqual([{ type: "quit" }]);
  });

  test("c asks before closing; y confirms, anything else cancels", () => {
    const m = model();
    press(m, "c");
    expect(m.confirm?.prompt).toMatch(/^Close tcp 127\.0\.0\.1:1 -> 127\.0\.0\.1:2000 \(one, pid 11\)\? \(y\/n\)$/);
    const [cmd] = press(m, "y");
    expect(cmd).toMatchObject({ type: "close-endpoint", endpoint: { localPort: 1 } });
    expect(m.confirm).toBeNull();
    press(m, "c");
    expect(press(m, "n")).toEqual([null]);
    expect(m.confirm).toBeNull();
    expect(m.message?.text).toBe("cancelled");
    press(m, "c");
    expect(press(m, "ctrl-c")).toEqual([{ type: "quit" }]);
  });

  test("K asks before ending the process; not for rows without one", () => {
    const m = model();
    press(m, "j", "K");
    expect(m.confirm).toBeNull();
    expect(m.message).toEqual({ text: "no process is known for this endpoint", error: true });
    press(m, "j", "K");
    expect(m.confirm?.prompt).toBe("End process three (pid 33)? (y/n)");
    expect(press(m, "Y")).toMatchObject([{ type: "end-process", endpoint: { localPort: 3 } }]);
  });

  test("c refuses a row that already closed", () => {
    const m = model();
    m.applyRefresh([{ type: "closed", seq: 1, time: 0, endpoint: m.selected()!.endpoint }]);
    press(m, "c");
    expect(m.confirm).toBeNull();
    expect(m.message?.error).toBe(true);
  });

  test("Enter asks for the properties of the selected row's process; panels take keys until closed", () => {
    const m = model();
    expect(press(m, "enter")).toMatchObject([{ type: "properties", endpoint: { localPort: 1 } }]);
    press(m, "?");
    expect(m.overlay?.kind).toBe("help");
    press(m, "j", "j");
    expect(m.overlay?.scroll).toBe(2);
    expect(m.cursorIndex()).toBe(0);
    expect(press(m, "q")).toEqual([null]);
    expect(m.overlay).toBeNull();
  });

  test("the help lists every binding it describes", () => {
    const keys = KEY_HELP.map(([k]) => k).join(" ");
    for (const k of ["/", "Esc", "Space", "+ -", "Ctrl+R", "a", "Enter", "c", "K", "q", "F5", "1 .. 9, 0"]) expect(keys).toContain(k);
  });
});
