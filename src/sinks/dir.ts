/**
 * The `dir` sink: a SimpleTuner-ready flat folder.
 *
 * - `{id}.{ext}` images with `{id}.txt` captions (the reference downloader's layout). Both
 *   go through a temporary name and a rename; the caption is renamed first, so an image on
 *   disk always has its caption beside it. A sample stored without a caption
 *   (`--missing-captions keep`) has no `.txt`.
 * - `metadata.parquet`: one row per stored sample (filename, caption, stored width and
 *   height, original size, sha256, url, caption source), written from the sink's index,
 *   row group by row group, so it covers every saved sample of every run exactly once.
 * - `simpletuner-dataloader.json`: a complete SimpleTuner dataloader config for it; none
 *   while a stored sample has no caption, since SimpleTuner would refuse the metadata
 *   (see `datasetFileWriter`).
 *
 * Both dataset files always cover what is on disk: they are brought up to date when the
 * sink opens (a killed run leaves them behind; nothing is fetched before they are),
 * during a run (within its first 30 s, then every `metadataEveryMs`: a folder copied
 * mid-run trains on what it holds), and at close. Each is replaced by a rename, never
 * seen half-written.
 */
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError, errorMessage, writeError } from '../errors.js';
import { STATE_DIR } from '../state/store.js';
import type { StoredFormat } from '../types.js';
import { writeFilesAtomically } from '../util/atomic-file.js';
import { createFileWriter } from '../util/file-writer.js';
import { exists } from '../util/exists.js';
import { repeat } from '../util/repeat.js';
import { SampleRefused, type Sample, type SharedOutput, type Sink, type SinkContext, type SinkFactory } from './contract.js';
import type { KeptColumn } from '../sources/kept-columns.js';
import { describeSample, metadataColumns, metadataRow } from './metadata.js';
import { ParquetStreamWriter } from './parquet-stream.js';
import { DirLayout, removeUnrecordedSamples } from './dir-layout.js';
import { SampleIndex, type IndexedSample } from './sample-index.js';
import { DATALOADER_FILE, keptBySimpleTuner, simpleTunerConfig } from './simpletuner.js';

const METADATA_ROW_GROUP = 2_000;
export const METADATA_FILE = 'metadata.parquet';

/**
 * Formats SimpleTuner cannot open: it lists files by the extensions Pillow can open, and
 * Pillow reads HEIF only with a plugin SimpleTuner does not install, so a .heif file would
 * be skipped without a word at training time.
 */
const TRAINER_CANNOT_OPEN: ReadonlySet<StoredFormat> = new Set(['heif']);

export const createDirSink: SinkFactory = async (context): Promise<Sink> => {
  const subfolders = context.subfolders ?? 0;
  const kept = context.keptColumns ?? [];
  const layout = new DirLayout(context.output, subfolders, context.format);
  if (context.shared) return createSharedDirSink(context, context.shared, layout, kept);
  const { output, log } = context;
  const removed = await layout.removeStaleTemporaryFiles();
  if (removed > 0) log(`removed ${removed} temporary file(s) left by an earlier run`);
  const index = new SampleIndex(output, 'dir');
  const datasetFiles = datasetFileWriter(index, context);
  const writer = createFileWriter(WRITER_THREADS);
  try {
    // The folder of a sample follows from --subfolders: another value would not find what is stored.
    const recorded = index.setting('subfolders') ?? (index.holdsSamples() ? '0' : undefined);
    if (recorded !== undefined && recorded !== String(subfolders)) {
      throw new UsageError(`${output} was written with --subfolders ${recorded}; this run asks for ${subfolders}: use the same value (or a new output folder)`);
    }
    index.recordSetting('subfolders', String(subfolders));
    if (index.metadataStale) {
      // An earlier run stopped without its last refresh (killed, or a full disk): it may
      // have renamed a sample's files into place and died before indexing them. Those go
      // (the state does not record them saved either: this run fetches them again), so
      // that the metadata covers every image on disk.
      const orphans = await removeUnrecordedSamples(output, (ids) => ids.map((id) => index.has(id)));
      if (orphans > 0) log(`removed ${orphans} file(s) of samples an earlier run stored but did not record`);
      log(`bringing ${METADATA_FILE} up to date: an earlier run stopped before writing it`);
      await datasetFiles.refresh();
    }
  } catch (error) {
    index.close();
    await writer.close();
    throw error;
  }
  const everyMs = context.metadataEveryMs;
  const stopRefreshing = everyMs > 0 ? repeat(() => datasetFiles.refreshInBackground(), { firstAfterMs: Math.min(FIRST_REFRESH_MS, everyMs), everyMs }) : () => {};

  return {
    concurrency: WRITES_AT_ONCE,
    async has(id) {
      const captioned = index.captioned(id);
      return captioned !== undefined && (await layout.holds(id, captioned));
    },
    async write(sample) {
      refuseUnreadable(sample);
      const bytesWritten = await layout.write(sample, writer);
      index.put(describeStored(sample, layout, kept), true);
      return { bytesWritten };
    },
    async close() {
      stopRefreshing();
      try {
        const { uncaptioned } = await datasetFiles.refresh();
        if (uncaptioned > 0) log(uncaptionedNote(uncaptioned));
      } finally {
        index.close();
        await writer.close();
      }
    },
  };
};

