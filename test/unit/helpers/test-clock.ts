// The runtime's own setTimeout and clearTimeout (and, when asked, performance.now) on the test's
// clock, for code that arms its deadlines with them directly: a deadline is checked at its exact
// tick, whatever the machine's load. I/O and setImmediate stay real.
import { vi } from "vitest";

/** Lets every promise reaction that is ready run (setImmediate comes after the microtasks). */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A promise and whether it has settled yet. */
export function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: boolean } {
  const tracked = { promise, settled: false };
  promise.then(
    () => (tracked.settled = true),
    () => (tracked.settled = true),
  );
  return tracked;
}

/**
 * Runs `body` with setTimeout and clearTimeout (and performance.now with `performance`) on the
 * test's clock, which only `advance` moves; the real ones are back afterwards, whatever happens.
 */
export async function withTestClock<T>(body: (advance: (ms: number) => Promise<void>) => Promise<T>, o: { performance?: boolean } = {}): Promise<T> {
  vi.useFakeTimers({ toFake: o.performance ? ["setTimeout", "clearTimeout", "performance"] : ["setTimeout", "clearTimeout"] });
  try {
    return await body(async (ms) => {
      await vi.advanceTimersByTimeAsync(ms);
      await settle();
    });
  } finally {
    vi.useRealTimers();
  }
}

/**
 * Waits for `check` between turns of the event loop (timers belong to the test's clock), for at
 * most `ms` of real time; throws saying what was awaited.
 */
export async function waitWithoutTimers(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await settle();
  }
}
