/**
 * The `parquet` sink: shards `{shard:05d}.parquet` of `--samples-per-shard` samples with
 * the metadata columns and the image bytes in a binary `image` column, as img2dataset
 * writes them, loadable with `datasets.load_dataset("parquet", data_files=...)`.
 */
import type { SinkFactory } from './contract.js';
import { METADATA_COLUMNS, metadataRow } from './metadata.js';
import { ParquetStreamWriter } from './parquet-stream.js';
import { createShardedSink, type ShardFormat } from './sharded.js';

/** Images are large: a few per row group keeps memory flat. */
const IMAGES_PER_ROW_GROUP = 16;
const COLUMNS = [['key', 'utf8'], ...METADATA_COLUMNS, ['format', 'utf8'], ['image', 'binary']] as const;

const parquetShards: ShardFormat = {
  name: 'parquet',
  extension: 'parquet',
  open(path) {
    const writer = new ParquetStreamWriter(path, COLUMNS, IMAGES_PER_ROW_GROUP);
    return {
      async append(sample, described) {
        await writer.append({ key: sample.id, ...metadataRow(described), format: sample.format, image: sample.image });
        return sample.image.length;
      },
      finish: () => writer.close(),
      abort: () => writer.abort(),
    };
  },
};

export const createParquetSink: SinkFactory = (context) => createShardedSink(context, parquetShards);
