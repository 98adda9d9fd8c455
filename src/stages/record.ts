/**
 * The last stage: every outcome is recorded here and nowhere else, so the resume state,
 * the summary, `--results`, progress and metrics can never disagree.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { errorMessage, writeError } from '../errors.js';
import type { HostStatus } from '../fetch/host-gate.js';
import type { ReportOptions } from '../report/options.js';
import { emptyCounters, type Counters, type Snapshot } from '../report/counters.js';
import { formatMetrics, writeMetrics } from '../report/metrics.js';
import type { ProgressReporter } from '../report/progress.js';
import type { ResumeState, SavedRecord } from '../state/store.js';
import type { CaptionSource, Item, Outcome, Saved } from '../types.js';

export interface Summary {
  rows: number;
  saved: number;
  failed: number;
  skipped: number;
  /** Failed rows by reason code. */
  failures: Record<string, number>;
  /** Skipped rows by reason code. */
  skips: Record<string, number>;
  bytesFetched: number;
  bytesWritten: number;
  seconds: number;
  imagesPerSecond: number;
  /** Set when the run was stopped by a signal before reading every row. */
  interrupted?: boolean;
}

/** One line of `--results`. */
export interface ResultLine {
  /** The input file, when the run reads several. */
  source?: string;
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
  /** sha256 of the stored image, and of the bytes fetched (before any re-encode; also for a `duplicate_content` skip). */
  sha256?: string;
  original_sha256?: string;
  /** Where a saved sample's caption came from: the caption column, the fallback column, or none (`--missing-captions keep`). */
  caption_source?: CaptionSource;
}

/** Failure messages printed per reason before the rest go only to --results. */
const MESSAGES_PER_REASON = 20;
const METRICS_EVERY_MS = 5_000;
/** How often the run's counts and the hosts' slow-downs are written to the state: a killed run keeps all but the last few seconds. */
const STATE_EVERY_MS = 10_000;
/** Skips of a row that duplicates another id's sample: recorded, or the row's id would leave no trace. */
const DUPLICATE_SKIPS: ReadonlySet<string> = new Set(['duplicate_url', 'duplicate_content']);

function savedRecord(saved: Saved): SavedRecord {
  return {
    url: saved.row.url,
    width: saved.width,
    height: saved.height,
    bytes: saved.bytesWritten,
    bytesFetched: saved.bytesFetched,
    originalSha256: saved.originalSha256,
    originalWidth: saved.originalWidth,
    originalHeight: saved.originalHeight,
    captionSource: saved.row.captionSource,
    captionWords: saved.row.caption === null ? 0 : wordCount(saved.row.caption),
  };
}

function wordCount(text: string): number {
  let words = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const space = text.charCodeAt(i) <= 32;
    if (!space && !inWord) words++;
    inWord = !space;
  }
  return words;
}

export interface RecorderSetup {
  readonly report: ReportOptions;
  readonly progress: ProgressReporter;
  readonly state?: { readonly store: ResumeState; readonly run: number };
  readonly totalRows?: number;
  /** The fetcher's view of each host (in flight, limits, pace, slow-downs). */
  readonly hosts?: () => readonly HostStatus[];
  /** Add to `--results` instead of starting it afresh (a queue worker runs job after job). */
  readonly appendResults?: boolean;
  /**
   * Told of each outcome once the state holds it: rows waiting on this row's URL or
   * content (stages/claims.ts) may look again.
   */
  readonly recorded?: (outcome: Outcome) => void;
}

const noHosts = (): readonly HostStatus[] => [];

export class Recorder {
  readonly #startedAt = Date.now();
  readonly #clock = performance.now();
  readonly #setup: RecorderSetup;
  readonly #results: WriteStream | undefined;
  readonly #counts: Counters = emptyCounters();
  readonly #metricsTimer: NodeJS.Timeout | undefined;
  readonly #stateTimer: NodeJS.Timeout | undefined;
  /** Each host's slow-downs already written to the state (the fetcher's gate counts from its start). */
  readonly #slowDownsWritten = new Map<string, number>();
  /** The first error of the --results stream (a full disk): the run cannot keep its record. */
  #resultsFailure: Error | undefined;
  /** Whether the last metrics write failed, so a failing one warns once, not every 5 s. */
  #metricsFailing = false;

