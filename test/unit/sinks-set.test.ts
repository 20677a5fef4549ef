import { afterAll, describe, expect, test, vi } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough, Writable } from "node:stream";
import { SinkSet } from "../../src/outputs/sink-set.ts";
import { StdoutSink, type TextStream } from "../../src/outputs/stdout-sink.ts";
import { FileSink } from "../../src/outputs/file-sink.ts";
import { AlertFolder } from "../../src/outputs/alert-folder.ts";
import type { Sink, SinkStats } from "../../src/outputs/sink.ts";
import { actionRecord, ruleActionRecord, ruleReportRecord, type SinkRecord } from "../../src/outputs/sink-record.ts";
import { drain } from "./helpers/waits.ts";
import { track, waitWithoutTimers, withTestClock } from "./helpers/test-clock.ts";
import { endpoint, namedProcess } from "../support/endpoints.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-sinks-set-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const rec = (n: number, extra: Partial<SinkRecord> = {}): SinkRecord => ({
  time: "2026-11-21T10:00:00.000Z", kind: "alert", rule: "smtp-guard", severity: "warning", message: `#${n}`, ...extra,
});

function collect(stream: PassThrough): () => string {
  let text = "";
  stream.on("data", (d) => (text += d.toString()));
  return () => text;
}

const zero: SinkStats = { written: 0, queued: 0, queuedBytes: 0, maxQueuedBytes: 0, dropped: 0, droppedBy: { overflow: 0, failed: 0, closing: 0 }, failures: 0, lastError: null };

/** A sink whose every method fails in its own way: write throws, flush and close never end. */
class BrokenSink implements Sink {
  readonly name = "broken";
  write(): void {
    throw new Error("disk on fire");
  }
  flush(): Promise<boolean> {
    return new Promise(() => {});
  }
  close(): Promise<void> {
    return new Promise(() => {});
  }
  stats(): SinkStats {
    return zero;
  }
}

