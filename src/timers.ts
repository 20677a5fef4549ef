/**
 * The timer functions the refresh loop, the live view and reverse DNS schedule their deadlines
 * with, so that tests can drive time by hand instead of waiting for it.
 */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The runtime's own timers. */
export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * Settles as the work does, or, when it has not after `ms`, with what `onTimeout` returns (or
 * rejects with what it throws). The work itself goes on; what it ends with later is ignored.
 */
export function withTimeout<T, F>(work: Promise<T>, ms: number, onTimeout: () => F, timers: Timers = realTimers): Promise<T | F> {
  return new Promise<T | F>((resolve, reject) => {
    const timer = timers.setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (err) {
        reject(err);
      }
    }, Math.max(0, ms));
    work.then(
      (value) => {
        timers.clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        timers.clearTimeout(timer);
        reject(err);
      },
    );
  });
}
