/**
 * The `dir` sink: a SimpleTuner-ready flat folder.
 *
 * - `{id}.{ext}` images with `{id}.txt` captions (the reference downloader's layout). Both
 *   go through a temporary name and a rename; the caption is renamed first, so an image on
 *   disk always has its caption beside it.
 * - `metadata.parquet`: one row per stored sample (filename, caption, stored width and
 *   height, original size, sha256, url), written from the sink's index, row group by row
 *   group, so it covers every saved sample of every run exactly once.
 * - `simpletuner-dataloader.json`: a complete SimpleTuner dataloader config for it.
 *
 * Both dataset files always cover what is on disk: they are brought up to date when the
 * sink opens (a killed run leaves them behind; nothing is fetched before they are),
 * every `metadataEveryMs` during a run (a folder copied mid-run trains on what it holds),
 * and at close. Each is replaced by a rename, never seen half-written.
 */
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import { extensionOf } from '../image/encode.js';
import type { StoredFormat } from '../types.js';
import { removeStaleTemporaryFiles, writeFilesAtomically } from '../util/atomic-file.js';
import { exists } from '../util/exists.js';
import { SampleRefused, type Sink, type SinkContext, type SinkFactory } from './contract.js';
import { METADATA_COLUMNS, describeSample, metadataRow } from './metadata.js';
import { ParquetStreamWriter } from './parquet-stream.js';
import { SampleIndex, type IndexedSample } from './sample-index.js';
import { DATALOADER_FILE, simpleTunerConfig } from './simpletuner.js';

const ORIGINAL_EXTENSIONS = ['jpg', 'png', 'webp', 'gif', 'tif', 'avif', 'heif'];
const METADATA_ROW_GROUP = 2_000;
export const METADATA_FILE = 'metadata.parquet';

/**
 * Formats SimpleTuner cannot open: it lists files by the extensions Pillow can open, and
 * Pillow reads HEIF only with a plugin SimpleTuner does not install, so a .heif file would
 * be skipped without a word at training time.
 */
const TRAINER_CANNOT_OPEN: ReadonlySet<StoredFormat> = new Set(['heif']);

export const createDirSink: SinkFactory = async (context): Promise<Sink> => {
  const { output, format, log } = context;
  const removed = await removeStaleTemporaryFiles(output);
  if (removed > 0) log(`removed ${removed} temporary file(s) left by an earlier run`);
  const index = new SampleIndex(output, 'dir');
  const datasetFiles = datasetFileWriter(index, context);
  try {
    if (index.metadataStale) {
      log(`bringing ${METADATA_FILE} up to date: an earlier run stopped before writing it`);
      await datasetFiles.refresh();
    }
  } catch (error) {
    index.close();
    throw error;
  }
  const refresher = context.metadataEveryMs > 0 ? setInterval(() => datasetFiles.refreshInBackground(), context.metadataEveryMs).unref() : undefined;

  const isFile = (name: string) => exists(join(output, name));
  return {
    // Writes are small and independent; a few at once keep the disk busy.
    concurrency: 8,
    async has(id) {
      if (!index.has(id)) return false;
      // An original keeps its own format, so any image extension will do then.
      const images = format === 'original' ? ORIGINAL_EXTENSIONS.map((extension) => `${id}.${extension}`) : [`${id}.${extensionOf(format)}`];
      const [caption, ...found] = await Promise.all([isFile(`${id}.txt`), ...images.map(isFile)]);
      return caption === true && found.includes(true);
    },
    async write(sample) {
      if (TRAINER_CANNOT_OPEN.has(sample.format)) {
        throw new SampleRefused(`a ${sample.format} original cannot be opened by SimpleTuner (Pillow has no ${sample.format} reader); store it re-encoded with --format png, jpeg or webp`);
      }
      const bytesWritten = await writeFilesAtomically(output, [
        [`${sample.id}.txt`, sample.caption],
        [`${sample.id}.${sample.extension}`, sample.image],
      ]);
      index.put(describeSample(sample, null), true);
      return { bytesWritten };
    },
    async close() {
      clearInterval(refresher);
      try {
        await datasetFiles.refresh();
      } finally {
        index.close();
      }
    },
  };
};

/**
 * Writes metadata.parquet and the dataloader config from the index, one writer at a
 * time: a refresh asked for while one runs follows it.
 */
function datasetFileWriter(index: SampleIndex, context: SinkContext) {
  let last: Promise<void> = Promise.resolve();
  let running = false;

  const metadataPath = join(context.output, METADATA_FILE);
  const write = async () => {
    running = true;
    try {
      if (index.metadataStale || !(await exists(metadataPath))) await index.refreshMetadata((samples) => writeMetadata(metadataPath, samples));
      // The config is cheap, and a rerun may change what it says (--dataloader-root, --resize).
      // SimpleTuner refuses a metadata file without rows, so there is no config to give it yet.
      const stored = index.storedSizes();
      if (stored) {
        const config = simpleTunerConfig(context.datasetRoot, context.sizeRule, stored);
        await writeFilesAtomically(context.output, [[DATALOADER_FILE, `${JSON.stringify(config, null, 2)}\n`]]);
      }
    } finally {
      running = false;
    }
  };

  return {
    /** Brings both files up to date now (after a refresh already under way); rejects if that fails. */
    refresh(): Promise<void> {
      last = last.catch(() => {}).then(write);
      return last;
    },
    /** The periodic refresh: skipped while one runs or when nothing changed; a failure is only logged (close tries again). */
    refreshInBackground(): void {
      if (running || !index.metadataStale) return;
      this.refresh().catch((error) => context.log(`warning: could not refresh ${METADATA_FILE}: ${errorMessage(error)} (tried again at the end of the run)`));
    },
  };
}

async function writeMetadata(path: string, samples: AsyncIterable<IndexedSample>): Promise<number> {
  const metadata = new ParquetStreamWriter(path, METADATA_COLUMNS, METADATA_ROW_GROUP);
  let rows = 0;
  try {
    for await (const sample of samples) {
      await metadata.append(metadataRow(sample));
      rows++;
    }
    await metadata.close();
  } catch (error) {
    await metadata.abort();
    throw error;
  }
  return rows;
}
