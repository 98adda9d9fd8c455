/**
 * The `dir` sink: a SimpleTuner-ready flat folder.
 *
 * - `{id}.{ext}` images with `{id}.txt` captions (the reference downloader's layout). Both
 *   go through a temporary name and a rename; the caption is renamed first, so an image on
 *   disk always has its caption beside it.
 * - `metadata.parquet`: one row per stored sample (filename, caption, stored width and
 *   height, original size, sha256, url), rewritten at the end of every run from the
 *   sink's index, row group by row group, so it covers every saved sample of every run
 *   exactly once.
 * - `simpletuner-dataloader.json`: a dataloader entry that points SimpleTuner at it.
 */
import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { extensionOf } from '../image/encode.js';
import { removeStaleTemporaryFiles, writeFilesAtomically } from '../util/atomic-file.js';
import type { Sink, SinkFactory } from './contract.js';
import { METADATA_COLUMNS, describeSample, metadataRow } from './metadata.js';
import { ParquetStreamWriter } from './parquet-stream.js';
import { SampleIndex } from './sample-index.js';

const ORIGINAL_EXTENSIONS = ['jpg', 'png', 'webp', 'gif', 'tif', 'avif', 'heif'];
const METADATA_ROW_GROUP = 10_000;

export const createDirSink: SinkFactory = async ({ output, format, log }): Promise<Sink> => {
  const removed = await removeStaleTemporaryFiles(output);
  if (removed > 0) log(`removed ${removed} temporary file(s) left by an earlier run`);
  const index = new SampleIndex(output, 'dir');
  const exists = (name: string) => access(join(output, name)).then(() => true, () => false);
  return {
    // Writes are small and independent; a few at once keep the disk busy.
    concurrency: 8,
    async has(id) {
      if (!index.has(id)) return false;
      // An original keeps its own format, so any image extension will do then.
      const images = format === 'original' ? ORIGINAL_EXTENSIONS.map((extension) => `${id}.${extension}`) : [`${id}.${extensionOf(format)}`];
      const [caption, ...found] = await Promise.all([exists(`${id}.txt`), ...images.map(exists)]);
      return caption === true && found.includes(true);
    },
    async write(sample) {
      const bytesWritten = await writeFilesAtomically(output, [
        [`${sample.id}.txt`, sample.caption],
        [`${sample.id}.${sample.extension}`, sample.image],
      ]);
      index.put(describeSample(sample, null), true);
      return { bytesWritten };
    },
    async close() {
      try {
        const metadata = new ParquetStreamWriter(join(output, 'metadata.parquet'), METADATA_COLUMNS, METADATA_ROW_GROUP);
        try {
          for (const sample of index.committed()) await metadata.append(metadataRow(sample));
          await metadata.close();
        } catch (error) {
          await metadata.abort();
          throw error;
        }
        await writeFilesAtomically(output, [['simpletuner-dataloader.json', `${JSON.stringify(dataloaderEntry(output), null, 2)}\n`]]);
      } finally {
        index.close();
      }
    },
  };
};

/** A SimpleTuner dataloader entry for this folder, with the parquet metadata backend. */
function dataloaderEntry(output: string): Record<string, unknown> {
  const folder = resolve(output);
  return {
    id: 'photo-concept-pipeline',
    type: 'local',
    instance_data_dir: folder,
    caption_strategy: 'parquet',
    metadata_backend: 'parquet',
    parquet: {
      path: join(folder, 'metadata.parquet'),
      filename_column: 'filename',
      caption_column: 'caption',
      fallback_caption_column: null,
      identifier_includes_extension: true,
      width_column: 'width',
      height_column: 'height',
    },
  };
}
