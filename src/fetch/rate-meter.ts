/**
 * How fast a host has been answering: events per second over a sliding window, now and at
 * its best over a longer horizon (a windowed maximum, as BBR estimates a path's bandwidth
 * from the best delivery rate it recently saw, not the last one).
 */
export class RateMeter {
  readonly #windowMs: number;
  readonly #horizonMs: number;
  /** Event times within the horizon, oldest first, from `#head` on. */
  #times: number[] = [];
  #head = 0;
  #startedAt: number | undefined;

  /**
   * @param windowMs the span a rate is measured over
   * @param horizonMs how far back `peak` looks
   */
  constructor(windowMs: number, horizonMs: number) {
    this.#windowMs = windowMs;
    this.#horizonMs = horizonMs;
  }

  /** Marks when measuring began: rates in the first window are over the time since (at least 1 s). */
  start(now: number): void {
    this.#startedAt ??= now;
  }

  record(now: number): void {
    this.start(now);
    this.#times.push(now);
    this.#forget(now);
  }

  /** Events per second over the last window. */
  current(now: number): number {
    this.#forget(now);
    return this.#countSince(now - this.#windowMs) * (1000 / this.#span(now));
  }

  /** The best rate over any window ending within the horizon. */
  peak(now: number): number {
    this.#forget(now);
    const times = this.#times;
    let best = 0;
    // Two pointers: for each event as a window's end, the events in the window before it.
    for (let end = this.#head, start = this.#head; end < times.length; end++) {
      while (times[start]! <= times[end]! - this.#windowMs) start++;
      best = Math.max(best, end - start + 1);
    }
    return best * (1000 / this.#span(now));
  }

  /** The window, or the time measured so far when shorter (but at least 1 s: a burst is not a rate). */
  #span(now: number): number {
    return Math.max(1000, Math.min(this.#windowMs, now - (this.#startedAt ?? now)));
  }

  #countSince(since: number): number {
    // Binary search for the first event after `since`.
    let low = this.#head;
    let high = this.#times.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#times[middle]! <= since) low = middle + 1;
      else high = middle;
    }
    return this.#times.length - low;
  }

  #forget(now: number): void {
    const times = this.#times;
    while (this.#head < times.length && times[this.#head]! <= now - this.#horizonMs) this.#head++;
    // Compact now and then, so forgetting stays cheap per event.
    if (this.#head > 1024 && this.#head * 2 > times.length) {
      this.#times = times.slice(this.#head);
      this.#head = 0;
    }
  }
}