describe("stdout sink", () => {
  test("human lines, coloured by severity when asked; NDJSON for programs", async () => {
    const plain = new PassThrough();
    const coloured = new PassThrough();
    const ndjson = new PassThrough();
    const [p, c, n] = [collect(plain), collect(coloured), collect(ndjson)];
    const sinks = [
      new StdoutSink({ format: "human", colour: false, stream: plain }),
      new StdoutSink({ format: "human", colour: true, stream: coloured }),
      new StdoutSink({ format: "ndjson", stream: ndjson }),
    ];
    const records = [
      rec(1, { severity: "critical", process: { pid: 7, name: "curl", path: null, cmdline: null, uid: 0, user: "root", startTime: null, ppid: 1 } }),
      rec(2, { count: 4, firstTime: "2026-11-21T10:00:01.000Z", lastTime: "2026-11-21T10:00:05.500Z" }),
    ];
    for (const s of sinks) s.write(records);
    for (const s of sinks) await drain(s);
    expect(p().split("\n")).toEqual([
      "2026-11-21T10:00:00.000Z alert critical smtp-guard: #1 (pid 7 curl)",
      "2026-11-21T10:00:00.000Z alert warning smtp-guard: #2 x4 from 10:00:01.000Z to 10:00:05.500Z",
      "",
    ]);
    expect(c()).toMatch(/^\x1b\[31m2026.*#1.*\x1b\[0m\n\x1b\[33m2026.*#2.*\x1b\[0m\n$/);
    expect(n().trim().split("\n").map((l) => JSON.parse(l))).toEqual(records);
    for (const s of sinks) expect(s.stats()).toMatchObject({ written: 2, queued: 0, failures: 0 });
  });

  test("a stream that fails (EPIPE) is one failure; records are counted, nothing throws", async () => {
    const failing = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
      },
    });
    const told: string[] = [];
    const sink = new StdoutSink({ format: "ndjson", stream: failing, report: (_, m) => told.push(m) });
    sink.write([rec(1)]);
    await drain(sink);
    sink.write([rec(2), rec(3)]);
    await drain(sink);
    expect(sink.stats()).toMatchObject({ written: 0, queued: 0, dropped: 3, failures: 1 });
    expect(told).toHaveLength(1);
    expect(told[0]).toMatch(/EPIPE/);
  });

  test("nobody reading: beyond the bound, records are dropped and counted instead of piling up", async () => {
    const stalled = new Writable({ highWaterMark: 16, write() {} });
    stalled.on("error", () => {});
    const told: string[] = [];
    const sink = new StdoutSink({ format: "ndjson", stream: stalled, maxBufferedBytes: 1000, report: (_, m) => told.push(m) });
    for (let i = 0; i < 100; i++) sink.write([rec(i)]);
    const s = sink.stats();
    expect(s.dropped).toBeGreaterThan(80);
    expect(s.dropped + s.queued).toBe(100);
    expect(s.droppedBy).toEqual({ overflow: s.dropped, failed: 0, closing: 0 });
    expect(s.queuedBytes).toBeLessThanOrEqual(1000);
    expect(told).toEqual(["standard output is not being read: over its 1000 bytes bound, dropping records"]);
  });

  test("a stream that never calls back (a stalled pipe under Bun says writableLength 0): held text stays under the bound", () => {
    // Takes everything, answers nothing: what the sink gave it waits in memory.
    const stalled: TextStream = { write: () => true, writableLength: 0 };
    const sink = new StdoutSink({ format: "human", colour: false, stream: stalled, maxBufferedBytes: 64 * 1024 });
    const big = "x".repeat(3000);
    for (let i = 0; i < 200; i++) sink.write(Array.from({ length: 50 }, (_, j) => rec(i * 50 + j, { message: `${big} ${i}.${j}` })));
    const s = sink.stats();
    expect(s.queuedBytes).toBeLessThanOrEqual(64 * 1024);
    expect(s.queuedBytes).toBeGreaterThan(60 * 1024);
    expect(s.queued + s.dropped).toBe(10_000);
    expect(s.droppedBy.overflow).toBe(s.dropped);
  });
});

