import { describe, expect, test } from "vitest";
import { AlertFolder } from "../../src/outputs/alert-folder.ts";
import { waitFor } from "./helpers/waits.ts";
import { MAX_MESSAGE_CHARS } from "../../src/outputs/record-bounds.ts";
import type { SinkRecord } from "../../src/outputs/sink-record.ts";

const proc = (pid: number) => ({ pid, name: `p${pid}`, path: null, cmdline: null, uid: 0, user: "root", startTime: null, ppid: 1 });

function setup(windowMs = 10_000) {
  let now = 1_800_000_000_000;
  const out: SinkRecord[] = [];
  const folder = new AlertFolder({ windowMs, clock: () => now, timer: false, emit: (r) => out.push(...r) });
  const alert = (message = "smtp from curl", pid = 42, rule = "smtp-guard"): SinkRecord => ({
    time: new Date(now).toISOString(), kind: "alert", rule, severity: "warning", message, process: proc(pid),
  });
  return {
    folder,
    out,
    alert,
    at: (ms: number) => (now = 1_800_000_000_000 + ms),
    iso: (ms: number) => new Date(1_800_000_000_000 + ms).toISOString(),
  };
}

/** What the records stand for: every alert raised, counted once. */
const represented = (records: SinkRecord[]) => records.reduce((n, r) => n + (r.count ?? 1), 0);

