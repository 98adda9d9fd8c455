/**
 * The `dir` sink: a flat folder of `{id}.{ext}` images with `{id}.txt` captions, the
 * layout SimpleTuner and the reference downloader use. Both files go through a temporary
 * name and a rename; the caption is renamed first, so an image on disk always has its
 * caption beside it.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { extensionOf } from '../image/encode.js';
import type { Sink, SinkFactory } from './contract.js';
import { removeStaleTemporaryFiles, writeFilesAtomically } from '../util/atomic-file.js';

const ORIGINAL_EXTENSIONS = ['jpg', 'png', 'webp', 'gif', 'tif', 'avif', 'heif'];

export const createDirSink: SinkFactory = async ({ output, format, log }): Promise<Sink> => {
  const removed = await removeStaleTemporaryFiles(output);
  if (removed > 0) log(`removed ${removed} temporary file(s) left by an earlier run`);
  const exists = (name: string) => access(join(output, name)).then(() => true, () => false);
  return {
    async has(id) {
      // An original keeps its own format, so any image extension will do then.
      const images = format === 'original' ? ORIGINAL_EXTENSIONS.map((extension) => `${id}.${extension}`) : [`${id}.${extensionOf(format)}`];
      const [caption, ...found] = await Promise.all([exists(`${id}.txt`), ...images.map(exists)]);
      return caption === true && found.includes(true);
    },
    // Writes are small and independent; a few at once keep the disk busy.
    concurrency: 8,
    async write(sample) {
      const bytesWritten = await writeFilesAtomically(output, [
        [`${sample.id}.txt`, sample.caption],
        [`${sample.id}.${sample.extension}`, sample.image],
      ]);
      return { bytesWritten };
    },
    async close() {},
  };
};
