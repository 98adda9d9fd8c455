/**
 * `--layout img2dataset`: what img2dataset's writers put in a shard, so that tools written
 * for its output read ours. Everything here follows img2dataset at commit 95523bc
 * (github.com/rom1504/img2dataset, files cited as path:line at that commit):
 *
 * - Shard names `{shard:05d}`: `"{shard_id:0{oom_shard_count}d}"` with `oom_shard_count`
 *   5 by default (writer.py:70-72, 107-109; main.py:97), a minimum width, as ours.
 * - Sample keys: the shard number and the sample's position in the shard,
 *   `10**oom_sample_per_shard * shard_id + index` printed with `oom_sample_per_shard + 5`
 *   digits, `oom_sample_per_shard = ceil(log10(number_sample_per_shard))`
 *   (downloader.py:88-94, 223). That is the shard's name followed by the position in
 *   `oom_sample_per_shard` digits: `00003` and 42 with 10,000 per shard give `000030042`.
 *   Queue workers name shards after their job (`rows-000000001-000001000-00`): the same
 *   rule then gives `rows-000000001-000001000-00042`, unique across workers too.
 * - The metadata of a sample (the `.json` member and a row of the per-shard `.parquet`):
 *   the kept input columns (its `save_additional_columns`), `caption`, `url`, then `key`,
 *   `status`, `error_message`, `width`, `height`, `original_width`, `original_height`,
 *   `exif`, `sha256` (downloader.py:168-182 for the columns, 239-258 and 338-346 for the
 *   values; reader.py:68-77 for the order of the input columns).
 *
 * Where ours differs, and why:
 * - img2dataset's key position is the row's place in its input slice, so failed rows
 *   leave gaps; ours is the place in the shard as written, so keys are contiguous.
 * - Its per-shard `.parquet` holds failed rows too. A sink here is given only the samples
 *   it stores, and a failed sample may be fetched again by a later run (resume retries
 *   transient failures): it would then be in two shards' metadata, once failed and once
 *   stored. Failures are in `--results` and the resume state instead.
 * - `exif` is always null (img2dataset also writes null when it cannot read it,
 *   downloader.py:324-336): its value is exifread's rendering of the tags
 *   (`{"Image Make": "Canon", ...}`), which only a port of exifread's tag tables would
 *   reproduce, and the sink is not given the fetched bytes the tags are in.
 * - `original_width`/`original_height` are after EXIF orientation; img2dataset decodes
 *   with cv2.IMREAD_UNCHANGED, which ignores it (resizer.py:151, 160).
 */
import type { KeptColumn } from '../sources/kept-columns.js';
import { keptValue } from '../sources/kept-columns.js';
import type { ColumnType, ParquetRow } from './parquet-stream.js';
import type { IndexedSample } from './sample-index.js';

/** The digits of a sample's position in a key: ceil(log10(samples per shard)) (downloader.py:223). */
export function positionDigits(samplesPerShard: number): number {
  // Counted in integers: the same as the float log10 for every size allowed here.
  let digits = 0;
  while (10 ** digits < samplesPerShard) digits++;
  return digits;
}

/** The key of the sample at `position` (from 0) in the shard named `shardName`. */
export function sampleKey(shardName: string, position: number, samplesPerShard: number): string {
  const digits = positionDigits(samplesPerShard);
  // One sample per shard: log10(1) is 0 and the key is the shard's name alone.
  return digits === 0 ? shardName : `${shardName}${String(position).padStart(digits, '0')}`;
}

/**
 * img2dataset's own fields of a stored sample, in its order (after the input columns).
 * `sha256` is its default `compute_hash` (main.py:98), over the bytes fetched, before any
 * re-encode (downloader.py:338-340).
 */
function ownFields(sample: IndexedSample): ParquetRow {
  return {
    caption: sample.caption,
    url: sample.url,
    key: sample.key,
    status: 'success',
    error_message: null,
    width: sample.width,
    height: sample.height,
    original_width: sample.original_width,
    original_height: sample.original_height,
    exif: null,
    sha256: sample.original_sha256,
  };
}

const OWN_COLUMNS: ReadonlyArray<readonly [string, ColumnType]> = [
  ['caption', 'utf8'],
  ['url', 'utf8'],
  ['key', 'utf8'],
  ['status', 'utf8'],
  ['error_message', 'utf8'],
  ['width', 'int32'],
  ['height', 'int32'],
  ['original_width', 'int32'],
  ['original_height', 'int32'],
  ['exif', 'utf8'],
  ['sha256', 'utf8'],
];

/** The per-shard `.parquet` columns: the kept input columns with their types, then img2dataset's. */
export function metadataColumns(kept: readonly KeptColumn[]): ReadonlyArray<readonly [string, ColumnType]> {
  return [...kept.map(({ name, type }) => [name, type] as const), ...OWN_COLUMNS];
}

/** A row of the per-shard `.parquet` (and of the Parquet shards, beside the image). */
export function metadataRow(sample: IndexedSample, kept: readonly KeptColumn[]): ParquetRow {
  const row: ParquetRow = {};
  for (const { name, type } of kept) row[name] = keptValue(sample.extra?.[name], type);
  return Object.assign(row, ownFields(sample));
}

/**
 * The `.json` member: `json.dumps(meta, indent=4)` (writer.py:128), so Python's layout: four
 * spaces, `": "`, no final newline, and every character outside printable ASCII as a
 * `\uXXXX` escape (`ensure_ascii`). Kept values are as the input had them.
 */
export function sampleJson(sample: IndexedSample): string {
  return pythonJson({ ...sample.extra, ...ownFields(sample) });
}

/** `json.dumps(value, indent=4)` of Python: JSON.stringify's layout, with ensure_ascii's escapes. */
export function pythonJson(value: unknown): string {
  // Without the u flag the pattern sees UTF-16 units, so a character beyond the BMP comes
  // out as its two surrogates, as Python writes it. Control characters are escaped already.
  return JSON.stringify(value, null, 4).replace(/[\u007f-\uffff]/g, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** What `{shard}_stats.json` is written from. */
export interface ShardRecord {
  /** Samples in the shard. */
  readonly samples: number;
  /** When the shard was opened and completed, ms since the epoch. */
  readonly startedAt: number;
  readonly completedAt: number;
}

/**
 * `{shard}_stats.json` with img2dataset's fields and order (logger.py:162-191). Its
 * `count` is the shard's rows, failed ones included; a shard here holds only stored
 * samples, so `count` equals `successes` and the failure counts are 0 for its rows.
 */
export function shardStats({ samples, startedAt, completedAt }: ShardRecord): string {
  return JSON.stringify(
    {
      count: samples,
      successes: samples,
      failed_to_download: 0,
      failed_to_resize: 0,
      duration: (completedAt - startedAt) / 1000,
      start_time: startedAt / 1000,
      end_time: completedAt / 1000,
      status_dict: { success: samples },
    },
    null,
    4,
  );
}

/**
 * The input columns `--keep-columns` cannot carry: img2dataset's reserved names
 * (main.py:45-70), and the Parquet shards' image columns (writer.py:69).
 */
export const RESERVED_COLUMNS: ReadonlySet<string> = new Set([
  'key', 'caption', 'url', 'width', 'height', 'original_width', 'original_height', 'status', 'error_message', 'exif', 'md5', 'sha256', 'sha512',
  'jpg', 'png', 'webp',
]);
