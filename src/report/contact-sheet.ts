/**
 * The report's contact sheet: a deterministic sample of the stored images, as thumbnails.
 *
 * - `dir`: the images whose ids hash lowest (FNV-1a, as the dir sink spreads --subfolders),
 *   an even sample of the whole dataset that is the same on every report of it; each
 *   thumbnail links to its file.
 * - `webdataset` and `parquet`: the first images of shards spread evenly over the output,
 *   read from the start of each shard only: a hash-picked sample would touch a different
 *   shard per image, and a shard of a thousand photos is hundreds of megabytes.
 * An image that cannot be read is left out (the page shows the others).
 */
import { createReadStream, openAsBlob } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import * as arrow from 'apache-arrow';
import { ParquetFile } from 'parquet-wasm';
import tar from 'tar-stream';
import { fnv1a } from '../util/fnv1a.js';
import type { Thumbnail } from './html/data.js';
import { thumbnailDataUri } from './html/thumbnails.js';

/** The ids whose hashes are lowest, at most `count` of them, kept as candidates stream past. */
export class HashSample<T> {
  readonly #count: number;
  /** Sorted by hash, lowest first. */
  readonly #kept: Array<{ hash: number; id: string; value: T }> = [];

  constructor(count: number) {
    this.#count = count;
  }

  offer(id: string, value: T): void {
    if (this.#count === 0) return;
    const hash = fnv1a(id);
    const kept = this.#kept;
    if (kept.length >= this.#count && hash >= kept[kept.length - 1]!.hash) return;
    let at = kept.length;
    while (at > 0 && kept[at - 1]!.hash > hash) at--;
    kept.splice(at, 0, { hash, id, value });
    if (kept.length > this.#count) kept.pop();
  }

  get picked(): ReadonlyArray<{ readonly id: string; readonly value: T }> {
    return this.#kept;
  }
}

/** Thumbnails of dir-sink files: `picked` values are paths relative to the output. */
export async function dirThumbnails(output: string, picked: ReadonlyArray<{ readonly id: string; readonly value: string }>): Promise<Thumbnail[]> {
  const thumbnails: Thumbnail[] = [];
  for (const { id, value: file } of picked) {
    const path = join(output, file);
    try {
      const image = await thumbnailDataUri(path);
      const caption = await readFile(path.slice(0, -extname(path).length) + '.txt', 'utf8').catch(() => '');
      thumbnails.push({ id, caption, ...image, href: file.split(/[\\/]/).join('/') });
    } catch {
      // Gone or unreadable since it was recorded: the sheet shows the others.
    }
  }
  return thumbnails;
}

const IMAGE_EXTENSIONS = new Set(['jpg', 'jpeg', 'png', 'webp', 'gif', 'tif', 'tiff', 'avif', 'heif']);
/** How many images one shard gives the sheet. */
const PER_SHARD = 20;

/** Thumbnails from the first images of shards spread evenly over the output's `*.{extension}` files. */
export async function shardThumbnails(output: string, extension: 'tar' | 'parquet', count: number): Promise<Thumbnail[]> {
  if (count === 0) return [];
  const shards = (await readdir(output)).filter((name) => name.endsWith(`.${extension}`) && !name.startsWith('.')).sort();
  const wanted = Math.min(shards.length, Math.ceil(count / PER_SHARD));
  const chosen = Array.from({ length: wanted }, (_, i) => shards[Math.floor((i * shards.length) / wanted)]!);
  const thumbnails: Thumbnail[] = [];
  for (const shard of chosen) {
    const take = Math.min(PER_SHARD, count - thumbnails.length);
    const samples = await (extension === 'tar' ? firstTarSamples : firstParquetSamples)(join(output, shard), take).catch(() => []);
    for (const sample of samples) {
      try {
        thumbnails.push({ id: sample.id, caption: sample.caption, ...(await thumbnailDataUri(sample.image)) });
      } catch {
        // An image the thumbnailer cannot decode: the sheet shows the others.
      }
    }
  }
  return thumbnails;
}

interface ShardSample {
  readonly id: string;
  readonly caption: string;
  readonly image: Buffer;
}

/** The first `count` samples of a WebDataset tar (members grouped by the name before the first dot), reading no further. */
async function firstTarSamples(path: string, count: number): Promise<ShardSample[]> {
  const extract = tar.extract();
  const file = createReadStream(path);
  file.pipe(extract);
  const samples = new Map<string, { caption?: string; image?: Buffer }>();
  const complete: ShardSample[] = [];
  try {
    for await (const entry of extract) {
      const name = entry.header.name;
      const dot = name.indexOf('.');
      const key = dot < 0 ? name : name.slice(0, dot);
      const kind = dot < 0 ? '' : name.slice(name.lastIndexOf('.') + 1).toLowerCase();
      if (kind !== 'txt' && !IMAGE_EXTENSIONS.has(kind)) {
        entry.resume();
        continue;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const sample = samples.get(key) ?? {};
      if (kind === 'txt') sample.caption = Buffer.concat(chunks).toString('utf8');
      else sample.image = Buffer.concat(chunks);
      samples.set(key, sample);
      if (sample.image && sample.caption !== undefined) {
        complete.push({ id: key, caption: sample.caption, image: sample.image });
        samples.delete(key);
        if (complete.length >= count) break;
      }
    }
  } finally {
    file.destroy();
    extract.destroy();
  }
  return complete;
}

/** The first `count` rows of a Parquet shard: its key, caption and image columns. */
async function firstParquetSamples(path: string, count: number): Promise<ShardSample[]> {
  const parquet = await ParquetFile.fromFile((await openAsBlob(path)) as Blob);
  try {
    const fields = arrow.tableFromIPC(parquet.schema().intoIPCStream()).schema.fields;
    const binary = fields.find((field) => arrow.DataType.isBinary(field.type))?.name;
    const names = fields.map((field) => field.name);
    if (binary === undefined || !names.includes('key')) return [];
    const columns = ['key', ...(names.includes('caption') ? ['caption'] : []), binary];
    const samples: ShardSample[] = [];
    const stream = await parquet.stream({ rowGroups: [0], columns, limit: count });
    for await (const batch of stream as AsyncIterable<{ intoIPCStream(): Uint8Array }>) {
      const table = arrow.tableFromIPC(batch.intoIPCStream());
      for (let row = 0; row < table.numRows && samples.length < count; row++) {
        const image = table.getChild(binary)?.get(row) as Uint8Array | null;
        if (!image) continue;
        samples.push({ id: String(table.getChild('key')?.get(row) ?? ''), caption: String(table.getChild('caption')?.get(row) ?? ''), image: Buffer.from(image) });
      }
    }
    return samples;
  } finally {
    parquet.free();
  }
}
