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

export const createDirSink: SinkFactory = async ({ output, format, log }): Promise<Sink> => {
  const removed = await removeStaleTemporaryFiles(output);
  if (removed > 0) log(`removed ${removed} temporary file(s) left by an earlier run`);
  const extension = extensionOf(format);
  return {
    async has(id) {
      const present = await Promise.all([`${id}.${extension}`, `${id}.txt`].map((name) => access(join(output, name)).then(() => true, () => false)));
      return present.every(Boolean);
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
