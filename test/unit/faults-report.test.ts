/**
 * Faults told with a count (FaultReporter), and the daemon's pieces under a wall-clock jump:
 * the clocks are injected (spies on Date.now and performance.now, or the components' own clock
 * options) since the test cannot move the machine's clock.
 */
import { afterEach, describe, expect, test, vi } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { FaultReporter, type FaultLine } from "../../src/daemon/fault-report.ts";
import { ActionRateLimiter } from "../../src/daemon/rate-limit.ts";
import { AlertFolder } from "../../src/outputs/alert-folder.ts";
import type { SinkRecord } from "../../src/outputs/sink-record.ts";
import { RuleSet } from "../../src/rules/rule-set.ts";
import { createOutputs } from "../../src/daemon/outputs.ts";
import { SystemCallError } from "../../src/errors.ts";
import { Metrics } from "../../src/daemon/metrics.ts";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/**
 * Polls `ready` between turns of the event loop; throws `what` (and `detail()`) after `ms` of wall
 * time. Not helpers/waits.ts: this file fakes `performance`, so the bound has to be the wall clock.
 */
async function waitFor(ready: () => boolean, what: string, detail: () => string = () => "", ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms${detail() ? ` (${detail()})` : ""}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function reporter(periodMs = 60_000, quietMs?: number) {
  let now = 0;
  const lines: FaultLine<undefined>[] = [];
  const r = new FaultReporter({ periodMs, quietMs, clock: () => now, emit: (l) => lines.push(l) });
  return { r, lines, at: (ms: number) => (now = ms) };
}

describe("FaultReporter", () => {
  test("ten thousand occurrences in a minute are one line, then one count per period", () => {
    const { r, lines, at } = reporter();
    for (let i = 0; i < 10_000; i++) {
      at(i * 6);
      r.fault("sink file", "ENOSPC: no space left on device");
    }
    expect(lines.map((l) => l.kind)).toEqual(["first"]);
    expect(lines[0]!.text).toBe("sink file: ENOSPC: no space left on device");
    at(60_000);
    r.tick();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ kind: "repeat", count: 9_999, total: 10_000 });
    expect(lines[1]!.text).toBe("sink file: 9999 more times in the last 60 s, 10000 in all: ENOSPC: no space left on device");
    // Every occurrence is in exactly one line's count.
    expect(lines.reduce((n, l) => n + l.count, 0)).toBe(r.total("sink file"));
  });

  test("recovery ends the episode with its total; the next fault is told at once again", () => {
    const { r, lines, at } = reporter(1000);
    at(0);
    r.fault("refresh failed", "EINTR");
    at(100);
    r.fault("refresh failed", "EINTR");
    at(200);
    r.fault("refresh failed", "EINTR");
    at(500);
    r.ok("refresh failed", "refreshes work again");
    expect(lines.map((l) => l.text)).toEqual([
      "refresh failed: EINTR",
      "refresh failed 3 times in 0.5 s (2 not told before); refreshes work again",
    ]);
    expect(lines.reduce((n, l) => n + l.count, 0)).toBe(3);
    r.ok("refresh failed");
    expect(lines).toHaveLength(2);
    at(600);
    r.fault("refresh failed", "EBUSY", 4);
    expect(lines[2]!.text).toBe("refresh failed: EBUSY (4 times)");
  });

  test("a fault that goes quiet ends with its last count; flush tells what is left", () => {
    const { r, lines, at } = reporter(1000, 2000);
    at(0);
    r.fault("notices lost", "ENOBUFS", 2);
    at(10);
    r.fault("notices lost", "ENOBUFS", 3);
    at(1500);
    r.tick();
    expect(lines.map((l) => [l.kind, l.count])).toEqual([["first", 2], ["repeat", 3]]);
    at(2100);
    r.tick();
    expect(lines).toHaveLength(2);
    at(5000);
    r.tick();
    expect(r.ongoing("notices lost")).toBe(false);
    at(5001);
    r.fault("notices lost", "ENOBUFS");
    r.fault("notices lost", "ENOBUFS");
    r.flush();
    expect(lines.map((l) => [l.kind, l.count])).toEqual([["first", 2], ["repeat", 3], ["first", 1], ["repeat", 1]]);
    expect(lines.reduce((n, l) => n + l.count, 0)).toBe(r.total("notices lost"));
  });

  test("an emitter that throws does not make the fault worse", () => {
    const r = new FaultReporter({ emit: () => { throw new Error("stderr closed"); } });
    expect(() => r.fault("x", "y")).not.toThrow();
  });
});

/** Spies that move the wall clock (Date.now) and the monotonic clock (performance.now) apart. */
function clocks(start = 1_800_000_000_000) {
  let wall = start;
  let mono = 1000;
  vi.spyOn(Date, "now").mockImplementation(() => wall);
  vi.spyOn(performance, "now").mockImplementation(() => mono);
  return {
    advance(ms: number) {
      wall += ms;
      mono += ms;
    },
    jumpWall(ms: number) {
      wall += ms;
    },
  };
}

