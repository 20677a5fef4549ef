/**
 * Tell the first, count the rest: how a thing that repeats is told to people. The first
 * occurrence of an episode is told at once; the ones after it are only counted, until the owner
 * tells them as one count (when, and in what words, is the owner's business); after the episode
 * ends, the next occurrence is told at once again. Faults of the daemon, bursts of alerts and a
 * sink's overflow all keep their episodes with this.
 *
 * No imports: it sits at the bottom, so every layer can use it.
 */
export class TellFirst {
  /** Occurrences in the episode so far; 0 between episodes. */
  total = 0;
  /** Occurrences after the first that no line has told yet. */
  untold = 0;

  /** Counts `n` occurrences; true when they open an episode and are to be told now. */
  add(n = 1): boolean {
    if (n <= 0) return false;
    const first = this.total === 0;
    this.total += n;
    if (!first) this.untold += n;
    return first;
  }

  /** The occurrences not told yet, counted as told from now on. */
  take(): number {
    const n = this.untold;
    this.untold = 0;
    return n;
  }

  /** True from the first occurrence until end(). */
  get open(): boolean {
    return this.total > 0;
  }

  /** Ends the episode: the next occurrence is told at once again. */
  end(): void {
    this.total = 0;
    this.untold = 0;
  }
}
