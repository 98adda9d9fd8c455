/** The per-sample metadata every built-in sink records, and its Parquet columns. */
import type { Sample } from './contract.js';
import type { IndexedSample } from './sample-index.js';
import type { ColumnType, ParquetRow } from './parquet-stream.js';
import { keptValue, keptValues, type KeptColumn } from '../sources/kept-columns.js';

/**
 * @param kept the input columns the run keeps (`--keep-columns`), stored with the sample
 * @param key the name a shard stores the sample under (absent: the dir sink, which names files by id)
 */
export function describeSample(sample: Sample, shard: number | null, kept: readonly KeptColumn[] = [], key: string | null = null): IndexedSample {
  return {
    id: sample.id,
    key,
    filename: `${key ?? sample.id}.${sample.extension}`,
    caption: sample.caption,
    width: sample.width,
    height: sample.height,
    original_width: sample.originalWidth,
    original_height: sample.originalHeight,
    sha256: sample.sha256,
    original_sha256: sample.originalSha256,
    url: sample.url,
    caption_source: sample.captionSource,
    shard,
    extra: keptValues(sample.row, kept),
  };
}

/**
 * metadata.parquet columns. `filename` is text with the extension: SimpleTuner's parquet
 * backend looks files up by name as text, so integer ids would not match. `width` and
 * `height` are the stored file's (SimpleTuner trusts them instead of opening the image).
 * `caption` is null for a sample stored without one (`--missing-captions keep`);
 * `caption_source` says where each caption came from (`caption`, `fallback`, `none`; null
 * for samples stored before it was recorded). SimpleTuner reads only the columns its
 * config names, so the extra column changes nothing for it (metadata/backends/parquet.py
 * `_extract_captions_to_fast_list`; image models name no `caption_field_preferences`).
 */
export const METADATA_COLUMNS: ReadonlyArray<readonly [string, ColumnType]> = [
  ['filename', 'utf8'],
  ['caption', 'utf8'],
  ['width', 'int32'],
  ['height', 'int32'],
  ['original_width', 'int32'],
  ['original_height', 'int32'],
  ['sha256', 'utf8'],
  ['original_sha256', 'utf8'],
  ['url', 'utf8'],
  ['caption_source', 'utf8'],
];

/** The metadata columns, then the kept input columns. */
export function metadataColumns(kept: readonly KeptColumn[]): ReadonlyArray<readonly [string, ColumnType]> {
  return [...METADATA_COLUMNS, ...kept.map(({ name, type }) => [name, type] as const)];
}

/** Names a kept column cannot have: metadata.parquet has them already. */
export const RESERVED_COLUMNS: ReadonlySet<string> = new Set([...METADATA_COLUMNS.map(([name]) => name), 'key', 'format', 'image']);

export function metadataRow(sample: IndexedSample, kept: readonly KeptColumn[] = []): ParquetRow {
  const { filename, caption, caption_source, width, height, original_width, original_height, sha256, original_sha256, url } = sample;
  const row: ParquetRow = { filename, caption, caption_source, width, height, original_width, original_height, sha256, original_sha256, url };
  for (const { name, type } of kept) row[name] = keptValue(sample.extra?.[name], type);
  return row;
}