describe("a wall-clock jump", () => {
  test("the rate limiter's window follows the monotonic clock: set back an hour, limits still expire", () => {
    const c = clocks();
    const l = new ActionRateLimiter(2);
    expect([l.allow("smtp-guard"), l.allow("smtp-guard"), l.allow("smtp-guard")]).toEqual([true, true, false]);
    c.jumpWall(-3_600_000);
    c.advance(61_000);
    expect(l.allow("smtp-guard")).toBe(true);
    // Forward a day: no burst of extra actions either.
    c.jumpWall(86_400_000);
    expect([l.allow("smtp-guard"), l.allow("smtp-guard")]).toEqual([true, false]);
  });

  test("alert folding closes windows on the monotonic clock and stamps summaries with the wall clock", () => {
    const c = clocks();
    const out: SinkRecord[] = [];
    const folder = new AlertFolder({ emit: (r) => out.push(...r), clock: () => performance.now(), wallClock: Date.now, timer: false, windowMs: 10_000 });
    const alert = (): SinkRecord => ({ time: new Date(Date.now()).toISOString(), kind: "alert", rule: "r", message: "same" });
    folder.write([alert()]);
    c.advance(1000);
    folder.write([alert(), alert()]);
    c.jumpWall(-3_600_000);
    c.advance(9_000);
    folder.tick();
    expect(out).toHaveLength(2);
    expect(out[1]).toMatchObject({ count: 2, time: new Date(Date.now()).toISOString() });
  });

  test("periodic rule hooks keep their rhythm; rules are still told the wall clock", async () => {
    const c = clocks();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-faults-"));
    try {
      const file = path.join(dir, "tick.ts");
      fs.writeFileSync(file, `import { defineRule } from "sockwarden";
export default defineRule({ name: "tick", every: 5, periodic(eps, act, ctx) { act.log("at " + ctx.now); } });
`);
      const set = new RuleSet({});
      await set.add({ kind: "file", path: file, label: "tick.ts" });
      const times: string[] = [];
      for (let s = 0; s < 30; s++) {
        c.advance(1000);
        if (s === 12) c.jumpWall(-3_600_000);
        for (const a of (await set.tick([]))) times.push(a.reason);
      }
      // Every 5 s of monotonic time, across the jump: 30 s gives 6 calls.
      expect(times).toHaveLength(6);
      expect(Number(times.at(-1)!.slice(3))).toBe(Date.now());
      set.dispose();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("records a sink drops", () => {
  test("a missing syslog socket: the failure once, then the drops as counts, every record in one", async () => {
    // The drop counts' timer and their clock are faked: 40 batches 15 ms apart span 600 ms, so
    // a count every 150 ms is exactly 4 lines whatever the machine's pace.
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "performance"] });
    const warnings: string[] = [];
    const outputs = createOutputs(["syslog:/run/sw-none/log"], {
      warn: (m) => warnings.push(m),
      openLocalDatagram: () => {
        throw new SystemCallError("connect", 2, "ENOENT");
      },
      dropReportMs: 150,
    });
    const metrics = new Metrics();
    const dropped = () => {
      outputs.describe(metrics);
      // One series per reason; the drops are their sum.
      const lines = metrics.render().split("\n").filter((l) => l.startsWith('sockwarden_sink_dropped_total{sink="syslog:/run/sw-none/log",'));
      return lines.reduce((n, l) => n + Number(l.split(" ").at(-1)), 0);
    };
    let sent = 0;
    const send = async (i: number) => {
      const batch: SinkRecord[] = [];
      for (let j = 0; j < 25; j++) batch.push({ time: new Date().toISOString(), kind: "action", message: `closed ${sent++}` });
      outputs.write(batch);
      // The sink gives up on the batch (no socket) on its own time: wait for that, then move on.
      await waitFor(() => dropped() === sent, `the sink did not drop batch ${i + 1}`, () => `${dropped()} of ${sent} dropped`);
    };
    for (let i = 0; i < 40; i++) {
      await send(i);
      vi.advanceTimersByTime(15);
    }
    // Dropped after the last count: closing tells it.
    await send(40);
    await outputs.close(200);
    const mine = warnings.filter((w) => w.startsWith("syslog:/run/sw-none/log"));
    expect(mine[0]).toMatch(/no syslog daemon listens on \/run\/sw-none\/log \(ENOENT\)/);
    expect(mine.filter((w) => /ENOENT/.test(w) && !/dropped/.test(w)), "the failure is told once, not per batch").toHaveLength(1);
    const counts = mine.map((w) => /: (\d+) record\(s\) dropped in the last \d+ s, (\d+) in all/.exec(w)).filter((m) => m !== null);
    // At 150, 300, 450 and 600 ms, each with the 10 batches since the one before; the last at closing.
    expect(counts.map((m) => [Number(m![1]), Number(m![2])]), `1025 drops are told in 5 counts, not one line per batch: ${JSON.stringify(mine)}`).toEqual([
      [250, 250],
      [250, 500],
      [250, 750],
      [250, 1000],
      [25, 1025],
    ]);
    expect(sent).toBe(1025);
  });
});
