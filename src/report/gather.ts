/**
 * Folds a dataset's outcomes into the report's data, one row at a time: whatever the number
 * of rows, the builder holds only counters, fixed-width histograms, one counter per minute
 * and per host, and three examples per failure reason (src/report/html/data.ts says what
 * the page gets).
 *
 * The rows come from the resume state (one machine's SQLite, or a queue's Redis) and, for
 * the built-in sinks, from the sink's record of what it stored; readers in local.ts and
 * shared.ts turn those into `OutcomeRow`s and `StoredRow`s.
 */
import { bucketOf, type BucketSettings } from './buckets.js';
import { Histogram } from './histogram.js';
import type { AspectBucket, FailureGroup, HostRow, ReportData, SkipGroup, Thumbnail, TimelinePoint } from './html/data.js';

/** One sample's latest outcome, as the state recorded it; fields an older state lacks are absent. */
export interface OutcomeRow {
  readonly id: string;
  readonly status: 'saved' | 'failed' | 'skipped';
  /** The failure or skip reason. */
  readonly reason?: string;
  /** When the outcome was recorded (ms since the epoch). */
  readonly at?: number;
  /** The host the image came from (or the URL, from which it is taken). */
  readonly host?: string;
  readonly url?: string;
  readonly detail?: string;
  readonly bytesFetched?: number;
  readonly bytesWritten?: number;
  /** Saved samples: the stored image's size, the original's, the caption's source and length. */
  readonly width?: number;
  readonly height?: number;
  readonly originalWidth?: number;
  readonly originalHeight?: number;
  readonly captionSource?: 'caption' | 'fallback';
  readonly captionWords?: number;
}

/** A stored sample as the sink recorded it (for the built-in sinks: caption, sizes). */
export interface StoredRow {
  readonly id: string;
  readonly caption: string | null;
  readonly width: number;
  readonly height: number;
  readonly originalWidth: number;
  readonly originalHeight: number;
}

export interface ReportSetup {
  readonly title: string;
  readonly sink: string;
  readonly batchSize: number;
  /** How SimpleTuner will bucket the images: the run's resolution settings. */
  readonly buckets: BucketSettings;
  /** Says where `buckets` came from, for the page. */
  readonly resolutionNote: string;
  /** Whether StoredRows will come (a built-in sink's record); otherwise the saved outcomes are the images. */
  readonly storedRows: boolean;
}

/** How many failures of each reason the page lists. */
const EXAMPLES_PER_REASON = 3;
/** The busiest hosts the page shows. */
const HOSTS_SHOWN = 30;
/** Longer than this between the first and last outcome, and the timeline counts per hour. */
const MINUTES_SPAN = 48 * 60;
const MINUTE_MS = 60_000;

const words = (text: string): number => text.split(/\s+/).filter(Boolean).length;

export class ReportBuilder {
  readonly #setup: ReportSetup;
  #saved = 0;
  #failed = 0;
  #bytesFetched = 0;
  #bytesWritten = 0;
  #firstAt = Infinity;
  #lastAt = -Infinity;
  readonly #failures = new Map<string, { count: number; examples: FailureGroup['examples'][number][] }>();
  readonly #skips = new Map<string, number>();
  /** Outcomes per minute since the epoch. */
  readonly #minutes = new Map<number, { saved: number; failed: number }>();
  readonly #hosts = new Map<string, { rows: number; failed: number }>();
  readonly #shorter = new Histogram(32, 2048);
  readonly #longer = new Histogram(32, 2048);
  readonly #megapixels = new Histogram(0.25, 800);
  readonly #captionWords = new Histogram(2, 1000);
  readonly #buckets = new Map<string, { aspect: number; count: number }>();
  #captions = { counted: 0, fromFallback: 0, missing: 0, sourceUnknown: 0 };
  /** What older states lack, by field, counted over the rows that should have it. */
  readonly #lacking = { failureUrl: 0, time: 0, originalSize: 0 };

  constructor(setup: ReportSetup) {
    this.#setup = setup;
  }

