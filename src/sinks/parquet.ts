/**
 * The `parquet` sink: shards `{shard:05d}.parquet` of `--samples-per-shard` samples with
 * the metadata columns and the image bytes, loadable with
 * `datasets.load_dataset("parquet", data_files=...)`.
 *
 * - `native` layout: `key` (the id), our metadata columns and kept input columns,
 *   `format`, and the image in a binary `image` column.
 * - `img2dataset` layout: img2dataset's `output_format=parquet` columns, its metadata
 *   columns (img2dataset.ts) then the image in a binary column named after the format,
 *   `jpg`, `png` or `webp` (img2dataset writer.py:69). Its writer drops the caption it
 *   builds as `txt` (only the schema's names are copied, writer.py:28-31, 77-88), so the
 *   caption is in `caption` alone, as here.
 *
 * Row groups hold 16 images in both (img2dataset buffers 100 rows, writer.py:74): a
 * hundred large PNGs would be hundreds of megabytes held at once, and readers do not
 * depend on the row group size.
 */
import { extensionOf } from '../image/encode.js';
import type { Layout, Sample, SinkFactory } from './contract.js';
import type { KeptColumn } from '../sources/kept-columns.js';
import type { ImageFormat } from '../types.js';
import * as img2dataset from './img2dataset.js';
import { metadataColumns, metadataRow } from './metadata.js';
import { ParquetStreamWriter, type ColumnType, type ParquetRow } from './parquet-stream.js';
import type { IndexedSample } from './sample-index.js';
import { createShardedSink, type ShardFormat } from './sharded.js';

/** Images are large: a few per row group keeps memory flat. */
const IMAGES_PER_ROW_GROUP = 16;

interface ShardColumns {
  readonly columns: ReadonlyArray<readonly [string, ColumnType]>;
  row(sample: Sample, described: IndexedSample): ParquetRow;
}

function nativeColumns(kept: readonly KeptColumn[]): ShardColumns {
  return {
    columns: [['key', 'utf8'], ...metadataColumns(kept), ['format', 'utf8'], ['image', 'binary']],
    row: (sample, described) => ({ key: described.key, ...metadataRow(described, kept), format: sample.format, image: sample.image }),
  };
}

/** @param format the one format every image is stored in (`--layout img2dataset` refuses `original` at start) */
function img2datasetColumns(kept: readonly KeptColumn[], format: ImageFormat | 'original'): ShardColumns {
  if (format === 'original') throw new Error('--layout img2dataset needs one image format (jpeg, png or webp), not original');
  const image = extensionOf(format);
  return {
    columns: [...img2dataset.metadataColumns(kept), [image, 'binary']],
    row: (sample, described) => ({ ...img2dataset.metadataRow(described, kept), [image]: sample.image }),
  };
}

export function parquetShards(layout: Layout, kept: readonly KeptColumn[], format: ImageFormat | 'original'): ShardFormat {
  const { columns, row } = layout === 'img2dataset' ? img2datasetColumns(kept, format) : nativeColumns(kept);
  return {
    name: 'parquet',
    extension: 'parquet',
    companions: [],
    open(stem) {
      const writer = new ParquetStreamWriter(`${stem}.parquet`, columns, IMAGES_PER_ROW_GROUP);
      return {
        async append(sample, described) {
          await writer.append(row(sample, described));
          return sample.image.length;
        },
        finish: () => writer.close(),
        abort: () => writer.abort(),
      };
    },
  };
}

export const createParquetSink: SinkFactory = (context) => createShardedSink(context, parquetShards(context.layout ?? 'native', context.keptColumns ?? [], context.format));
