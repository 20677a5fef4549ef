import { EventEmitter } from "node:events";
import { expect, test } from "vitest";
import { ENTER, RESTORE } from "../../src/view/live/ansi.ts";
import { streamTerminal } from "../../src/view/live/terminal.ts";

class FakeInput extends EventEmitter {
  isTTY = true;
  rawModes: boolean[] = [];
  flowing = false;
  setRawMode(mode: boolean) {
    this.rawModes.push(mode);
  }
  resume() {
    this.flowing = true;
  }
  pause() {
    this.flowing = false;
  }
}

test("open sets raw mode and full screen; restore undoes all of it once", () => {
  const input = new FakeInput();
  let written = "";
  let resizeListener: (() => void) | null = null;
  const terminal = streamTerminal(input, {
    columns: 100,
    rows: 30,
    write: (t) => (written += t),
    onResize: (l) => {
      resizeListener = l;
      return () => (resizeListener = null);
    },
  });
  const got: string[] = [];
  let resized = 0;
  let ended = 0;
  terminal.open({ onData: (d) => got.push(d), onResize: () => resized++, onEnd: () => ended++ });
  expect(input.rawModes).toEqual([true]);
  expect(input.flowing).toBe(true);
  expect(written).toBe(ENTER);
  expect(terminal.size()).toEqual({ columns: 100, rows: 30 });

  input.emit("data", Buffer.from("q\x1b[A"));
  input.emit("data", "x");
  resizeListener!();
  input.emit("end");
  expect(got).toEqual(["q\x1b[A", "x"]);
  expect([resized, ended]).toEqual([1, 1]);

  terminal.restore();
  terminal.restore();
  expect(input.rawModes).toEqual([true, false]);
  expect(input.flowing).toBe(false);
  expect(written).toBe(ENTER + RESTORE);
  expect(resizeListener).toBeNull();
  expect(input.listenerCount("data")).toBe(0);
  input.emit("data", "ignored");
  expect(got).toHaveLength(2);
});

test("input that is not a terminal is read without raw mode; sizes default to 80x24", () => {
  const input = new FakeInput();
  input.isTTY = false;
  const terminal = streamTerminal(input, { write: () => {} });
  terminal.open({ onData: () => {}, onResize: () => {}, onEnd: () => {} });
  terminal.restore();
  expect(input.rawModes).toEqual([]);
  expect(terminal.size()).toEqual({ columns: 80, rows: 24 });
});

test("a terminal that is gone (hang-up) does not make restore throw", () => {
  const input = new FakeInput();
  let gone = false;
  const terminal = streamTerminal(input, {
    write: () => {
      if (gone) throw new Error("EIO");
    },
  });
  terminal.open({ onData: () => {}, onResize: () => {}, onEnd: () => {} });
  input.setRawMode = () => {
    throw new Error("EIO");
  };
  gone = true;
  expect(() => terminal.restore()).not.toThrow();
  expect(input.flowing).toBe(false);
});