  outcome(row: OutcomeRow): void {
    if (row.at === undefined) this.#lacking.time++;
    else {
      this.#firstAt = Math.min(this.#firstAt, row.at);
      this.#lastAt = Math.max(this.#lastAt, row.at);
      this.#countMinute(row.at, row.status);
    }
    if (row.status === 'skipped') {
      this.#skips.set(row.reason ?? 'unknown', (this.#skips.get(row.reason ?? 'unknown') ?? 0) + 1);
      return;
    }
    this.#bytesFetched += row.bytesFetched ?? 0;
    const host = row.host ?? hostOf(row.url);
    if (host !== undefined) {
      const counts = this.#hosts.get(host) ?? { rows: 0, failed: 0 };
      counts.rows++;
      if (row.status === 'failed') counts.failed++;
      this.#hosts.set(host, counts);
    }
    if (row.status === 'failed') {
      this.#failed++;
      const reason = row.reason ?? 'unknown';
      const group = this.#failures.get(reason) ?? { count: 0, examples: [] };
      group.count++;
      if (group.examples.length < EXAMPLES_PER_REASON) group.examples.push({ id: row.id, url: row.url ?? '', detail: row.detail ?? '' });
      this.#failures.set(reason, group);
      if (row.url === undefined) this.#lacking.failureUrl++;
      return;
    }
    this.#saved++;
    this.#bytesWritten += row.bytesWritten ?? 0;
    if (row.captionSource === 'fallback') this.#captions.fromFallback++;
    else if (row.captionSource === undefined) this.#captions.sourceUnknown++;
    if (this.#setup.storedRows) return;
    // No sink record: the state's own record of each saved sample is all there is.
    if (row.width && row.height) this.#image(row.width, row.height, row.originalWidth, row.originalHeight);
    if (row.captionWords !== undefined) {
      this.#captionWords.add(row.captionWords);
      this.#captions.counted++;
    }
  }

  /** A stored sample as the sink recorded it: its image and caption. */
  stored(row: StoredRow): void {
    this.#image(row.width, row.height, row.originalWidth, row.originalHeight);
    this.#captions.counted++;
    if (row.caption === null || row.caption === '') this.#captions.missing++;
    else this.#captionWords.add(words(row.caption));
  }

  #image(width: number, height: number, originalWidth: number | undefined, originalHeight: number | undefined): void {
    this.#shorter.add(Math.min(width, height));
    this.#longer.add(Math.max(width, height));
    if (originalWidth && originalHeight) this.#megapixels.add((originalWidth * originalHeight) / 1e6);
    else this.#lacking.originalSize++;
    const { key, aspect } = bucketOf(width, height, this.#setup.buckets);
    const bucket = this.#buckets.get(key) ?? { aspect, count: 0 };
    bucket.count++;
    this.#buckets.set(key, bucket);
  }

  #countMinute(at: number, status: OutcomeRow['status']): void {
    if (status === 'skipped') return;
    const minute = Math.floor(at / MINUTE_MS);
    const counts = this.#minutes.get(minute) ?? { saved: 0, failed: 0 };
    counts[status]++;
    this.#minutes.set(minute, counts);
  }

