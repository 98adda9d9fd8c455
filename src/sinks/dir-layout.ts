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
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeError } from '../errors.js';
import { extensionOf } from '../image/encode.js';
import type { ImageFormat } from '../types.js';
import { removeStaleTemporaryFiles, writeFilesAtomically } from '../util/atomic-file.js';
import { exists } from '../util/exists.js';
import type { Sample } from './contract.js';

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
   * The caption, then the image, each renamed into place whole. Returns bytes written.
   * A sample without a caption has no `.txt`: one an earlier store of the id left is
   * removed first, so that the image on disk never sits beside a caption not its own.
   */
  async write(sample: Sample): Promise<number> {
    const folder = join(this.#output, this.folderOf(sample.id));
    if (!this.#made.has(folder)) {
      await mkdir(folder, { recursive: true });
      this.#made.add(folder);
    }
    const captionFile = `${sample.id}.txt`;
    const image = [`${sample.id}.${sample.extension}`, sample.image] as const;
    if (sample.caption === null) {
      await rm(join(folder, captionFile), { force: true }).catch((error: unknown) => Promise.reject(writeError(join(folder, captionFile), error)));
      return writeFilesAtomically(folder, [image]);
    }
    return writeFilesAtomically(folder, [[captionFile, sample.caption], image]);
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

/** The output's sample folders (`--subfolders`): its folders whose names are all digits. */
export async function sampleFolders(output: string): Promise<string[]> {
  return (await readdir(output, { withFileTypes: true })).filter((entry) => entry.isDirectory() && /^\d+$/.test(entry.name)).map((entry) => entry.name);
}

/** FNV-1a, 32 bits, over the id's UTF-8 bytes: stable across runs, machines and versions. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
