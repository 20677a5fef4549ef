/**
 * Polls `probe` (which may be async) every 50 ms until it gives a value; throws, naming `what()`,
 * after `timeoutMs`. Readiness instead of a sleep: the e2e tests' one way of waiting.
 */
export async function waitFor<T>(what: () => string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
