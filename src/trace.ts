/**
 * Phase timings on stderr when SOCKWARDEN_TRACE is set: where a slow listing spends its time on a
 * user's box, without a profiler.
 */
const enabled = !!process.env.SOCKWARDEN_TRACE;
/** Whether tracing is on: for traces whose labels cost something to make. */
export const tracing = enabled;
let last = performance.now();

export function trace(label: string): void {
  if (!enabled) return;
  const now = performance.now();
  const rss = (process.memoryUsage.rss() / 1048576).toFixed(1);
  process.stderr.write(`trace: ${label} +${(now - last).toFixed(1)} ms (at ${now.toFixed(1)} ms, rss ${rss} MiB)\n`);
  last = now;
}
