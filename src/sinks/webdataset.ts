/**
 * The `webdataset` sink: tar shards `{shard:05d}.tar` of `--samples-per-shard` samples,
 * each sample as `{key}.{ext}`, `{key}.txt` (the caption, when it has one: not with
 * `--missing-captions keep`) and `{key}.json`, written with
 * tar-stream. WebDataset readers group a tar's members into samples by the name before
 * the first dot, so a key has none.
 *
 * - `native` layout: the key is the id (an id with a dot is refused for that sample), the
 *   `.json` holds the row's columns with the stored size and hashes.
 * - `img2dataset` layout: the key is the shard and position, the `.json` holds
 *   img2dataset's fields (img2dataset.ts), the members come in the order its TarWriter
 *   writes them (sorted by extension: webdataset v0.2.107 writer.py:459, as pinned by
 *   img2dataset's requirements.txt) with its mode and owner (writer.py:376-378), and a
 *   `{shard}.parquet` beside the tar holds the same fields, a row per sample, in row
 *   groups of 100 (img2dataset writer.py:16, 115).
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { finished } from 'node:stream/promises';
import tar from 'tar-stream';
import { writeError } from '../errors.js';
import type { KeptColumn } from '../sources/kept-columns.js';
import { temporaryName } from '../util/atomic-file.js';
import { SampleRefused, type Layout, type Sample, type SinkFactory } from './contract.js';
import * as img2dataset from './img2dataset.js';
import { ParquetStreamWriter } from './parquet-stream.js';
import type { IndexedSample } from './sample-index.js';
import { createShardedSink, type ShardFormat, type ShardWriter } from './sharded.js';

/** img2dataset's metadata buffer: a row group per 100 rows (writer.py:16, 115). */
const METADATA_ROWS_PER_GROUP = 100;

/** A sample's tar members, in order. */
type Members = Array<readonly [name: string, data: Buffer]>;

/** Tar members' owner and mode: img2dataset's TarWriter sets `bigdata` and 0o444 (webdataset writer.py:376-378). */
const MEMBER_HEADERS: Readonly<Record<Layout, { mode: number; uname?: string; gname?: string }>> = {
  native: { mode: 0o644 },
  img2dataset: { mode: 0o444, uname: 'bigdata', gname: 'bigdata' },
};

function nativeMembers(sample: Sample, described: IndexedSample): Members {
  const key = described.key!;
  if (key.includes('.')) throw new SampleRefused(`id ${JSON.stringify(sample.id)} has a dot: WebDataset keys cannot`);
  const json = `${JSON.stringify({ ...sample.row, ...described, key: undefined, shard: undefined, extra: undefined })}\n`;
  return [
    [`${key}.${sample.extension}`, sample.image],
    ...(sample.caption === null ? [] : [[`${key}.txt`, Buffer.from(sample.caption)] as const]),
    [`${key}.json`, Buffer.from(json)],
  ];
}

function img2datasetMembers(sample: Sample, described: IndexedSample): Members {
  const members: Record<string, Buffer> = {
    [sample.extension]: sample.image,
    // img2dataset writes a .txt only with a caption column (writer.py); none without a caption.
    ...(sample.caption === null ? {} : { txt: Buffer.from(sample.caption) }),
    json: Buffer.from(img2dataset.sampleJson(described)),
  };
  return Object.keys(members)
    .sort()
    .map((extension) => [`${described.key}.${extension}`, members[extension]!] as const);
}

export function tarShards(layout: Layout, kept: readonly KeptColumn[]): ShardFormat {
  const membersOf = layout === 'img2dataset' ? img2datasetMembers : nativeMembers;
  const headers = MEMBER_HEADERS[layout];
  return {
    name: 'webdataset',
    extension: 'tar',
    companions: layout === 'img2dataset' ? ['parquet'] : [],
    open(stem): ShardWriter {
      const tarFile = openTar(`${stem}.tar`, headers);
      const metadataPath = `${stem}.parquet`;
      const metadata = layout === 'img2dataset' ? new ParquetStreamWriter(metadataPath, img2dataset.metadataColumns(kept), METADATA_ROWS_PER_GROUP) : undefined;
      return {
        async append(sample, described) {
          const members = membersOf(sample, described);
          for (const [name, data] of members) await tarFile.entry(name, data);
          await metadata?.append(img2dataset.metadataRow(described, kept));
          return members.reduce((sum, [, data]) => sum + data.length, 0);
        },
        async finish() {
          // The metadata first: the tar in place is what marks the shard complete.
          await metadata?.close();
          await tarFile.finish();
        },
        async abort() {
          await Promise.all([tarFile.abort(), metadata?.abort()]);
          if (metadata) await rm(metadataPath, { force: true });
        },
      };
    },
  };
}

/** A tar file written under a temporary name and renamed to `path` when finished. */
function openTar(path: string, headers: { mode: number; uname?: string; gname?: string }) {
  const temporary = join(dirname(path), temporaryName(basename(path)));
  const pack = tar.pack();
  const file = createWriteStream(temporary);
  // The first error of either stream (a full disk) breaks the shard: both are torn down
  // and every pending or later step rejects with it, instead of an unhandled 'error'.
  let failure: Error | undefined;
  let rejectBroken: (error: Error) => void = () => {};
  const broken = new Promise<never>((_, reject) => (rejectBroken = reject));
  broken.catch(() => {});
  const fail = (error: unknown) => {
    if (failure) return;
    failure = writeError(path, error);
    rejectBroken(failure);
    pack.destroy();
    file.destroy();
  };
  pack.on('error', fail);
  file.on('error', fail);
  pack.pipe(file);
  const mtime = new Date();
  return {
    // A broken pack throws "already finalized or destroyed": the cause is `failure`.
    entry: (name: string, data: Buffer) =>
      Promise.race([
        broken,
        new Promise<void>((resolve, reject) => {
          if (failure) return reject(failure);
          pack.entry({ name, size: data.length, mtime, ...headers }, data, (error) => (error ? reject(failure ?? error) : resolve()));
        }),
      ]),
    async finish() {
      if (failure) throw failure;
      pack.finalize();
      await Promise.race([finished(file), broken]);
      await rename(temporary, path).catch((error: unknown) => Promise.reject(writeError(path, error)));
    },
    async abort() {
      pack.destroy();
      file.destroy();
      await finished(file).catch(() => {});
      await rm(temporary, { force: true });
    },
  };
}

export const createWebDatasetSink: SinkFactory = (context) => createShardedSink(context, tarShards(context.layout ?? 'native', context.keptColumns ?? []));
