/**
 * What the HTML report shows, already counted: the input of `renderReport`.
 *
 * A dataset can have 567,597 rows; this object never holds them. Everything in it is an
 * aggregate with a size that does not grow with the dataset (histograms as bins, one
 * point per minute or hour, the busiest hosts, three examples per failure reason, a
 * contact sheet of a fixed number of thumbnails), so the gathering side can fold rows
 * into it one at a time and the page stays a few hundred kilobytes.
 *
 * Every string that comes from the dataset (ids, URLs, captions, hosts, details, reasons)
 * is plain text here, never markup: the renderer escapes all of it.
 */

/** One bar of a histogram: `count` values `v` with `from <= v < to` (the last bin includes `to`). */
export interface Bin {
  readonly from: number;
  readonly to: number;
  readonly count: number;
}

export interface ReportData {
  /** What the report is about, as the user named it: the output folder. */
  readonly title: string;
  /** When the report was made (ISO 8601). */
  readonly generatedAt: string;
  /** The sink that wrote the output: 'dir', 'webdataset', 'parquet', or a custom module's name. */
  readonly sink: string;
  /**
   * Things the output did not record, so the page cannot show them, each a sentence
   * said on the page as it is given, e.g. "when each outcome happened: this output was
   * written before it was recorded".
   */
  readonly missing: readonly string[];
  readonly totals: ReportTotals;
  /** Failed rows by reason, most first. */
  readonly failures: readonly FailureGroup[];
  /** Rows skipped (on resume), by reason, most first. */
  readonly skips: readonly SkipGroup[];
  readonly timeline: Timeline;
  readonly hosts: HostSummary;
  readonly images: ImageSummary;
  readonly captions: CaptionSummary;
  /** A contact sheet: a sample of the stored images, in the order to show them. */
  readonly thumbnails: readonly Thumbnail[];
}

export interface ReportTotals {
  /** Rows with an outcome: saved + failed + skipped. */
  readonly rows: number;
  readonly saved: number;
  readonly failed: number;
  readonly skipped: number;
  readonly bytesFetched: number;
  readonly bytesWritten: number;
  /** The first and last outcome (ISO 8601), when the state recorded them. */
  readonly startedAt?: string;
  readonly endedAt?: string;
  /** Rows with an outcome per second of running time, when it is known. */
  readonly rowsPerSecond?: number;
}

export interface FailureGroup {
  /** The stable failure code (`FailureReason`: `decode_error`, `http_404`, ...). */
  readonly reason: string;
  readonly count: number;
  /** Up to three failed rows of this reason, as examples. */
  readonly examples: readonly FailureExample[];
}

export interface FailureExample {
  readonly id: string;
  readonly url: string;
  /** The one-line message recorded with the failure. */
  readonly detail: string;
}

export interface SkipGroup {
  readonly reason: string;
  readonly count: number;
}

export interface Timeline {
  /** The width of one point. */
  readonly unit: 'minute' | 'hour';
  /** One point per minute or hour that had an outcome, oldest first; `at` is its start (ISO 8601). */
  readonly points: readonly TimelinePoint[];
}

export interface TimelinePoint {
  readonly at: string;
  readonly saved: number;
  readonly failed: number;
}

export interface HostSummary {
  /** How many hosts the rows came from, all of them. */
  readonly count: number;
  /** The busiest hosts, most rows first (a page shows a few dozen at most). */
  readonly busiest: readonly HostRow[];
}

export interface HostRow {
  readonly host: string;
  /** Rows fetched from (or failed at) the host. */
  readonly rows: number;
  readonly failed: number;
  /** 429 and 503 answers from the host, when recorded. */
  readonly slowDowns?: number;
}

export interface ImageSummary {
  /** The stored images' shorter and longer sides, in pixels. */
  readonly storedSides: { readonly shorter: readonly Bin[]; readonly longer: readonly Bin[] };
  /** The originals' size (width × height of what was fetched, or of what the input declares), in megapixels. */
  readonly originalMegapixels: readonly Bin[];
  /** The aspect-ratio buckets the stored images fall in, as SimpleTuner will bucket them, narrowest first. */
  readonly buckets: readonly AspectBucket[];
  /** The batch size the buckets are checked against. */
  readonly batchSize: number;
  /** One or two sentences: how SimpleTuner buckets, citing its rule, and what happens to a bucket below the batch size. */
  readonly bucketRule: string;
  /** A note on the resolution the buckets assume (e.g. "SimpleTuner's `resolution` 1024, `resolution_type` pixel"). */
  readonly resolutionNote?: string;
}

export interface AspectBucket {
  /** How SimpleTuner names the bucket: an aspect ("1.62") or a size ("1664x1024"). */
  readonly label: string;
  /** Width / height, for ordering. */
  readonly aspect: number;
  readonly count: number;
  /** Fewer images than the batch size: SimpleTuner will not train on them as they are. */
  readonly belowBatch: boolean;
}

export interface CaptionSummary {
  /** Words per caption, over the saved samples. */
  readonly words: readonly Bin[];
  /** Captions taken from the fallback column because the caption column was empty. */
  readonly fromFallback: number;
  /** Saved samples without a caption. */
  readonly missing: number;
  /** Saved samples counted. */
  readonly total: number;
}

export interface Thumbnail {
  readonly id: string;
  readonly caption: string;
  /** The image itself, a `data:image/...;base64,` URI (see `thumbnailDataUri`). */
  readonly src: string;
  /**
   * The stored file, as a path relative to the report's folder with `/` between folders,
   * when the sink stores one file per image; the page links the thumbnail to it.
   */
  readonly href?: string;
  readonly width: number;
  readonly height: number;
}
