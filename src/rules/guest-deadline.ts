/**
 * Deadlines for QuickJS's interrupt handler, which the runtime polls while guest code runs.
 * They follow the monotonic clock: a wall clock set back (NTP, an operator) must not stall the
 * interrupt, nor one set forward cut a call short.
 */
export const now = (): number => performance.now();

/** An interrupt handler that stops the guest once `deadline` (on now()) has passed. */
export function interruptAt(deadline: number): () => boolean {
  return () => now() > deadline;
}
