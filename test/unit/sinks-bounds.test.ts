/**
 * The outputs' byte bounds: records cut to their caps, a delivery queue that never holds more
 * than its bound of bytes (the batch in flight included) whatever it is given, and the daemon's
 * outputs telling the other sinks, and the metrics, what a sink dropped and why.
 */
import { afterAll, describe, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { MAX_FIELD_CHARS, MAX_MESSAGE_CHARS, boundedRecord, cutText, recordBytes } from "../../src/outputs/record-bounds.ts";
import { DeliveryQueue } from "../../src/outputs/delivery-queue.ts";
import { SinkCounters } from "../../src/outputs/sink.ts";
import type { SinkRecord } from "../../src/outputs/sink-record.ts";
import { SINK_DROPPED_OUTCOME, SINK_PROBLEM_OUTCOME, createOutputs } from "../../src/daemon/outputs.ts";
import { Metrics } from "../../src/daemon/metrics.ts";
import { waitFor } from "./helpers/waits.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sw-sinks-bounds-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const KiB = 1024;
const rec = (message: string, extra: Partial<SinkRecord> = {}): SinkRecord => ({ time: "2026-11-21T10:00:00.000Z", kind: "log", message, ...extra });

describe("record bounds", () => {
  test("a text past its cap is cut, with a marker saying how much, to exactly the cap", () => {
    const cut = cutText("a".repeat(100_000), 8192);
    expect(cut).toHaveLength(8192);
    expect(cut).toMatch(/^a+\u2026 \[91832 characters cut\]$/);
    expect(cutText("short", 8192)).toBe("short");
    // Half of a surrogate pair is never left at the cut.
    const emoji = cutText("\u{1F600}".repeat(10_000), 100);
    expect(emoji.charCodeAt(emoji.indexOf("\u2026") - 1)).not.toBe(0xd83d);
    expect(() => encodeURIComponent(emoji)).not.toThrow();
  });

  test("a record's message and process texts are cut; a record within its caps is passed as it is", () => {
    const small = rec("fine");
    expect(boundedRecord(small)).toBe(small);
    const proc = { pid: 7, name: "n".repeat(20_000), path: "/p", cmdline: "c".repeat(3_000_000), uid: 0, user: "root", startTime: null, ppid: 1 };
    const big = rec("m".repeat(1_000_000), { process: proc });
    const b = boundedRecord(big);
    expect(b).not.toBe(big);
    expect(b.message).toHaveLength(MAX_MESSAGE_CHARS);
    expect(b.process!.cmdline).toHaveLength(MAX_FIELD_CHARS);
    expect(b.process!.name).toHaveLength(MAX_FIELD_CHARS);
    expect(b.process!.path).toBe("/p");
    // The original is left alone: other holders of it see what they had.
    expect(big.message).toHaveLength(1_000_000);
    // What the biggest record costs is far below the smallest bound a queue may have (64 KiB).
    expect(recordBytes(b)).toBeLessThan(48 * KiB);
    expect(recordBytes(big)).toBeGreaterThan(2_000_000);
  });
});

describe("delivery queue byte bound", () => {
  /** A queue whose deliveries never finish: everything given to it waits. */
  function stalled(maxBytes: number, told: string[]) {
    const counters = new SinkCounters("test", (_, m) => told.push(m));
    const batches: number[][] = [];
    const queue = new DeliveryQueue<number>({
      limit: 1_000_000,
      maxBytes,
      sizeOf: (n) => n,
      batchSize: 1000,
      retry: { initialMs: 1, maxMs: 1, maxRetries: Infinity },
      deliver: (batch) => {
        batches.push(batch);
        return new Promise(() => {});
      },
      counters,
    });
    return { queue, counters, batches };
  }

  test("holds at most its bound, the batch in flight included; the oldest go first, counted and told once", () => {
    const told: string[] = [];
    const { queue, counters, batches } = stalled(64 * KiB, told);
    let given = 0;
    for (let i = 0; i < 2000; i++) {
      queue.push([1000, 3000, 500]);
      given += 3;
      expect(queue.bytes).toBeLessThanOrEqual(64 * KiB);
    }
    // The batch taken first was at most a quarter of the bound.
    expect(batches).toHaveLength(1);
    expect(batches[0]!.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(16 * KiB);
    expect(queue.bytes).toBeGreaterThan(60 * KiB);
    expect(counters.droppedBy.overflow).toBe(given - queue.size);
    expect(counters.dropped).toBe(counters.droppedBy.overflow);
    expect(told).toEqual(["queue full (over its 64 KiB bound): dropping the oldest"]);
  });

  test("an item larger than the whole bound is dropped and counted, not held", () => {
    const told: string[] = [];
    const { queue, counters } = stalled(64 * KiB, told);
    queue.push([10, 70 * KiB, 20]);
    expect(queue.size).toBe(2);
    expect(queue.bytes).toBe(30);
    expect(counters.droppedBy.overflow).toBe(1);
    expect(told).toEqual(["a record larger than the queue's 64 KiB bound: dropped"]);
  });
});

describe("outputs: what a sink drops is counted by reason and told to the other sinks", () => {
  test("a file sink that cannot write: its overflow in the metrics and in the other sink's file", async () => {
    const blocker = path.join(dir, "not-a-dir");
    fs.writeFileSync(blocker, "");
    const bad = `file:${path.join(blocker, "a.ndjson")}`;
    const good = path.join(dir, "good.ndjson");
    const warnings: string[] = [];
    const outputs = createOutputs([`${bad}?queueBytes=64K`, `file:${good}`], { warn: (m) => warnings.push(m), dropReportMs: 50 });
    const text = "t".repeat(4000);
    for (let i = 0; i < 100; i++) outputs.write([rec(`${i} ${text}`)]);
    // Read while the sink writes: only whole lines count (the last one may be half written).
    const lines = () => {
      const text = fs.existsSync(good) ? fs.readFileSync(good, "utf8") : "";
      return text.slice(0, text.lastIndexOf("\n") + 1).split("\n").filter(Boolean).map((l) => JSON.parse(l) as SinkRecord);
    };
    const about = () => lines().filter((r) => r.kind === "report" && r.message.startsWith(`${bad}: `));
    await waitFor("the good sink to be told of the drops", () => about().some((r) => r.outcome === SINK_DROPPED_OUTCOME), 10_000, () => JSON.stringify(about()));
    const metrics = new Metrics();
    outputs.describe(metrics);
    const text_ = metrics.render();
    const overflow = Number(new RegExp(`^sockwarden_sink_dropped_total\\{sink="${bad.replaceAll("/", "\\/")}",reason="overflow"\\} (\\d+)$`, "m").exec(text_)?.[1]);
    expect(overflow).toBeGreaterThan(80);
    expect(text_).toMatch(new RegExp(`^sockwarden_sink_queue_bytes_limit\\{sink="${bad}"\\} 65536$`, "m"));
    const queued = Number(new RegExp(`^sockwarden_sink_queue_bytes\\{sink="${bad}"\\} (\\d+)$`, "m").exec(text_)?.[1]);
    expect(queued).toBeLessThanOrEqual(65536);
    await outputs.close(200);

    const told = about();
    expect(told.filter((r) => r.outcome === SINK_PROBLEM_OUTCOME).map((r) => r.message)).toContain(`${bad}: queue full (over its 64 KiB bound): dropping the oldest`);
    const count = told.find((r) => r.outcome === SINK_DROPPED_OUTCOME)!;
    expect(count.severity).toBe("warning");
    expect(count.message).toMatch(/: \d+ record\(s\) dropped in the last \d+ s, \d+ in all: \d+ with its queue full \(bound 64 KiB\)/);
    // The same lines on stderr; the sink that drops is not told of itself.
    expect(warnings).toContain(`${bad}: queue full (over its 64 KiB bound): dropping the oldest`);
    expect(warnings.filter((w) => w.startsWith(`file:${good}: `))).toEqual([]);
    // Every record the good sink got: the 100 written, and what it was told.
    expect(lines().filter((r) => r.kind === "log")).toHaveLength(100);
  });
});