  /**
   * The report's data. `slowDowns` are the hosts' 429 and 503 answers (undefined when the
   * state did not record them); `missing` says what else the output lacks; `runSeconds`,
   * how long the runs ran in all (their gaps left out), when known.
   */
  finish(extra: { readonly thumbnails: readonly Thumbnail[]; readonly slowDowns?: ReadonlyMap<string, number>; readonly missing: readonly string[]; readonly runSeconds?: number }): ReportData {
    const skipped = [...this.#skips.values()].reduce((sum, count) => sum + count, 0);
    const rows = this.#saved + this.#failed + skipped;
    const timed = this.#firstAt <= this.#lastAt;
    const seconds = extra.runSeconds ?? (timed ? Math.max(1, (this.#lastAt - this.#firstAt) / 1000) : undefined);
    return {
      title: this.#setup.title,
      generatedAt: new Date().toISOString(),
      sink: this.#setup.sink,
      missing: [...extra.missing, ...this.#missing(extra.slowDowns === undefined)],
      totals: {
        rows,
        saved: this.#saved,
        failed: this.#failed,
        skipped,
        bytesFetched: this.#bytesFetched,
        bytesWritten: this.#bytesWritten,
        ...(timed ? { startedAt: new Date(this.#firstAt).toISOString(), endedAt: new Date(this.#lastAt).toISOString() } : {}),
        ...(seconds ? { rowsPerSecond: rows / seconds } : {}),
      },
      failures: [...this.#failures].map(([reason, { count, examples }]) => ({ reason, count, examples })).sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason)),
      skips: [...this.#skips].map(([reason, count]): SkipGroup => ({ reason, count })).sort((a, b) => b.count - a.count),
      timeline: this.#timeline(),
      hosts: {
        count: this.#hosts.size,
        busiest: [...this.#hosts]
          .sort(([, a], [, b]) => b.rows - a.rows)
          .slice(0, HOSTS_SHOWN)
          .map(([host, { rows: hostRows, failed }]): HostRow => ({ host, rows: hostRows, failed, ...(extra.slowDowns ? { slowDowns: extra.slowDowns.get(host) ?? 0 } : {}) })),
      },
      images: {
        storedSides: { shorter: this.#shorter.bins(), longer: this.#longer.bins() },
        originalMegapixels: this.#megapixels.bins(),
        buckets: [...this.#buckets]
          .map(([label, { aspect, count }]): AspectBucket => ({ label, aspect, count, belowBatch: count < this.#setup.batchSize }))
          .sort((a, b) => a.aspect - b.aspect),
        batchSize: this.#setup.batchSize,
        bucketRule: BUCKET_RULE,
        resolutionNote: this.#setup.resolutionNote,
      },
      captions: {
        words: this.#captionWords.bins(),
        fromFallback: this.#captions.fromFallback,
        missing: this.#captions.missing,
        total: this.#captions.counted,
      },
      thumbnails: extra.thumbnails,
    };
  }

  /** Points from the first outcome to the last, every minute or hour, empty ones included (a stall shows). */
  #timeline(): ReportData['timeline'] {
    if (this.#minutes.size === 0) return { unit: 'minute', points: [] };
    let first = Infinity;
    let last = -Infinity;
    for (const minute of this.#minutes.keys()) {
      first = Math.min(first, minute);
      last = Math.max(last, minute);
    }
    const perHour = last - first > MINUTES_SPAN;
    const step = perHour ? 60 : 1;
    const start = perHour ? first - (first % 60) : first;
    const points: TimelinePoint[] = [];
    for (let at = start; at <= last; at += step) {
      let saved = 0;
      let failed = 0;
      for (let minute = at; minute < at + step; minute++) {
        const counts = this.#minutes.get(minute);
        if (counts) {
          saved += counts.saved;
          failed += counts.failed;
        }
      }
      points.push({ at: new Date(at * MINUTE_MS).toISOString(), saved, failed });
    }
    return { unit: perHour ? 'hour' : 'minute', points };
  }

  #missing(noSlowDowns: boolean): string[] {
    const missing: string[] = [];
    if (this.#lacking.time > 0) missing.push(`when ${this.#lacking.time} outcomes happened`);
    if (this.#lacking.failureUrl > 0) missing.push(`the URL and detail of ${this.#lacking.failureUrl} failures: they were recorded before this version kept them`);
    if (this.#captions.sourceUnknown > 0) missing.push(`which column the caption of ${this.#captions.sourceUnknown} saved samples came from: recorded before this version kept it`);
    if (this.#lacking.originalSize > 0) missing.push(`the original size of ${this.#lacking.originalSize} stored images`);
    if (noSlowDowns) missing.push("the hosts' 429 and 503 answers: this output's state did not record them");
    return missing;
  }
}

/** The rule in words, for the page (buckets.ts has it in code, with the file and lines). */
const BUCKET_RULE =
  "SimpleTuner's parquet backend (bghira/SimpleTuner at bc8e6ab, simpletuner/helpers/image_manipulation/training_sample.py:587-650) rounds width/height to 2 decimals, " +
  'sizes the image to its resolution with sides snapped to a multiple of 64, and names the bucket by the rounded aspect of that size. ' +
  'A bucket with fewer images than a batch is dropped when minimum_image_size is set, and with several GPUs or gradient accumulation training refuses to start (metadata/backends/base.py:741-955, 1083-1110).';

/** The host of a URL, without parsing it whole (567k of them): `https://host:port/...` -> `host:port`. */
export function hostOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const match = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?([^/?#]+)/i.exec(url);
  return match ? match[1]!.toLowerCase() : undefined;
}