/** What the end of a run says when stored samples lack captions: what SimpleTuner needs first. */
export function uncaptionedNote(uncaptioned: number): string {
  return (
    `note: ${uncaptioned} stored sample(s) have no caption (--missing-captions keep; caption_source "none" in ${METADATA_FILE}): ` +
    `SimpleTuner refuses a ${METADATA_FILE} with a null caption, so no ${DATALOADER_FILE} is written until every sample has one`
  );
}

/**
 * When the first refresh comes, at the latest. A run that lasts days shows its
 * metadata.parquet and trainer config within its first minute, so they can be checked
 * (or a trainer pointed at them) without waiting a whole interval.
 */
const FIRST_REFRESH_MS = 30_000;

/** Writes are small and independent; a few at once keep the disk busy. */
const WRITES_AT_ONCE = 8;
/**
 * Threads writing the samples' files (util/file-writer.ts). Each writes a sample in about a
 * millisecond (the page cache takes it), so two keep up with any image rate of one process
 * and keep a second write going while one waits on the disk.
 */
const WRITER_THREADS = 2;

function refuseUnreadable(sample: Sample): void {
  if (TRAINER_CANNOT_OPEN.has(sample.format)) {
    throw new SampleRefused(`a ${sample.format} original cannot be opened by SimpleTuner (Pillow has no ${sample.format} reader); store it re-encoded with --format png, jpeg or webp`);
  }
}

/** The sample's metadata, its filename the path relative to the output. */
function describeStored(sample: Sample, layout: DirLayout, kept: readonly KeptColumn[]): IndexedSample {
  return { ...describeSample(sample, null, kept), filename: layout.relative(sample.id, sample.extension) };
}

/** Where workers keep the metadata of what each attempt at a job stored, until `finalize`. */
export const METADATA_PARTS_DIR = join(STATE_DIR, 'metadata-parts');

/**
 * The dir sink when queue workers share the output. It keeps no index: the shared state
 * says which samples were saved and the files on disk say they still are. Each attempt at
 * a job appends the metadata of what it stores to its own part file
 * (`.pipeline/metadata-parts/{job}.{attempt}.ndjson`), one line per sample, after the files
 * are in place and before the state records it saved. So a sample recorded saved always
 * has its line; a sample stored twice (its worker died before recording it) has two, and
 * `finalize` keeps one. `finalize` merges the parts into metadata.parquet and the config.
 */
async function createSharedDirSink(context: SinkContext, shared: SharedOutput, layout: DirLayout, kept: readonly KeptColumn[]): Promise<Sink> {
  const folder = join(context.output, METADATA_PARTS_DIR);
  await mkdir(folder, { recursive: true });
  const path = join(folder, `${shared.job}.${shared.attempt}.ndjson`);
  const part = await open(path, 'a').catch((error: unknown) => Promise.reject(writeError(path, error)));
  const writer = createFileWriter(WRITER_THREADS);
  return {
    concurrency: WRITES_AT_ONCE,
    // No index says whether a sample was stored with a caption; the caption is renamed
    // into place before the image, so an image on disk had whatever caption it has written.
    has: (id) => layout.holds(id, false),
    async write(sample) {
      refuseUnreadable(sample);
      const bytesWritten = await layout.write(sample, writer);
      // One write per line, appended (O_APPEND): lines never interleave, and a kill
      // mid-line leaves a broken last line that finalize skips.
      await part.write(`${JSON.stringify(describeStored(sample, layout, kept))}\n`).catch((error: unknown) => Promise.reject(writeError(path, error)));
      return { bytesWritten };
    },
    async close() {
      await Promise.all([part.close(), writer.close()]);
    },
  };
}