  private constructor(setup: RecorderSetup, results: WriteStream | undefined) {
    this.#setup = setup;
    this.#results = results;
    setup.progress.start(() => this.snapshot());
    const resultsPath = setup.report.resultsPath;
    if (results && resultsPath !== undefined) results.on('error', (error) => (this.#resultsFailure ??= writeError(resultsPath, error)));
    const metricsPath = setup.report.metricsPath;
    if (metricsPath !== undefined) {
      this.#metricsTimer = setInterval(() => void this.#writeMetrics(metricsPath), METRICS_EVERY_MS).unref();
    }
    if (setup.state) {
      // A queue worker's fetcher has counted since the worker started: only what comes now is this run's.
      for (const { host, slowDowns } of (setup.hosts ?? noHosts)()) this.#slowDownsWritten.set(host, slowDowns);
      this.#stateTimer = setInterval(() => void this.#writeToState().catch(() => {}), STATE_EVERY_MS).unref();
    }
  }

  /**
   * The run's counts and the hosts' new slow-downs, into the state. Between the timer's
   * writes a failure only waits for the next (a full disk stops the run at its next sample
   * anyway); the last one, at close, is the run's own.
   */
  async #writeToState(): Promise<void> {
    const state = this.#setup.state;
    if (!state) return;
    const { rows, saved, failed, skipped, failures, skips } = this.#counts;
    await state.store.updateRun?.(state.run, { rows, saved, failed, skipped, failures, skips });
    const added = new Map<string, number>();
    for (const { host, slowDowns } of (this.#setup.hosts ?? noHosts)()) {
      const more = slowDowns - (this.#slowDownsWritten.get(host) ?? 0);
      if (more > 0) added.set(host, more);
    }
    await state.store.addSlowDowns(added);
    for (const [host, more] of added) this.#slowDownsWritten.set(host, (this.#slowDownsWritten.get(host) ?? 0) + more);
  }

  static async open(setup: RecorderSetup): Promise<Recorder> {
    let results: WriteStream | undefined;
    const path = setup.report.resultsPath;
    if (path !== undefined) {
      results = createWriteStream(path, { flags: setup.appendResults ? 'a' : 'w' });
      await once(results, 'open').catch((error: unknown) => Promise.reject(writeError(path, error)));
    }
    return new Recorder(setup, results);
  }

  /** Counts a row read from the input (for the in-flight gauge). */
  readonly rowRead = (): void => {
    this.#counts.read++;
  };

  /** Consumes the pipeline's output; the promise settles when the last row is recorded. */
  readonly consume = async (items: AsyncIterable<Item>): Promise<void> => {
    for await (const item of items) {
      if (item.kind !== 'saved' && item.kind !== 'failed' && item.kind !== 'skipped') {
        throw new Error(`internal error: a ${item.kind} item reached the end of the pipeline`);
      }
      // The shared (Redis) state answers asynchronously; the local one at once.
      const recorded = this.#record(item);
      if (recorded) await recorded;
      this.#setup.recorded?.(item);
      if (this.#resultsFailure) throw this.#resultsFailure;
      if (this.#results && !this.#results.write(`${JSON.stringify(toResultLine(item))}\n`)) {
        await once(this.#results, 'drain').catch(() => {}); // an 'error' ends the wait
        if (this.#resultsFailure) throw this.#resultsFailure;
      }
    }
  };

  #record(outcome: Outcome): void | Promise<void> {
    const counts = this.#counts;
    const state = this.#setup.state;
    let recorded: void | Promise<void> = undefined;
    counts.rows++;
    switch (outcome.kind) {
      case 'saved':
        counts.saved++;
        counts.bytesFetched += outcome.bytesFetched;
        counts.bytesWritten += outcome.bytesWritten;
        recorded = state?.store.recordSaved(outcome.row.id, state.run, savedRecord(outcome));
        break;
      case 'skipped':
        counts.skipped++;
        counts.skips[outcome.reason] = (counts.skips[outcome.reason] ?? 0) + 1;
        counts.bytesFetched += outcome.bytesFetched ?? 0;
        // A duplicate of another id leaves no record of its own id otherwise.
        if (state && DUPLICATE_SKIPS.has(outcome.reason)) recorded = state.store.recordSkipped(outcome.row.id, state.run, { reason: outcome.reason, url: outcome.row.url });
        break;
      case 'failed': {
        counts.failed++;
        counts.bytesFetched += outcome.bytesFetched;
        // An interrupted row is not the sample's fault: the next run simply tries it.
        if (state && outcome.row.id !== undefined && outcome.reason !== 'interrupted') {
          recorded = state.store.recordFailed(outcome.row.id, state.run, { reason: outcome.reason, detail: outcome.detail, bytesFetched: outcome.bytesFetched, ...(outcome.row.url === undefined ? {} : { url: outcome.row.url }) });
        }
        const seen = (counts.failures[outcome.reason] ?? 0) + 1;
        counts.failures[outcome.reason] = seen;
        // With several inputs, "row 12" needs its file.
        const where = outcome.row.source === undefined ? '' : `${outcome.row.source}: `;
        if (seen <= MESSAGES_PER_REASON) this.#setup.progress.log(`failed: ${outcome.reason}: ${where}${outcome.detail}`);
        if (seen === MESSAGES_PER_REASON) {
          this.#setup.progress.log(`(further ${outcome.reason} failures are counted, and listed in --results)`);
        }
        break;
      }
    }
    return recorded;
  }

  snapshot(): Snapshot {
    return { ...this.#counts, seconds: (performance.now() - this.#clock) / 1000, total: this.#setup.totalRows, hosts: this.#setup.hosts ?? noHosts };
  }

  summary(): Summary {
    const { read: _read, hosts: _hosts, ...counts } = this.snapshot();
    const seconds = Math.max(counts.seconds, 1e-9);
    return {
      rows: counts.rows,
      saved: counts.saved,
      failed: counts.failed,
      skipped: counts.skipped,
      failures: { ...counts.failures },
      skips: { ...counts.skips },
      bytesFetched: counts.bytesFetched,
      bytesWritten: counts.bytesWritten,
      seconds: round(seconds, 3),
      imagesPerSecond: round(counts.saved / seconds, 3),
    };
  }

  /**
   * Metrics are for watching the run, not part of its output: a write that fails is a
   * warning (once until one succeeds again), never a reason to stop or fail the run.
   */
  async #writeMetrics(path: string): Promise<void> {
    try {
      await writeMetrics(path, formatMetrics(this.snapshot(), this.#startedAt));
      this.#metricsFailing = false;
    } catch (error) {
      if (!this.#metricsFailing) this.#setup.progress.log(`warning: cannot write the metrics file ${path}: ${errorMessage(error)}`);
      this.#metricsFailing = true;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#metricsTimer);
    clearInterval(this.#stateTimer);
    this.#setup.progress.stop();
    await this.#writeToState().catch(() => {}); // a state that cannot be written fails the run where it ends
    if (this.#setup.report.metricsPath !== undefined) await this.#writeMetrics(this.#setup.report.metricsPath);
    if (this.#results) {
      this.#results.end();
      await finished(this.#results).catch(() => {});
      if (this.#resultsFailure) throw this.#resultsFailure;
    }
  }
}

export function formatSummary(summary: Summary, output: string): string {
  const reasons = (counts: Record<string, number>) => {
    const text = Object.entries(counts)
      .sort(([, a], [, b]) => b - a)
      .map(([reason, count]) => `${reason} ${count}`)
      .join(', ');
    return text ? ` (${text})` : '';
  };
  return (
    `${summary.interrupted ? 'stopped' : 'done'} in ${summary.seconds.toFixed(1)} s: ${summary.rows} rows, ${summary.saved} saved, ` +
    `${summary.failed} failed${reasons(summary.failures)}, ${summary.skipped} skipped${reasons(summary.skips)}; ` +
    `${summary.imagesPerSecond.toFixed(2)} images/s; ${mb(summary.bytesFetched)} fetched, ` +
    `${mb(summary.bytesWritten)} written to ${output}`
  );
}

function toResultLine(outcome: Outcome): ResultLine {
  const base = { ...(outcome.row.source === undefined ? {} : { source: outcome.row.source }), index: outcome.row.index, id: outcome.row.id ?? null, url: outcome.row.url ?? null };
  switch (outcome.kind) {
    case 'saved':
      return {
        ...base,
        status: 'saved',
        attempts: outcome.attempts,
        width: outcome.width,
        height: outcome.height,
        bytes: outcome.bytesWritten,
        sha256: outcome.sha256,
        original_sha256: outcome.originalSha256,
        caption_source: outcome.row.captionSource,
      };
    case 'skipped':
      return {
        ...base,
        status: 'skipped',
        reason: outcome.reason,
        attempts: outcome.attempts ?? 0,
        ...(outcome.originalSha256 === undefined ? {} : { original_sha256: outcome.originalSha256 }),
      };
    case 'failed':
      return { ...base, status: 'failed', reason: outcome.reason, detail: outcome.detail, attempts: outcome.attempts };
  }
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
