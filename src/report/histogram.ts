/**
 * A histogram counted one value at a time in fixed-width bins (memory independent of how
 * many values come), shown as at most `maxBars` bars: empty bins at either end dropped,
 * neighbours merged until the bars fit.
 */
import type { Bin } from './html/data.js';

export class Histogram {
  readonly #width: number;
  readonly #counts: number[];

  /** Values from 0 to `width × bins`; larger ones count in the last bin. */
  constructor(width: number, bins: number) {
    this.#width = width;
    this.#counts = new Array<number>(bins).fill(0);
  }

  add(value: number): void {
    if (!Number.isFinite(value) || value < 0) return;
    const bin = Math.min(this.#counts.length - 1, Math.floor(value / this.#width));
    this.#counts[bin]! += 1;
  }

  /** The bars to show; none when nothing was counted. */
  bins(maxBars = 40): Bin[] {
    const first = this.#counts.findIndex((count) => count > 0);
    if (first < 0) return [];
    let last = this.#counts.length - 1;
    while (this.#counts[last] === 0) last--;
    const span = last - first + 1;
    const merge = Math.ceil(span / maxBars);
    const bars: Bin[] = [];
    for (let start = first; start <= last; start += merge) {
      let count = 0;
      for (let bin = start; bin < Math.min(start + merge, last + 1); bin++) count += this.#counts[bin]!;
      bars.push({ from: start * this.#width, to: Math.min(start + merge, last + 1) * this.#width, count });
    }
    return bars;
  }
}