/** What a refresh of the dataset files found. */
export interface DatasetFilesState {
  /** Stored samples without a caption: while there are any, there is no dataloader config. */
  readonly uncaptioned: number;
}

/**
 * Writes metadata.parquet and the dataloader config from the index, one writer at a
 * time: a refresh asked for while one runs follows it.
 *
 * SimpleTuner refuses a metadata file whose caption column holds a null or an empty
 * string (data_backend/factory.py `check_column_values`; a `fallback_caption_column` in
 * the config would waive that only to drop those images from training). So while a
 * stored sample has no caption (`--missing-captions keep`) no config is written, and one
 * an earlier refresh wrote is removed: it points at this metadata file, which SimpleTuner
 * would now refuse. The config is back with the first refresh after every sample has one.
 */
export function datasetFileWriter(index: SampleIndex, context: Pick<SinkContext, 'output' | 'datasetRoot' | 'sizeRule' | 'log' | 'keptColumns'>) {
  let last: Promise<DatasetFilesState> = Promise.resolve({ uncaptioned: 0 });
  let running = false;
  let warnedSmaller = 0;

  const metadataPath = join(context.output, METADATA_FILE);
  const configPath = join(context.output, DATALOADER_FILE);
  const write = async (): Promise<DatasetFilesState> => {
    running = true;
    try {
      if (index.metadataStale || !(await exists(metadataPath))) await index.refreshMetadata((samples) => writeMetadata(metadataPath, samples, context.keptColumns ?? []));
      const uncaptioned = index.uncaptioned();
      // The config follows from the settings alone, so a refresh rewrites the same bytes;
      // a rerun may change what it says (--dataloader-root, --resize). SimpleTuner refuses
      // a metadata file without rows, so there is no config to give it before one, and one
      // with an empty caption, so there is none while a stored sample has no caption.
      if (uncaptioned > 0) {
        await rm(configPath, { force: true }).catch((error: unknown) => Promise.reject(writeError(configPath, error)));
      } else if (index.holdsSamples()) {
        const config = simpleTunerConfig(context.datasetRoot, context.sizeRule);
        await writeFilesAtomically(context.output, [[DATALOADER_FILE, `${JSON.stringify(config, null, 2)}\n`]]);
        warnAboutSmallerImages();
      }
      return { uncaptioned };
    } finally {
      running = false;
    }
  };

  /**
   * Images an earlier run stored with other size settings (a smaller --resolution, or
   * --no-upscale) can be under this run's minimum_image_size: SimpleTuner would skip
   * them. Said once per count, not at every refresh.
   */
  const warnAboutSmallerImages = () => {
    const { side, area } = keptBySimpleTuner(context.sizeRule);
    if (side <= 1 && area <= 1) return; // any image passes: no need to count
    const smaller = index.countSmallerThan(side, area);
    if (smaller === 0 || smaller === warnedSmaller) return;
    warnedSmaller = smaller;
    context.log(
      `warning: ${smaller} stored image(s) are smaller than ${DATALOADER_FILE}'s minimum_image_size for this run's size settings (written by a run with other --resize/--resolution/--no-upscale?): SimpleTuner will skip them as too small; lower minimum_image_size in the config to train on them`,
    );
  };

  return {
    /** Brings both files up to date now (after a refresh already under way); rejects if that fails. */
    refresh(): Promise<DatasetFilesState> {
      last = last.catch(() => ({ uncaptioned: 0 })).then(write);
      return last;
    },
    /** The periodic refresh: skipped while one runs or when nothing changed; a failure is only logged (close tries again). */
    refreshInBackground(): void {
      if (running || !index.metadataStale) return;
      this.refresh().catch((error) => context.log(`warning: could not refresh ${METADATA_FILE}: ${errorMessage(error)} (tried again at the end of the run)`));
    },
  };
}

async function writeMetadata(path: string, samples: AsyncIterable<IndexedSample>, kept: readonly KeptColumn[]): Promise<number> {
  const metadata = new ParquetStreamWriter(path, metadataColumns(kept), METADATA_ROW_GROUP);
  let rows = 0;
  try {
    for await (const sample of samples) {
      await metadata.append(metadataRow(sample, kept));
      rows++;
    }
    await metadata.close();
  } catch (error) {
    await metadata.abort();
    throw error;
  }
  return rows;
}