describe("sink set", () => {
  test("a sink that throws or hangs does not stop the others", async () => {
    const out = new PassThrough();
    const text = collect(out);
    const file = path.join(dir, "set.ndjson");
    const told: string[] = [];
    const stdout = new StdoutSink({ format: "ndjson", stream: out });
    const fileSink = new FileSink({ path: file });
    const set = new SinkSet([new BrokenSink(), stdout, fileSink], {
      report: (sink, m) => told.push(`${sink}: ${m}`),
    });
    for (let i = 1; i <= 5; i++) set.write([rec(i)]);
    // The healthy sinks deliver on their own time (fsync on a busy disk can take long): wait for
    // them with a generous bound, so that the set's short flush below has nothing left to cut off.
    await drain(stdout);
    await drain(fileSink);
    // The set hands flush and close on to every member (the healthy ones have nothing left by now).
    const flushes = [vi.spyOn(stdout, "flush"), vi.spyOn(fileSink, "flush")];
    const closes = [vi.spyOn(stdout, "close"), vi.spyOn(fileSink, "close")];
    // The broken sink's flush never ends; the set's returns when its own 300 ms (and the 50 ms
    // grace) have passed.
    await withTestClock(async (advance) => {
      const flushing = track(set.flush(300));
      await advance(349);
      expect(flushing.settled, "set.flush(300) returned before its time").toBe(false);
      await advance(1);
      expect(flushing.settled, "set.flush(300) did not return at its time: the hanging sink held it up").toBe(true);
    });
    for (const f of flushes) expect(f, "the set flushes each member").toHaveBeenCalledTimes(1);
    expect(text().trim().split("\n")).toHaveLength(5);
    expect(fs.readFileSync(file, "utf8").trim().split("\n")).toHaveLength(5);
    const stats = set.stats();
    expect(stats.broken).toMatchObject({ written: 0, dropped: 5, failures: 1, lastError: "write threw: disk on fire" });
    expect(stats["stdout:ndjson"]).toMatchObject({ written: 5, dropped: 0 });
    expect(stats[`file:${file}`]).toMatchObject({ written: 5, dropped: 0 });
    expect(told).toEqual(["broken: write threw: disk on fire"]);
    // Closing the file (real I/O) may take longer than one turn: only the clock is the test's.
    const closing = await withTestClock(async (advance) => {
      const c = track(set.close(300));
      await advance(349);
      expect(c.settled, "set.close(300) returned before its time").toBe(false);
      await advance(1);
      return c;
    });
    await waitWithoutTimers("set.close(300) to return once its time had passed, whatever the hanging sink does", () => closing.settled);
    for (const c of closes) expect(c, "the set closes each member").toHaveBeenCalledTimes(1);
  });

  test("wired behind the folder: a burst reaches every sink as one alert and one summary", async () => {
    const a = new PassThrough();
    const b = new PassThrough();
    const [ta, tb] = [collect(a), collect(b)];
    const sinks = [new StdoutSink({ format: "ndjson", stream: a }), new StdoutSink({ format: "human", colour: false, stream: b })];
    const set = new SinkSet(sinks);
    const folder = new AlertFolder({ timer: false, emit: (r) => set.write(r) });
    for (let i = 0; i < 50; i++) folder.write([rec(0)]);
    folder.close();
    for (const s of sinks) await drain(s);
    await set.close(1000);
    const lines = ta().trim().split("\n").map((l) => JSON.parse(l) as SinkRecord);
    expect(lines.map((r) => r.count)).toEqual([undefined, 49]);
    expect(tb().trim().split("\n")[1]).toMatch(/#0 x49 at 10:00:00.000Z$/);
  });
});

describe("records", () => {
  const ep = endpoint({
    localAddress: "10.0.0.5", localPort: 43122, remoteAddress: "93.184.216.34", remotePort: 25, inode: 7, bytesSent: 1, bytesReceived: 2,
    packetsSent: 3, packetsReceived: 4, cookie: "9", process: namedProcess(4242, "curl", { cmdline: "curl x" }), pids: [4242],
  });
  const t = new Date("2026-11-21T10:00:00.000Z");

  test("from rule actions, actions taken and rule reports", () => {
    expect(ruleActionRecord({ rule: "smtp-guard", action: "alert", reason: "mail from curl", severity: "critical" }, t)).toEqual({
      time: t.toISOString(), kind: "alert", rule: "smtp-guard", severity: "critical", message: "mail from curl",
    });
    expect(ruleActionRecord({ rule: "r", action: "log", reason: "hello" }, t)).toEqual({ time: t.toISOString(), kind: "log", rule: "r", severity: "info", message: "hello" });
    expect(actionRecord({ requestedBy: "smtp-guard", action: "close", outcome: "failed", message: "cannot close", endpoint: ep }, t)).toMatchObject({
      kind: "action", action: "close", outcome: "failed", rule: "smtp-guard", endpoint: { remotePort: 25, process: { pid: 4242 } }, process: { pid: 4242 },
    });
    expect(actionRecord({ requestedBy: "r", action: "kill", outcome: "protected", message: "not ending", process: ep.process, refused: true }, t)).toEqual({
      time: t.toISOString(), kind: "alert", severity: "warning", action: "kill", outcome: "protected", message: "not ending", rule: "r", endpoint: null, process: ep.process,
    });
    expect(ruleReportRecord({ rule: "r", file: "r.ts", kind: "quarantined", message: "failed 5 times", line: 3, column: 7 }, t)).toMatchObject({
      kind: "report", outcome: "quarantined", severity: "critical", message: "failed 5 times (r.ts:3:7)",
    });
  });
});