describe("alert folder", () => {
  test("the first goes at once; the burst is one summary with count and span when the window closes", () => {
    const { folder, out, alert, at, iso } = setup();
    at(0);
    folder.write([alert()]);
    expect(out).toHaveLength(1);
    expect(out[0]!.count).toBeUndefined();
    for (let i = 1; i <= 9; i++) {
      at(i * 1000);
      folder.write([alert()]);
    }
    expect(out).toHaveLength(1);
    at(9_999);
    folder.tick();
    expect(out).toHaveLength(1);
    at(10_000);
    folder.tick();
    expect(out).toHaveLength(2);
    expect(out[1]).toMatchObject({ kind: "alert", rule: "smtp-guard", message: "smtp from curl", count: 9, firstTime: iso(1000), lastTime: iso(9000), time: iso(10_000) });
    expect(out[1]!.process?.pid).toBe(42);
    expect(represented(out)).toBe(10);
    expect(folder.stats()).toMatchObject({ folded: 9, summaries: 1, open: 1, evicted: 0 });
    // A quiet window: the burst is forgotten, and the next alert goes out at once.
    at(20_000);
    folder.tick();
    expect(folder.stats().open).toBe(0);
    at(21_000);
    folder.write([alert()]);
    expect(out).toHaveLength(3);
    expect(out[2]!.count).toBeUndefined();
  });

  test("a steady stream gives one summary per window and loses nothing", () => {
    const { folder, out, alert, at } = setup(10_000);
    for (let s = 0; s < 60; s++) {
      at(s * 1000);
      folder.tick();
      folder.write([alert()]);
    }
    at(60_000);
    folder.tick();
    expect(out.filter((r) => r.count === undefined)).toHaveLength(1);
    expect(out.filter((r) => r.count !== undefined).map((r) => r.count)).toEqual([9, 10, 10, 10, 10, 10]);
    expect(represented(out)).toBe(60);
  });

  test("different rule, message or process are different bursts; other kinds pass through", () => {
    const { folder, out, alert, at } = setup();
    at(0);
    folder.write([alert("a", 1), alert("a", 2), alert("b", 1), alert("a", 1, "other"), alert("a", 1)]);
    const log: SinkRecord = { time: new Date().toISOString(), kind: "log", message: "same log" };
    folder.write([log, log]);
    expect(out.map((r) => `${r.kind}:${r.rule ?? ""}:${r.message}:${r.process?.pid ?? ""}`)).toEqual([
      "alert:smtp-guard:a:1", "alert:smtp-guard:a:2", "alert:smtp-guard:b:1", "alert:other:a:1", "log::same log:", "log::same log:",
    ]);
    folder.flush();
    expect(out.at(-1)).toMatchObject({ message: "a", count: 1 });
    expect(represented(out)).toBe(7);
  });

  test("flush sends pending summaries at once; a late alert after the window folds into the next one", () => {
    const { folder, out, alert, at, iso } = setup();
    at(0);
    folder.write([alert(), alert(), alert()]);
    at(2500);
    folder.write([alert()]);
    folder.flush();
    expect(out.map((r) => r.count)).toEqual([undefined, 3]);
    expect(out[1]).toMatchObject({ firstTime: iso(0), lastTime: iso(2500) });
    folder.flush();
    expect(out).toHaveLength(2);
    // Without ticks, the next write notices the window has closed.
    at(3000);
    folder.write([alert()]);
    at(13_000);
    folder.write([alert()]);
    folder.close();
    expect(out.map((r) => r.count)).toEqual([undefined, 3, 1, 1]);
    expect(represented(out)).toBe(6);
  });

  test("beyond maxKeys the oldest burst is summarised early, not lost", () => {
    let now = 0;
    const out: SinkRecord[] = [];
    const folder = new AlertFolder({ maxKeys: 2, clock: () => now, timer: false, emit: (r) => out.push(...r) });
    const a = (m: string): SinkRecord => ({ time: new Date(now).toISOString(), kind: "alert", message: m });
    folder.write([a("x"), a("x"), a("y"), a("z"), a("z")]);
    expect(out.map((r) => `${r.message}${r.count ?? ""}`)).toEqual(["x", "y", "x1", "z"]);
    folder.close();
    expect(represented(out)).toBe(5);
  });

  test("ever new alerts: the folder holds no more than its bound of bytes, and still loses nothing", () => {
    let now = 0;
    const out: SinkRecord[] = [];
    const maxBytes = 64 * 1024;
    const folder = new AlertFolder({ maxBytes, clock: () => now, timer: false, emit: (r) => out.push(...r) });
    const long = "x".repeat(2000);
    let raised = 0;
    for (let i = 0; i < 2000; i++) {
      // Each alert twice, so that most bursts have a count to summarise when they are pushed out.
      const a: SinkRecord = { time: new Date(now).toISOString(), kind: "alert", rule: "flood", message: `${i} ${long}` };
      folder.write([a, a]);
      raised += 2;
      now += 1;
      expect(folder.stats().bytes).toBeLessThanOrEqual(maxBytes);
    }
    const s = folder.stats();
    expect(s.open).toBeLessThan(20);
    expect(s.evicted).toBeGreaterThan(1900);
    folder.close();
    expect(represented(out)).toBe(raised);
    expect(folder.stats().bytes).toBe(0);
  });

  test("a message past its cap is cut, with a marker, before it is keyed", () => {
    const { folder, out, at } = setup();
    at(0);
    const a = (tail: string): SinkRecord => ({ time: new Date().toISOString(), kind: "alert", message: "m".repeat(50_000) + tail });
    folder.write([a("1"), a("2")]);
    folder.flush();
    expect(out.map((r) => r.count)).toEqual([undefined, 1]);
    expect(out[0]!.message).toHaveLength(MAX_MESSAGE_CHARS);
    expect(out[0]!.message).toMatch(/\u2026 \[41833 characters cut\]$/);
  });

  test("the timer closes windows by itself", async () => {
    const out: SinkRecord[] = [];
    const folder = new AlertFolder({ windowMs: 50, emit: (r) => out.push(...r) });
    const a: SinkRecord = { time: new Date().toISOString(), kind: "alert", message: "m" };
    folder.write([a, a, a]);
    try {
      await waitFor("the timer to send the summary", () => out.length >= 2, 10_000, () => `sent so far: ${JSON.stringify(out)}`);
    } finally {
      folder.close();
    }
    expect(out.map((r) => r.count)).toEqual([undefined, 2]);
  });
});
