/**
 * Where the dir sink puts a sample's files (`{id}.{ext}`, and `{id}.txt` when it has a
 * caption): in the output folder itself, or with `--subfolders N` in one of N folders (`000` to `N-1`) picked by a
 * hash of the id. A million files in one folder is legal but slow to list, copy and
 * back up; N folders of a few thousand are not. The folder follows from the id alone, so
 * "is this sample still on disk?" needs no index (queue workers have none), and a rerun
 * finds what an earlier run stored as long as N is the same (the index records it).
 *
 * The metadata's `filename` is then the path relative to the output (`042/12345.png`),
 * which SimpleTuner matches with `identifier_includes_extension: true`: its parquet
 * backend strips `instance_data_dir` from each image's path and looks the rest up
 * (metadata/backends/parquet.py, `_process_for_bucket`).
 */
import { mkdir, opendir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeError } from '../errors.js';
import { extensionOf } from '../image/encode.js';
import type { ImageFormat } from '../types.js';
import { removeStaleTemporaryFiles } from '../util/atomic-file.js';
import type { FileWriter } from '../util/file-writer.js';
import { exists } from '../util/exists.js';
import type { Sample } from './contract.js';
import { fnv1a } from '../util/fnv1a.js';

/** Extensions an original may have (`--format original` keeps the fetched format). */
const ORIGINAL_EXTENSIONS = ['jpg', 'png', 'webp', 'gif', 'tif', 'avif', 'heif'];

export class DirLayout {
  readonly #output: string;
  readonly #subfolders: number;
  readonly #format: ImageFormat | 'original';
  readonly #width: number;
  /** Folders known to exist (made once each). */
  readonly #made = new Set<string>();

  constructor(output: string, subfolders: number, format: ImageFormat | 'original') {
    this.#output = output;
    this.#subfolders = subfolders;
    this.#format = format;
    this.#width = Math.max(3, String(Math.max(0, subfolders - 1)).length);
  }

  /** The folder of a sample, relative to the output ('' when flat). */
  folderOf(id: string): string {
    if (this.#subfolders === 0) return '';
    return String(fnv1a(id) % this.#subfolders).padStart(this.#width, '0');
  }

  /** A sample file's path relative to the output: what the metadata's `filename` says. */
  relative(id: string, extension: string): string {
    const folder = this.folderOf(id);
    return folder ? `${folder}/${id}.${extension}` : `${id}.${extension}`;
  }

  /**
   * The caption, then the image, each renamed into place whole, by `writer`'s threads.
   * Returns bytes written. A sample without a caption has no `.txt`: one an earlier store
   * of the id left is removed first, so that the image on disk never sits beside a caption
   * not its own.
   */
  async write(sample: Sample, writer: FileWriter): Promise<number> {
    const folder = join(this.#output, this.folderOf(sample.id));
    if (!this.#made.has(folder)) {
      await mkdir(folder, { recursive: true });
      this.#made.add(folder);
    }
    const captionFile = `${sample.id}.txt`;
    const image = [`${sample.id}.${sample.extension}`, sample.image] as const;
    if (sample.caption === null) {
      await rm(join(folder, captionFile), { force: true }).catch((error: unknown) => Promise.reject(writeError(join(folder, captionFile), error)));
      return writer.writeFiles(folder, [image]);
    }
    return writer.writeFiles(folder, [[captionFile, sample.caption], image]);
  }

  /**
   * Whether the sample's image is on disk, and its caption when it has one (`captioned`;
   * a sample stored without a caption has none to find).
   */
  async holds(id: string, captioned: boolean): Promise<boolean> {
    const folder = join(this.#output, this.folderOf(id));
    const isFile = (name: string) => exists(join(folder, name));
    // An original keeps its own format, so any image extension will do then.
    const images = this.#format === 'original' ? ORIGINAL_EXTENSIONS.map((extension) => `${id}.${extension}`) : [`${id}.${extensionOf(this.#format)}`];
    const [caption, ...found] = await Promise.all([captioned ? isFile(`${id}.txt`) : true, ...images.map(isFile)]);
    return caption === true && found.includes(true);
  }

  /** Sweeps temporary files of dead processes from the output and its sample folders. */
  async removeStaleTemporaryFiles(all = false): Promise<number> {
    let removed = await removeStaleTemporaryFiles(this.#output, all);
    for (const folder of await sampleFolders(this.#output)) removed += await removeStaleTemporaryFiles(join(this.#output, folder), all);
    return removed;
  }
}

/** The files the dir sink writes per sample: its caption and its image. */
const SAMPLE_FILE = /^(?!\.)(.+)\.(txt|png|jpg|webp|gif|tif|avif|heif)$/;
/** Names checked per call of `recorded`. */
const CHECK_BATCH = 1_000;

/**
 * Removes the captions and images of samples that `recorded` does not know (in the output
 * and its --subfolders): what a process killed between renaming a sample's files into
 * place and recording them left. Folders are walked as they are listed and checked a batch
 * at a time: a flat folder of the whole dataset holds over a million names.
 * @param recorded for each id of a batch, whether it is recorded stored
 */
export async function removeUnrecordedSamples(output: string, recorded: (ids: readonly string[]) => Promise<readonly boolean[]> | readonly boolean[]): Promise<number> {
  let removed = 0;
  let batch: Array<{ id: string; path: string }> = [];
  const flush = async () => {
    const known = await recorded(batch.map(({ id }) => id));
    for (const [i, { path }] of batch.entries()) {
      if (known[i]) continue;
      await rm(path, { force: true });
      removed++;
    }
    batch = [];
  };
  for (const folder of ['', ...(await sampleFolders(output))]) {
    for await (const entry of await opendir(join(output, folder))) {
      const id = SAMPLE_FILE.exec(entry.name)?.[1];
      if (id === undefined || !entry.isFile()) continue;
      batch.push({ id, path: join(output, folder, entry.name) });
      if (batch.length >= CHECK_BATCH) await flush();
    }
  }
  await flush();
  return removed;
}

/** The output's sample folders (`--subfolders`): its folders whose names are all digits. */
export async function sampleFolders(output: string): Promise<string[]> {
  return (await readdir(output, { withFileTypes: true })).filter((entry) => entry.isDirectory() && /^\d+$/.test(entry.name)).map((entry) => entry.name);
}
