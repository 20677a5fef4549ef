import { afterAll, describe, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { FileSink } from "../../src/outputs/file-sink.ts";
import type { SinkRecord } from "../../src/outputs/sink-record.ts";
import { drain, waitFor } from "./helpers/waits.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-sinks-file-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const rec = (n: number): SinkRecord => ({ time: new Date(1_800_000_000_000 + n).toISOString(), kind: "log", message: `line ${n}` });

/** The file and its rotated copies, oldest first. */
function allFiles(file: string): string[] {
  const rotated = fs
    .readdirSync(path.dirname(file))
    .filter((f) => f.startsWith(path.basename(file) + "."))
    .map((f) => Number(f.slice(path.basename(file).length + 1)))
    .sort((a, b) => b - a)
    .map((n) => `${file}.${n}`);
  return [...rotated, file];
}

function linesOf(files: string[]): number[] {
  return files.flatMap((f) =>
    fs.readFileSync(f, "utf8").split("\n").filter(Boolean).map((l) => Number((JSON.parse(l) as SinkRecord).message.slice(5))),
  );
}

describe("file sink", () => {
  test("rotation keeps every line, once, in order, and no file grows past maxBytes", async () => {
    const file = path.join(dir, "many", "alerts.ndjson");
    const maxBytes = 16 * 1024;
    const sink = new FileSink({ path: file, maxBytes, keep: 1000 });
    const total = 6000;
    // Many small writes and a few large ones: batches form while a sync is under way.
    for (let i = 0; i < total; ) {
      const size = i % 7 === 0 ? 900 : 13;
      const batch: SinkRecord[] = [];
      for (let j = 0; j < size && i < total; j++, i++) batch.push(rec(i));
      sink.write(batch);
      if (i % 1000 < size) await new Promise((r) => setTimeout(r, 1));
    }
    await drain(sink, 45_000);
    const files = allFiles(file);
    expect(sink.rotations).toBeGreaterThan(10);
    expect(files.length).toBe(sink.rotations + 1);
    for (const f of files) expect(fs.statSync(f).size).toBeLessThanOrEqual(maxBytes);
    expect(linesOf(files)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(sink.stats()).toMatchObject({ written: total, queued: 0, dropped: 0, failures: 0, lastError: null });
    await sink.close(1000);
  });

  test("keeps only `keep` rotated files; appends to a file that already exists", async () => {
    const file = path.join(dir, "keep", "a.ndjson");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(rec(-1)) + "\n");
    const sink = new FileSink({ path: file, maxBytes: 2048, keep: 2 });
    for (let i = 0; i < 500; i++) sink.write([rec(i)]);
    await drain(sink, 45_000);
    await sink.close(1000);
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(["a.ndjson", "a.ndjson.1", "a.ndjson.2"]);
    const kept = linesOf(allFiles(file));
    // The newest lines survive, contiguous and in order, ending with the last one written.
    expect(kept.at(-1)).toBe(499);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 500 - kept.length + i));
  });

  test("a file moved away by someone else is replaced, and nothing is lost", async () => {
    const file = path.join(dir, "moved", "a.ndjson");
    const sink = new FileSink({ path: file, maxBytes: 0 });
    sink.write([rec(1), rec(2)]);
    await drain(sink, 45_000);
    fs.renameSync(file, `${file}.old`);
    sink.write([rec(3)]);
    await drain(sink, 45_000);
    await sink.close(1000);
    expect(linesOf([`${file}.old`])).toEqual([1, 2]);
    expect(linesOf([file])).toEqual([3]);
  });

  test("a path that cannot be written is one reported failure; what could not be written is counted", async () => {
    const blocker = path.join(dir, "not-a-dir");
    fs.writeFileSync(blocker, "");
    const told: string[] = [];
    const sink = new FileSink({ path: path.join(blocker, "a.ndjson"), queueSize: 10, retry: { initialMs: 5, maxMs: 20 }, report: (_, m) => told.push(m) });
    for (let i = 0; i < 25; i++) sink.write([rec(i)]);
    await waitFor("the first failed attempt to open the file", () => sink.stats().failures >= 1);
    const during = sink.stats();
    expect(during.failures).toBe(1);
    expect(during.lastError).toMatch(/ENOTDIR|EEXIST/);
    // One batch in flight, ten waiting, the rest dropped oldest first.
    expect(during.queued).toBe(11);
    expect(during.dropped).toBe(14);
    await sink.close(100);
    expect(sink.stats()).toMatchObject({ written: 0, queued: 0, dropped: 25 });
    expect(told.filter((m) => /ENOTDIR|EEXIST/.test(m))).toHaveLength(1);
    expect(told.filter((m) => /queue full/.test(m))).toHaveLength(1);
    sink.write([rec(99)]);
    expect(sink.stats().dropped).toBe(26);
  });

  test("a disk that takes nothing: the queue holds no more than its bound of bytes, the rest counted as overflow", async () => {
    const blocker = path.join(dir, "bytes-not-a-dir");
    fs.writeFileSync(blocker, "");
    const told: string[] = [];
    const queueBytes = 64 * 1024;
    const sink = new FileSink({ path: path.join(blocker, "a.ndjson"), queueBytes, retry: { initialMs: 5, maxMs: 20 }, report: (_, m) => told.push(m) });
    const long = "y".repeat(4000);
    for (let i = 0; i < 500; i++) {
      sink.write([{ ...rec(i), message: `line ${i} ${long}` }]);
      expect(sink.stats().queuedBytes).toBeLessThanOrEqual(queueBytes);
    }
    const s = sink.stats();
    // Far fewer than the record bound (100,000) wait: the byte bound holds them.
    expect(s.queued).toBeLessThan(20);
    expect(s.maxQueuedBytes).toBe(queueBytes);
    expect(s.droppedBy.overflow).toBe(500 - s.queued);
    expect(told.filter((m) => /queue full/.test(m))).toEqual(["queue full (over its 64 KiB bound): dropping the oldest"]);
    await sink.close(100);
    expect(sink.stats()).toMatchObject({ written: 0, queued: 0, dropped: 500, droppedBy: { overflow: 500 - s.queued, failed: 0, closing: s.queued } });
  });
});
