// Waiting in unit tests: for a condition or for a sink to deliver, each bounded on the monotonic
// clock and failing with what it waited for, never a fixed sleep.
import { expect } from "vitest";
import type { Sink } from "../../../src/outputs/sink.ts";

/**
 * Polls `check` until it holds; throws saying what was awaited, and `detail()` (what there is so
 * far) when given, when `ms` pass first.
 */
export async function waitFor(what: string, check: () => boolean, ms = 10_000, detail?: () => string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${detail ? `; ${detail()}` : ""}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Flushes `sink` with a generous bound (a flush returns as soon as everything is delivered; fsync
 * on a busy disk can take long) and fails, with its figures, when it did not drain.
 */
export async function drain(sink: Sink, ms = 30_000): Promise<void> {
  const drained = await sink.flush(ms);
  expect(drained, `${sink.name} did not drain within ${ms} ms: ${JSON.stringify(sink.stats())}`).toBe(true);
}
