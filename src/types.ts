/**
 * The items that flow through the pipeline, one per input row.
 *
 * Each stage turns one kind into the next (row -> fetched -> sample -> saved) or into a
 * `failed` item, and passes every kind it does not handle through untouched. The last
 * stage records every item, so counts, `--results` and the summary come from one place.
 */
import type { FailureReason, SkipReason } from './reasons.js';

export type { FailureReason, SkipReason };

/** Where a row came from: its 1-based line (NDJSON), record (CSV) or row (Parquet) number. */
export interface RowRef {
  /** 1-based position in the input: NDJSON line, CSV record, Parquet row. */
  readonly index: number;
  /** The row's id as text, when it had one. */
  readonly id?: string;
  readonly url?: string;
  /** The input file it came from, when a run reads several. */
  readonly source?: string;
}

/** A valid input row, normalised from any input format. */
export interface Row extends RowRef {
  readonly id: string;
  readonly url: string;
  /**
   * The caption, or the fallback caption when the caption was null or blank; never empty.
   * Null only when neither has text and the run keeps such rows (`--missing-captions keep`).
   */
  readonly caption: string | null;
  /** Where `caption` came from: the caption column, the fallback column, or neither (null caption). */
  readonly captionSource: CaptionSource;
  /** Original size as declared by the input, when it has width and height columns. */
  readonly width?: number;
  readonly height?: number;
  /** Every column of the source row, as read (BigInt values converted to strings). */
  readonly columns: Readonly<Record<string, unknown>>;
  /** The hash the fetched bytes must have, from `--verify-hash-column` (in the `--hash` algorithm). */
  readonly expectedHash?: ExpectedHash;
}

/** The digests `--verify-hash-column` can hold: img2dataset's `verify_hash` takes the same three. */
export type HashAlgorithm = 'md5' | 'sha256' | 'sha512';
export const HASH_ALGORITHMS: readonly HashAlgorithm[] = ['md5', 'sha256', 'sha512'];

/**
 * A hash the fetched bytes must have. The algorithm rides with the value, so whatever
 * fetches the row (a run, or a queue worker that never saw the flag) hashes with the
 * algorithm the input's column was written in.
 */
export interface ExpectedHash {
  readonly algorithm: HashAlgorithm;
  /** Lower-case hex. */
  readonly hex: string;
}

export type CaptionSource = 'caption' | 'fallback' | 'none';

/**
 * A row not processed because the state says it needs nothing: resume, or `--dedupe`.
 * A row skipped only after its fetch (`duplicate_content`) says what the fetch cost.
 */
export interface Skipped {
  readonly kind: 'skipped';
  readonly row: Row;
  readonly reason: SkipReason;
  readonly attempts?: number;
  readonly bytesFetched?: number;
  /** sha256 of the fetched bytes, when the row was fetched before it was skipped. */
  readonly originalSha256?: string;
}

export interface Failed {
  readonly kind: 'failed';
  readonly row: RowRef;
  readonly reason: FailureReason;
  /** A human-readable explanation naming what went wrong. */
  readonly detail: string;
  /** Requests made for this row (0 when it failed before fetching). */
  readonly attempts: number;
  readonly bytesFetched: number;
}

export interface Pending {
  readonly kind: 'row';
  readonly row: Row;
}

export interface Fetched {
  readonly kind: 'fetched';
  readonly row: Row;
  /**
   * The fetched bytes, in memory of their own that nothing else holds: the image stage
   * moves it to an image thread, which hands it back to the main thread to be freed once
   * the image is encoded (image/pool.ts, util/thread-pool.ts).
   */
  readonly body: Buffer;
  readonly attempts: number;
  readonly bytesFetched: number;
  /** The original's size, when the CDN was asked for a scaled copy (`--cdn-resize`). */
  readonly originalSize?: { readonly width: number; readonly height: number };
}

/** Formats the pipeline encodes to. */
export type ImageFormat = 'png' | 'jpeg' | 'webp';
/** Formats a stored image can have: an encoded one, or an original kept as fetched. */
export type StoredFormat = ImageFormat | 'gif' | 'tiff' | 'avif' | 'heif';

/** A decoded, resized and encoded image, ready for a sink. */
export interface Encoded {
  readonly kind: 'encoded';
  readonly row: Row;
  readonly image: Buffer;
  /** sha256 of `image`, and of the fetched bytes it was made from. */
  readonly sha256: string;
  readonly originalSha256: string;
  readonly format: StoredFormat;
  readonly width: number;
  readonly height: number;
  readonly originalWidth: number;
  readonly originalHeight: number;
  readonly attempts: number;
  readonly bytesFetched: number;
}

export interface Saved {
  readonly kind: 'saved';
  readonly row: Row;
  readonly width: number;
  readonly height: number;
  /** The fetched image's size, after EXIF orientation. */
  readonly originalWidth: number;
  readonly originalHeight: number;
  /** Bytes the sink wrote for this sample. */
  readonly bytesWritten: number;
  /** sha256 of the stored image, and of the fetched bytes. */
  readonly sha256: string;
  readonly originalSha256: string;
  readonly bytesFetched: number;
  readonly attempts: number;
}

export type Item = Pending | Fetched | Encoded | Saved | Failed | Skipped;
export type Outcome = Saved | Failed | Skipped;

export function failed(
  row: RowRef,
  reason: FailureReason,
  detail: string,
  counts: { attempts?: number; bytesFetched?: number } = {},
): Failed {
  return {
    kind: 'failed',
    row,
    reason,
    detail,
    attempts: counts.attempts ?? 0,
    bytesFetched: counts.bytesFetched ?? 0,
  };
}
