/**
 * A logical clock for response timeouts (vmm-and-faults.md §3.6, §6.4). Linux and iommufd have no
 * timer: an unanswered group waits forever. A model may opt in to timeouts; they run on this
 * clock, which only moves when a test or harness calls {@link LogicalClock.advance}, so every
 * timeout is deterministic.
 */
export class LogicalClock {
  #now = 0;
  readonly #listeners = new Set<(now: number) => void>();

  /** The current time, in ticks (starts at 0). */
  get now(): number {
    return this.#now;
  }

  /**
   * Moves time forward by `ticks` (a non-negative integer) and tells every listener.
   * @returns the new time
   */
  advance(ticks = 1): number {
    if (!Number.isSafeInteger(ticks) || ticks < 0) throw new RangeError(`LogicalClock.advance: ${String(ticks)} is not a non-negative integer`);
    this.#now += ticks;
    for (const l of [...this.#listeners]) l(this.#now);
    return this.#now;
  }

  /** Calls `listener` after every advance; returns the unsubscribe function. */
  onAdvance(listener: (now: number) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }
}
