/**
 * The `parquet` sink: shards `{shard:05d}.parquet` of `--samples-per-shard` samples with
 * the metadata columns and the image bytes in a binary `image` column, loadable with
 * `datasets.load_dataset("parquet", data_files=...)`.
 */
import type { SinkFactory } from './contract.js';
import type { KeptColumn } from '../sources/kept-columns.js';
import { metadataColumns, metadataRow } from './metadata.js';
import { ParquetStreamWriter } from './parquet-stream.js';
import { createShardedSink, type ShardFormat } from './sharded.js';

/** Images are large: a few per row group keeps memory flat. */
const IMAGES_PER_ROW_GROUP = 16;

/** The shards' columns: the key, the metadata and kept input columns, the format and the image. */
function parquetShards(kept: readonly KeptColumn[]): ShardFormat {
  const columns = [['key', 'utf8'] as const, ...metadataColumns(kept), ['format', 'utf8'] as const, ['image', 'binary'] as const];
  return {
    name: 'parquet',
    extension: 'parquet',
    open(path) {
      const writer = new ParquetStreamWriter(path, columns, IMAGES_PER_ROW_GROUP);
      return {
        async append(sample, described) {
          await writer.append({ key: sample.id, ...metadataRow(described, kept), format: sample.format, image: sample.image });
          return sample.image.length;
        },
        finish: () => writer.close(),
        abort: () => writer.abort(),
      };
    },
  };
}

export const createParquetSink: SinkFactory = (context) => createShardedSink(context, parquetShards(context.keptColumns ?? []));
