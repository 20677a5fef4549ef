/**
 * Per-rule limits on actions that touch the system (close, kill): at most N a minute in a sliding
 * window. Past the limit an action is not taken; the caller turns it into an alert saying so.
 */
export class ActionRateLimiter {
  private readonly taken = new Map<string, number[]>();

  constructor(
    private readonly defaultPerMinute: number,
    private readonly perRule: Record<string, number> = {},
    // Monotonic: a wall clock set back an hour must not hold every rule at its limit for an hour.
    private readonly clock: () => number = () => performance.now(),
  ) {}

  limitFor(rule: string): number {
    return this.perRule[rule] ?? this.defaultPerMinute;
  }

  /** True when the rule may act now (and counts it). */
  allow(rule: string): boolean {
    const now = this.clock();
    const limit = this.limitFor(rule);
    const list = (this.taken.get(rule) ?? []).filter((t) => now - t < 60_000);
    if (list.length >= limit) {
      this.taken.set(rule, list);
      return false;
    }
    list.push(now);
    this.taken.set(rule, list);
    return true;
  }
}
