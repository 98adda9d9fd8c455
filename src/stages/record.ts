/**
 * The last stage: every outcome is recorded here and nowhere else, so the summary, the
 * `--results` file and the progress lines can never disagree.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { ReportOptions } from '../options.js';
import type { Item, Outcome } from '../types.js';

export interface Summary {
  rows: number;
  saved: number;
  failed: number;
  skipped: number;
  /** Failed rows by reason code. */
  failures: Record<string, number>;
  bytesFetched: number;
  bytesWritten: number;
  seconds: number;
  imagesPerSecond: number;
}

/** One line of `--results`. */
export interface ResultLine {
  index: number;
  id: string | null;
  url: string | null;
  status: 'saved' | 'failed' | 'skipped';
  reason?: string;
  detail?: string;
  attempts: number;
  width?: number;
  height?: number;
  bytes?: number;
}

/** Failure messages printed per reason before the rest go only to --results. */
const MESSAGES_PER_REASON = 20;

export class Recorder {
  readonly #startedAt = performance.now();
  readonly #log: (message: string) => void;
  readonly #results: WriteStream | undefined;
  readonly #counts: Summary = emptySummary();
  #timer: NodeJS.Timeout | undefined;

  private constructor(report: ReportOptions, log: (message: string) => void, results: WriteStream | undefined) {
    this.#log = log;
    this.#results = results;
    if (report.logEveryMs > 0 && !report.quiet) {
      this.#timer = setInterval(() => this.#log(`progress: ${this.#progressLine()}`), report.logEveryMs).unref();
    }
  }

  static async open(report: ReportOptions, log: (message: string) => void): Promise<Recorder> {
    let results: WriteStream | undefined;
    if (report.resultsPath !== undefined) {
      results = createWriteStream(report.resultsPath);
      await once(results, 'open');
    }
    return new Recorder(report, log, results);
  }

  /** Consumes the pipeline's output; the promise settles when the last row is recorded. */
  readonly consume = async (items: AsyncIterable<Item>): Promise<void> => {
    for await (const item of items) {
      if (item.kind !== 'saved' && item.kind !== 'failed') {
        throw new Error(`internal error: a ${item.kind} item reached the end of the pipeline`);
      }
      this.#record(item);
      if (this.#results && !this.#results.write(`${JSON.stringify(toResultLine(item))}\n`)) {
        await once(this.#results, 'drain');
      }
    }
  };

  #record(outcome: Outcome): void {
    const counts = this.#counts;
    counts.rows++;
    counts.bytesFetched += outcome.bytesFetched;
    if (outcome.kind === 'saved') {
      counts.saved++;
      counts.bytesWritten += outcome.bytesWritten;
      return;
    }
    counts.failed++;
    const seen = (counts.failures[outcome.reason] ?? 0) + 1;
    counts.failures[outcome.reason] = seen;
    if (seen <= MESSAGES_PER_REASON) this.#log(`failed: ${outcome.reason}: ${outcome.detail}`);
    if (seen === MESSAGES_PER_REASON) this.#log(`(further ${outcome.reason} failures are counted, and listed in --results)`);
  }

  summary(): Summary {
    const seconds = (performance.now() - this.#startedAt) / 1000;
    return {
      ...this.#counts,
      failures: { ...this.#counts.failures },
      seconds: round(seconds, 3),
      imagesPerSecond: round(this.#counts.saved / Math.max(seconds, 1e-9), 3),
    };
  }

  #progressLine(): string {
    const s = this.summary();
    const mbPerSecond = s.bytesFetched / 1e6 / Math.max(s.seconds, 1e-9);
    return `${s.rows} rows, ${s.saved} saved, ${s.failed} failed, ${s.imagesPerSecond.toFixed(2)} images/s, ${mbPerSecond.toFixed(1)} MB/s in`;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    if (this.#results) {
      this.#results.end();
      await finished(this.#results);
    }
  }
}

export function formatSummary(summary: Summary, output: string): string {
  const reasons = Object.entries(summary.failures)
    .sort(([, a], [, b]) => b - a)
    .map(([reason, count]) => `${reason} ${count}`)
    .join(', ');
  return (
    `done in ${summary.seconds.toFixed(1)} s: ${summary.rows} rows, ${summary.saved} saved, ` +
    `${summary.failed} failed${reasons ? ` (${reasons})` : ''}, ${summary.skipped} skipped; ` +
    `${summary.imagesPerSecond.toFixed(2)} images/s; ${mb(summary.bytesFetched)} fetched, ` +
    `${mb(summary.bytesWritten)} written to ${output}`
  );
}

function toResultLine(outcome: Outcome): ResultLine {
  const base = {
    index: outcome.row.index,
    id: outcome.row.id ?? null,
    url: outcome.row.url ?? null,
    attempts: outcome.attempts,
  };
  if (outcome.kind === 'saved') {
    return { ...base, status: 'saved', width: outcome.width, height: outcome.height, bytes: outcome.bytesWritten };
  }
  return { ...base, status: 'failed', reason: outcome.reason, detail: outcome.detail };
}

function emptySummary(): Summary {
  return { rows: 0, saved: 0, failed: 0, skipped: 0, failures: {}, bytesFetched: 0, bytesWritten: 0, seconds: 0, imagesPerSecond: 0 };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
